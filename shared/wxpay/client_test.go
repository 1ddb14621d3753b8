package wxpay_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

type countingSource struct {
	secrets.Source
	mu    sync.Mutex
	calls int
}

func (c *countingSource) Fetch(ctx context.Context) ([]byte, string, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Source.Fetch(ctx)
}

func (c *countingSource) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

type harness struct {
	sim    *wxpaysim.Sim
	srv    *httptest.Server
	m      *testkeys.Merchant
	p      *testkeys.Platform
	src    *countingSource
	creds  *secrets.Cache
	sleeps []time.Duration
	mu     sync.Mutex
}

func newHarness(t *testing.T, mode wxpaysim.Mode, secret testkeys.SecretOptions) *harness {
	t.Helper()
	m, err := testkeys.NewMerchant("1900000109")
	if err != nil {
		t.Fatal(err)
	}
	p, err := testkeys.NewPlatform()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := wxpaysim.New(wxpaysim.Config{Platform: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if err := sim.AddMerchant(wxpaysim.MerchantFromTestKeys(m, mode, "")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	doc, err := testkeys.SecretJSON(m, p, secret)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	src := &countingSource{Source: secrets.NewFileSource(file)}
	return &harness{sim: sim, srv: srv, m: m, p: p, src: src, creds: secrets.NewCache(src, secrets.CacheOptions{MinRefreshInterval: time.Nanosecond})}
}

func (h *harness) client(cfg wxpay.Config) *wxpay.Client {
	cfg.Credentials = h.creds
	cfg.BaseURL = h.srv.URL
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = h.srv.Client()
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.sleeps = append(h.sleeps, d)
			h.mu.Unlock()
			return ctx.Err()
		}
	}
	return wxpay.New(cfg)
}

func prepay(h *harness, outTradeNo string, total int64) wxpay.Request {
	return wxpay.Request{Method: http.MethodPost, Path: "/v3/pay/transactions/native", Body: map[string]any{
		"appid": h.m.AppID, "mchid": h.m.MchID, "description": "QQ公仔", "out_trade_no": outTradeNo,
		"notify_url": "https://merchant.example.com/notify/payments", "amount": map[string]any{"total": total, "currency": "CNY"}}}
}

func (h *harness) requests(path string) []wxpaysim.RequestRecord {
	var out []wxpaysim.RequestRecord
	for _, r := range h.sim.Requests() {
		if strings.HasPrefix(r.Path, path) {
			out = append(out, r)
		}
	}
	return out
}

func TestSignedCallsInEveryMode(t *testing.T) {
	for _, tc := range []struct {
		mode   wxpaysim.Mode
		secret testkeys.SecretOptions
	}{
		{wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true}},
		{wxpaysim.ModeCertificate, testkeys.SecretOptions{Certificates: true}},
		{wxpaysim.ModeMixed, testkeys.SecretOptions{PublicKey: true, Certificates: true}},
		{wxpaysim.ModeMixed, testkeys.SecretOptions{Certificates: true}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			h := newHarness(t, tc.mode, tc.secret)
			c := h.client(wxpay.Config{})
			var out struct {
				CodeURL string `json:"code_url"`
			}
			resp, err := c.Do(context.Background(), prepay(h, "ORDER0001", 551), &out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.CodeURL, "weixin://") || resp.RequestID == "" || resp.Attempts != 1 {
				t.Fatalf("prepay = %+v %+v", out, resp)
			}
			serial := resp.Header.Get(wxsign.HeaderSerial)
			wantSerial := h.p.PublicKeyID
			if tc.mode == wxpaysim.ModeCertificate || (tc.mode == wxpaysim.ModeMixed && !tc.secret.PublicKey) {
				wantSerial = h.p.CertSerial
			}
			if serial != wantSerial {
				t.Fatalf("response signed by %s, want %s", serial, wantSerial)
			}
			var tx map[string]any
			q := wxpay.Request{Method: http.MethodGet, Path: "/v3/pay/transactions/out-trade-no/ORDER0001", Query: map[string][]string{"mchid": {h.m.MchID}}}
			if _, err := c.Do(context.Background(), q, &tx); err != nil || tx["trade_state"] != "NOTPAY" {
				t.Fatalf("query = %v, %v", tx, err)
			}
		})
	}
}

