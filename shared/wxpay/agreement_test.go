package wxpay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// transport lets a test corrupt a request after signing or a response
// before verification.
type transport struct {
	base     http.RoundTripper
	request  func(*http.Request)
	response func(*http.Response)
}

func (tr transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tr.request != nil {
		tr.request(r)
	}
	resp, err := tr.base.RoundTrip(r)
	if err == nil && tr.response != nil {
		tr.response(resp)
	}
	return resp, err
}

func replaceBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
}

// TestClientAndSimulatorDisagreeCorrectly: the same four corruptions —
// tampered body, wrong key, stale timestamp, wrong serial — are rejected by
// the simulator when our client sends them, and by our client when the
// simulator answers with them.
func TestClientAndSimulatorDisagreeCorrectly(t *testing.T) {
	ctx := context.Background()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	type side struct {
		name string
		// setup adjusts the harness/client config; it returns the transport hooks.
		setup func(h *harness, cfg *wxpay.Config) transport
		check func(t *testing.T, h *harness, err error)
	}
	simRejects := func(t *testing.T, h *harness, err error) {
		var ae *wxpay.APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || ae.Code != "SIGN_ERROR" {
			t.Fatalf("err = %v, want the simulator's 401 SIGN_ERROR", err)
		}
	}
	clientRejects := func(want error) func(t *testing.T, h *harness, err error) {
		return func(t *testing.T, h *harness, err error) {
			if !errors.Is(err, wxpay.ErrResponseSignature) || !errors.Is(err, want) {
				t.Fatalf("err = %v, want ErrResponseSignature wrapping %v", err, want)
			}
		}
	}
	resign := func(h *harness, ts int64) func(*http.Response) {
		return func(resp *http.Response) {
			body, _ := io.ReadAll(resp.Body)
			sh, _ := wxsign.SignResponse(h.p.Key, h.p.PublicKeyID, ts, "n0nce", body)
			resp.Header.Set(wxsign.HeaderTimestamp, sh.Timestamp)
			resp.Header.Set(wxsign.HeaderNonce, sh.Nonce)
			resp.Header.Set(wxsign.HeaderSignature, sh.Signature)
			resp.Header.Set(wxsign.HeaderSerial, sh.Serial)
			resp.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	cases := []side{
		{"request tampered body", func(h *harness, _ *wxpay.Config) transport {
			return transport{request: func(r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				replaceBody(r, bytes.Replace(b, []byte(`"total":551`), []byte(`"total":1`), 1))
			}}
		}, simRejects},
		{"request wrong key", func(h *harness, cfg *wxpay.Config) transport {
			c, err := h.creds.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			bad := *c
			bad.MerchantPrivateKey = otherKey
			cfg.Credentials = fixedCreds{c: &bad, keys: h.creds}
			return transport{}
		}, simRejects},
		{"request stale timestamp", func(h *harness, cfg *wxpay.Config) transport {
			cfg.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
			return transport{}
		}, simRejects},
		{"request wrong serial", func(h *harness, cfg *wxpay.Config) transport {
			c, err := h.creds.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			bad := *c
			bad.MerchantCertSerial = "0123456789ABCDEF0123456789ABCDEF01234567"
			cfg.Credentials = fixedCreds{c: &bad, keys: h.creds}
			return transport{}
		}, simRejects},
		{"response tampered body", func(h *harness, _ *wxpay.Config) transport {
			return transport{response: func(resp *http.Response) {
				b, _ := io.ReadAll(resp.Body)
				resp.Body = io.NopCloser(bytes.NewReader(bytes.Replace(b, []byte("weixin://"), []byte("weixin:/x"), 1)))
			}}
		}, clientRejects(wxsign.ErrBadSignature)},
		{"response wrong key", func(h *harness, _ *wxpay.Config) transport {
			h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindBadResponseSignature})
			return transport{}
		}, clientRejects(wxsign.ErrBadSignature)},
		{"response stale timestamp", func(h *harness, _ *wxpay.Config) transport {
			return transport{response: resign(h, time.Now().Add(-10*time.Minute).Unix())}
		}, clientRejects(wxsign.ErrStale)},
		{"response wrong serial", func(h *harness, _ *wxpay.Config) transport {
			h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindWrongResponseSerial})
			return transport{}
		}, clientRejects(wxsign.ErrUnknownSerial)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
			cfg := wxpay.Config{Retry: wxpay.RetryPolicy{MaxAttempts: 1}}
			tr := tc.setup(h, &cfg)
			tr.base = h.srv.Client().Transport
			c := wxpay.New(wxpay.Config{Credentials: firstNonNil(cfg.Credentials, h.creds), BaseURL: h.srv.URL, HTTPClient: &http.Client{Transport: tr},
				Now: cfg.Now, Retry: cfg.Retry})
			_, err := c.Do(ctx, prepay(h, "AGREE"+strconv.Itoa(i)+"01", 551), nil)
			tc.check(t, h, err)
		})
	}
	// And the control: the same path without corruption succeeds.
	h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
	if _, err := h.client(wxpay.Config{}).Do(ctx, prepay(h, "AGREEOK01", 551), nil); err != nil {
		t.Fatalf("uncorrupted call failed: %v", err)
	}
}

// fixedCreds serves altered merchant credentials with the real key lookup.
type fixedCreds struct {
	c    *secrets.Credentials
	keys *secrets.Cache
}

func (f fixedCreds) Get(context.Context) (*secrets.Credentials, error) { return f.c, nil }
func (f fixedCreds) VerificationKey(ctx context.Context, serial string) (*rsa.PublicKey, error) {
	return f.keys.VerificationKey(ctx, serial)
}

func firstNonNil(a wxpay.Credentials, b *secrets.Cache) wxpay.Credentials {
	if a != nil {
		return a
	}
	return b
}
