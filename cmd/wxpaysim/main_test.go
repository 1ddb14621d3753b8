package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// syncBuffer is a stdout the test can read while run writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started runs run(args) in a goroutine and waits for its admin URL.
func started(t *testing.T, args []string) (base string, out *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out) }()
	adminRE := regexp.MustCompile(`admin API: (http://127\.0\.0\.1:\d+)/sim/`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := adminRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("run(%q) returned early: %v\noutput:\n%s", args, err, out)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("run(%q): no admin URL printed after 10s; output:\n%s", args, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("run did not return 10s after cancel")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return base, out, stop
}

// signedGet sends a GET signed as m and returns status, headers and body.
func signedGet(t *testing.T, base, uri string, m *testkeys.Merchant, sign bool) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sign {
		ts := time.Now().Unix()
		sig, err := wxsign.Sign(m.Key, wxsign.RequestMessage("GET", uri, ts, "NONCE0123456789", nil))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", wxsign.Authorization{MchID: m.MchID, Nonce: "NONCE0123456789", Timestamp: ts,
			Serial: m.CertSerial, Signature: sig}.String())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", uri, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	m, p, err := testkeys.LoadOrCreateBundle(keys, "1900000109")
	if err != nil {
		t.Fatalf("LoadOrCreateBundle: %v", err)
	}
	// A second merchant, registered through a config file that points at
	// the same platform bundle.
	m2, err := testkeys.NewMerchant("1900000222")
	if err != nil {
		t.Fatalf("NewMerchant: %v", err)
	}
	cfgPath := filepath.Join(dir, "sim.json")
	cfg, err := json.Marshal(map[string]any{
		"platform_bundle": "keys.json",
		"merchants": []wxpaysim.MerchantSpec{{MchID: m2.MchID, PublicKeyPEM: string(m2.CertPEM), APIv3Key: m2.APIv3Key,
			AppIDs: []string{m2.AppID}, Mode: wxpaysim.ModeCertificate}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(_ context.Context, serial string) (*rsa.PublicKey, error) {
		switch serial {
		case p.PublicKeyID:
			return &p.Key.PublicKey, nil
		case p.CertSerial:
			return &p.CertKey.PublicKey, nil
		}
		return nil, wxsign.ErrUnknownSerial
	}

	tests := []struct {
		name       string
		args       []string
		m          *testkeys.Merchant
		wantSerial string
	}{
		{"keys bundle", []string{"-addr", "127.0.0.1:0", "-keys", keys, "-notify-url", "http://127.0.0.1:3000/notify"}, m, p.PublicKeyID},
		{"config file", []string{"-addr", "127.0.0.1:0", "-config", cfgPath, "-time-scale", "0.01"}, m2, p.CertSerial},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, out, stop := started(t, tc.args)
			for _, want := range []string{p.PublicKeyID, p.CertSerial, base + "/sim/", "listening on " + base, "merchant " + tc.m.MchID} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("startup output: got\n%s\nwant it to mention %q", out, want)
				}
			}
			uri := "/v3/pay/transactions/out-trade-no/NOSUCH0001?mchid=" + tc.m.MchID
			status, h, body := signedGet(t, base, uri, tc.m, true)
			if status != 404 || !strings.Contains(string(body), "ORDER_NOT_EXIST") {
				t.Errorf("signed GET %s: got %d %s, want 404 ORDER_NOT_EXIST", uri, status, body)
			}
			if err := wxsign.HeadersFrom(h.Get).Verify(t.Context(), lookup, time.Now(), body); err != nil || h.Get(wxsign.HeaderSerial) != tc.wantSerial {
				t.Errorf("response signature: got serial %s err %v, want %s verified", h.Get(wxsign.HeaderSerial), err, tc.wantSerial)
			}
			if status, _, body := signedGet(t, base, uri, tc.m, false); status != 401 || !strings.Contains(string(body), "SIGN_ERROR") {
				t.Errorf("unsigned GET %s: got %d %s, want 401 SIGN_ERROR", uri, status, body)
			}
			if err := stop(); err != nil {
				t.Errorf("run after cancel: got %v, want nil", err)
			}
			if _, err := http.Get(base + "/sim/info"); err == nil {
				t.Errorf("GET after stop: got an answer, want the listener closed")
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"merchants": [{"mchid": 1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	withBundle := filepath.Join(dir, "with-bundle.json")
	if err := os.WriteFile(withBundle, []byte(`{"platform_bundle": "x.json"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		wantUsage bool
	}{
		{"unknown flag", []string{"-nope"}, true},
		{"extra argument", []string{"serve"}, true},
		{"zero time scale", []string{"-time-scale", "0"}, true},
		{"keys and platform_bundle", []string{"-keys", "k.json", "-config", withBundle}, true},
		{"missing keys file", []string{"-keys", filepath.Join(dir, "none.json")}, false},
		{"missing config file", []string{"-config", filepath.Join(dir, "none.json")}, false},
		{"malformed config", []string{"-config", bad}, false},
		{"bad address", []string{"-addr", "256.0.0.1:bad"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := run(ctx, tc.args, io.Discard)
			if err == nil || errors.Is(err, errUsage) != tc.wantUsage {
				t.Errorf("run(%q): got %v, want an error (usage: %v)", tc.args, err, tc.wantUsage)
			}
		})
	}
}