func TestAPIErrorsAndRetries(t *testing.T) {
	ctx := context.Background()
	t.Run("404 is a typed error, not retried", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		_, err := h.client(wxpay.Config{}).Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/pay/transactions/out-trade-no/NOPE0001",
			Query: map[string][]string{"mchid": {h.m.MchID}}}, nil)
		var ae *wxpay.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Code != wxpay.CodeOrderNotExist || ae.RequestID == "" || !wxpay.IsNotFound(err) {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.requests("/v3/pay/transactions/out-trade-no/NOPE0001")); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})
	t.Run("500 then 200 succeeds with one retry and the same request number", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Count: 1, Status: 500, Code: "SYSTEM_ERROR", PathPrefix: "/v3/pay/transactions/native"})
		resp, err := h.client(wxpay.Config{}).Do(ctx, prepay(h, "RETRY0001", 100), nil)
		if err != nil || resp.Attempts != 2 {
			t.Fatalf("= %+v, %v; want success on attempt 2", resp, err)
		}
		reqs := h.requests("/v3/pay/transactions/native")
		if len(reqs) != 2 || !bytes.Equal(reqs[0].Body, reqs[1].Body) || !bytes.Contains(reqs[1].Body, []byte(`"out_trade_no":"RETRY0001"`)) {
			t.Fatalf("requests = %d, bodies equal %v", len(reqs), len(reqs) == 2 && bytes.Equal(reqs[0].Body, reqs[1].Body))
		}
		if len(h.sleeps) != 1 || h.sleeps[0] <= 0 {
			t.Fatalf("backoff sleeps = %v, want one positive delay", h.sleeps)
		}
	})
	t.Run("429 is retried", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Count: 2, Status: 429, Code: "FREQUENCY_LIMITED"})
		resp, err := h.client(wxpay.Config{}).Do(ctx, prepay(h, "LIMIT0001", 100), nil)
		if err != nil || resp.Attempts != 3 {
			t.Fatalf("= %+v, %v", resp, err)
		}
	})
	t.Run("400 is never retried", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		_, err := h.client(wxpay.Config{}).Do(ctx, prepay(h, "BAD0001", 0), nil)
		var ae *wxpay.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Retryable() {
			t.Fatalf("err = %v, want a non-retryable 400", err)
		}
		if n := len(h.requests("/v3/pay/transactions/native")); n != 1 || len(h.sleeps) != 0 {
			t.Fatalf("%d requests, %d sleeps; want 1 and 0", n, len(h.sleeps))
		}
	})
	t.Run("retries stop at MaxAttempts", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Status: 503, Code: "SYSTEM_ERROR"})
		_, err := h.client(wxpay.Config{Retry: wxpay.RetryPolicy{MaxAttempts: 4}}).Do(ctx, prepay(h, "DOWN0001", 100), nil)
		if !wxpay.IsCode(err, "SYSTEM_ERROR") || len(h.requests("/v3/pay/transactions/native")) != 4 {
			t.Fatalf("err = %v after %d requests, want SYSTEM_ERROR after 4", err, len(h.requests("/v3/pay/transactions/native")))
		}
	})
	t.Run("deadline respected", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindDelay, Delay: 5 * time.Second})
		c := h.client(wxpay.Config{Sleep: func(ctx context.Context, d time.Duration) error { time.Sleep(d); return ctx.Err() }})
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Do(dctx, prepay(h, "SLOW0001", 100), nil)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
			t.Fatalf("err = %v after %s, want the deadline within ~300ms", err, time.Since(start))
		}
	})
	t.Run("no retry when the deadline comes before the backoff", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Status: 500, Code: "SYSTEM_ERROR"})
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := h.client(wxpay.Config{Retry: wxpay.RetryPolicy{BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second}}).Do(dctx, prepay(h, "EDGE0001", 100), nil)
		if !wxpay.IsCode(err, "SYSTEM_ERROR") || len(h.requests("/v3/pay/transactions/native")) != 1 {
			t.Fatalf("err = %v, %d requests; want the 500 answered without a retry", err, len(h.requests("/v3/pay/transactions/native")))
		}
	})
}

func TestResponseVerification(t *testing.T) {
	ctx := context.Background()
	t.Run("bad signature rejected, not retried", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindBadResponseSignature})
		_, err := h.client(wxpay.Config{}).Do(ctx, prepay(h, "SIG0001", 100), nil)
		if !errors.Is(err, wxpay.ErrResponseSignature) || !errors.Is(err, wxsign.ErrBadSignature) || len(h.requests("/v3/")) != 1 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown serial refreshes credentials once, then fails", func(t *testing.T) {
		h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
		c := h.client(wxpay.Config{})
		if _, err := c.Do(ctx, prepay(h, "SER0001", 100), nil); err != nil {
			t.Fatal(err)
		}
		before := h.src.n()
		h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindWrongResponseSerial})
		_, err := c.Do(ctx, prepay(h, "SER0002", 100), nil)
		if !errors.Is(err, wxpay.ErrResponseSignature) || !errors.Is(err, wxsign.ErrUnknownSerial) {
			t.Fatalf("err = %v", err)
		}
		if got := h.src.n() - before; got != 1 {
			t.Fatalf("unknown serial caused %d credential fetches, want 1", got)
		}
	})
}

func TestKnownAnswerThroughClientAndSimulator(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "wxsign", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	blk, _ := pem.Decode(bytes.ReplaceAll(read("merchant_key.testing.pem"), []byte("TESTING KEY"), []byte("PRIVATE KEY")))
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := k.(*rsa.PrivateKey)
	m, err := testkeys.NewMerchant("1900000109")
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	m.Key, m.KeyPEM, m.AppID = key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "wxd678efh567hg6787"
	p, err := testkeys.NewPlatform()
	if err != nil {
		t.Fatal(err)
	}
	fixed := time.Unix(1795399200, 0)
	sim, err := wxpaysim.New(wxpaysim.Config{Platform: p, Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if err := sim.AddMerchant(wxpaysim.MerchantFromTestKeys(m, wxpaysim.ModePublicKey, "")); err != nil {
		t.Fatal(err)
	}
	var seen string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("Authorization")
		sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	doc, _ := testkeys.SecretJSON(m, p, testkeys.SecretOptions{PublicKey: true})
	file := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	// Nonce bytes chosen so wxsign.Nonce yields the vector's nonce.
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var nonceBytes []byte
	for _, c := range "593BEC0C930BF1AFEB40B4A08C8FB242" {
		nonceBytes = append(nonceBytes, byte(strings.IndexRune(alphabet, c)))
	}
	c := wxpay.New(wxpay.Config{Credentials: secrets.NewCache(secrets.NewFileSource(file), secrets.CacheOptions{}), BaseURL: srv.URL,
		Now: func() time.Time { return fixed }, Rand: bytes.NewReader(nonceBytes)})
	var out map[string]any
	_, err = c.Do(context.Background(), wxpay.Request{Method: http.MethodPost, Path: "/v3/pay/transactions/native", Body: json.RawMessage(read("request_body.json"))}, &out)
	if err != nil {
		t.Fatalf("the simulator rejected the known-answer request: %v", err)
	}
	auth, err := wxsign.ParseAuthorization(seen)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(read("request_signature.b64"))); auth.Signature != want || auth.Nonce != "593BEC0C930BF1AFEB40B4A08C8FB242" || auth.Timestamp != 1795399200 {
		t.Fatalf("client signature %s (nonce %s, ts %d) differs from openssl's %s", auth.Signature, auth.Nonce, auth.Timestamp, want)
	}
}

func TestRateLimitPerFamily(t *testing.T) {
	h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
	c := h.client(wxpay.Config{RateLimit: wxpay.RateLimit{PerSecond: 5, Burst: 2}})
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if _, err := c.Do(ctx, prepay(h, "RL000"+string(rune('1'+i)), 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	waits := len(h.sleeps)
	if waits < 1 {
		t.Fatalf("4 calls at burst 2 waited %d times, want >= 1", waits)
	}
	for _, d := range h.sleeps {
		if d <= 0 || d > time.Second {
			t.Fatalf("wait %s outside (0, 1s] at 5/s", d)
		}
	}
	// Another family has its own bucket.
	if _, err := c.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/certificates"}, nil); err != nil && !wxpay.IsNotFound(err) {
		t.Fatal(err)
	}
	if len(h.sleeps) != waits {
		t.Fatal("a call in another API family waited on the payments bucket")
	}
	if got := wxpay.Family("/v3/payscore/serviceorder/X1/complete?x=1"); got != "/v3/payscore/serviceorder" {
		t.Fatalf("Family = %q", got)
	}
}

func TestDownloadStaysOnTheAPIHost(t *testing.T) {
	h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
	c := h.client(wxpay.Config{})
	if _, err := c.Download(context.Background(), "https://evil.example.com/v3/billdownload/file?token=x"); err == nil {
		t.Fatal("a download URL on another host was fetched with a signed request")
	}
}

// authRecorder captures the Authorization header of every request.
type authRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	auth []wxsign.Authorization
}

func (r *authRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	a, err := wxsign.ParseAuthorization(req.Header.Get(wxsign.HeaderAuthorization))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.auth = append(r.auth, a)
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func (r *authRecorder) all() []wxsign.Authorization {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wxsign.Authorization(nil), r.auth...)
}

// TestPreparedCallSignsAhead: Prepare signs the first attempt in the
// background (the signature WeChat Pay accepts carries the time of Prepare);
// a call sent later than presignMaxAge, and every retry, is signed afresh;
// an encoding error surfaces at Send without a request.
func TestPreparedCallSignsAhead(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
	var mu sync.Mutex
	clock := time.Now().Truncate(time.Second)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	rec := &authRecorder{base: h.srv.Client().Transport}
	c := h.client(wxpay.Config{Now: now, HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})

	prepared := now()
	call := c.Prepare(ctx, prepay(h, "PRESIGN01", 100))
	advance(10 * time.Second)
	if resp, err := c.Send(ctx, call, nil); err != nil || resp.Attempts != 1 {
		t.Fatalf("send of a prepared call = %+v, %v", resp, err)
	}
	if a := rec.all(); len(a) != 1 || a[0].Timestamp != prepared.Unix() {
		t.Fatalf("prepared call sent with %+v, want the signature made at Prepare (timestamp %d)", a, prepared.Unix())
	}

	call = c.Prepare(ctx, prepay(h, "PRESIGN02", 100))
	advance(31 * time.Second)
	if _, err := c.Send(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	if a := rec.all(); len(a) != 2 || a[1].Timestamp != now().Unix() {
		t.Fatalf("a call sent 31 s after Prepare carried timestamp %d, want a fresh signature at %d", a[1].Timestamp, now().Unix())
	}

	h.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Count: 1, Status: 500, Code: "SYSTEM_ERROR", PathPrefix: "/v3/pay/transactions/native"})
	call = c.Prepare(ctx, prepay(h, "PRESIGN03", 100))
	if resp, err := c.Send(ctx, call, nil); err != nil || resp.Attempts != 2 {
		t.Fatalf("retried prepared call = %+v, %v; want success on attempt 2", resp, err)
	}
	a := rec.all()
	if len(a) != 4 || a[2].Nonce == a[3].Nonce || a[2].Signature == a[3].Signature {
		t.Fatalf("attempts of a retried call = %+v, want two with distinct nonces and signatures", a[2:])
	}

	bad := c.Prepare(ctx, wxpay.Request{Method: http.MethodPost, Path: "/v3/pay/transactions/native", Body: map[string]any{"x": func() {}}})
	if _, err := c.Send(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "encode") {
		t.Fatalf("send of an unencodable body = %v, want the encoding error", err)
	}
	if n := len(rec.all()); n != 4 {
		t.Fatalf("%d requests after the unencodable one, want still 4", n)
	}
}

// TestDownloadOutlastsTheClientTimeout: a bill whose body takes longer
// than the HTTP client's Timeout still downloads (the body is bounded by
// the caller's context), and a server that sends no headers within the
// Timeout still fails, as a transport error past a deadline.
func TestDownloadOutlastsTheClientTimeout(t *testing.T) {
	h := newHarness(t, wxpaysim.ModePublicKey, testkeys.SecretOptions{PublicKey: true})
	const timeout = 300 * time.Millisecond
	chunk := bytes.Repeat([]byte("`2026-11-22 10:00:00,`ORD0000000001\n"), 100)
	var signed sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signed.Store(r.URL.Query().Get("token"), strings.HasPrefix(r.Header.Get("Authorization"), "WECHATPAY2-SHA256-RSA2048 "))
		if r.URL.Query().Get("token") == "late-headers" {
			time.Sleep(3 * timeout)
		}
		w.WriteHeader(http.StatusOK)
		for range 6 { // six pieces, timeout/2 apart: the body takes 3x the timeout
			_, _ = w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(timeout / 2)
		}
	}))
	defer srv.Close()
	c := wxpay.New(wxpay.Config{Credentials: h.creds, BaseURL: srv.URL, HTTPClient: &http.Client{Timeout: timeout}})

	start := time.Now()
	body, err := c.Download(context.Background(), srv.URL+"/v3/billdownload/file?token=slow-body")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if cerr := body.Close(); err != nil || cerr != nil || !bytes.Equal(got, bytes.Repeat(chunk, 6)) {
		t.Fatalf("read %d of %d bytes in %s: %v, close: %v", len(got), 6*len(chunk), time.Since(start), err, cerr)
	}
	if ok, _ := signed.Load("slow-body"); ok != true || time.Since(start) < 2*timeout {
		t.Fatalf("signed %v, took %s", ok, time.Since(start))
	}

	_, err = c.Download(context.Background(), srv.URL+"/v3/billdownload/file?token=late-headers")
	if !errors.Is(err, wxpay.ErrTransport) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("late headers: err = %v, want a transport error past the deadline", err)
	}
}
