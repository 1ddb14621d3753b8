package wxpaysim_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// fixture is a simulator on an httptest server with one test merchant.
type fixture struct {
	sim *wxpaysim.Sim
	srv *httptest.Server
	p   *testkeys.Platform
	m   *testkeys.Merchant
}

// newFixture generates keys, starts the simulator and registers the
// merchant m in mode (with notifyURL as its default).
func newFixture(t *testing.T, cfg wxpaysim.Config, mode wxpaysim.Mode, notifyURL string) *fixture {
	t.Helper()
	m, err := testkeys.NewMerchant("1900000109")
	if err != nil {
		t.Fatalf("NewMerchant: %v", err)
	}
	if cfg.Platform == nil {
		if cfg.Platform, err = testkeys.NewPlatform(); err != nil {
			t.Fatalf("NewPlatform: %v", err)
		}
	}
	sim, err := wxpaysim.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(sim.Close)
	if err := sim.AddMerchant(wxpaysim.MerchantFromTestKeys(m, mode, notifyURL)); err != nil {
		t.Fatalf("AddMerchant(%s): %v", m.MchID, err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &fixture{sim: sim, srv: srv, p: cfg.Platform, m: m}
}

// addMerchant registers another merchant with f.m's keys under mchID.
func (f *fixture) addMerchant(t *testing.T, mchID string, mode wxpaysim.Mode, notifyURL string) {
	t.Helper()
	c := wxpaysim.MerchantFromTestKeys(f.m, mode, notifyURL)
	c.MchID = mchID
	if err := f.sim.AddMerchant(c); err != nil {
		t.Fatalf("AddMerchant(%s): %v", mchID, err)
	}
}

// signSpec is how a request is signed; tests edit it to break things.
type signSpec struct {
	MchID     string
	Serial    string
	Key       *rsa.PrivateKey
	Timestamp int64
	Nonce     string
	// SignedBody is what the signature covers; nil means the body sent.
	SignedBody []byte
	// Authorization, if non-nil, replaces the computed header ("" sends none).
	Authorization *string
	// AcceptSerial is the request's Wechatpay-Serial header.
	AcceptSerial string
}

// result is an API answer.
type result struct {
	Status int
	Header http.Header
	Body   []byte
}

// apiError decodes a WeChat error body.
func (r result) code() string {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Code
}

// call sends a request signed as merchant mchID (f.m's keys) at sim time.
func (f *fixture) call(t *testing.T, method, uri string, body []byte, edit func(*signSpec)) result {
	t.Helper()
	return f.callCtx(t.Context(), t, method, uri, body, edit)
}

func (f *fixture) callCtx(ctx context.Context, t *testing.T, method, uri string, body []byte, edit func(*signSpec)) result {
	t.Helper()
	r, err := f.try(ctx, method, uri, body, edit)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	return r
}

func (f *fixture) try(ctx context.Context, method, uri string, body []byte, edit func(*signSpec)) (result, error) {
	spec := signSpec{MchID: f.m.MchID, Serial: f.m.CertSerial, Key: f.m.Key, Timestamp: f.sim.Now().Unix(),
		Nonce: "N0NCE" + testkeys.RandomString(27)}
	if edit != nil {
		edit(&spec)
	}
	signed := spec.SignedBody
	if signed == nil {
		signed = body
	}
	req, err := http.NewRequestWithContext(ctx, method, f.srv.URL+uri, bytes.NewReader(body))
	if err != nil {
		return result{}, err
	}
	if spec.Authorization != nil {
		if *spec.Authorization != "" {
			req.Header.Set("Authorization", *spec.Authorization)
		}
	} else {
		sig, err := wxsign.Sign(spec.Key, wxsign.RequestMessage(method, uri, spec.Timestamp, spec.Nonce, signed))
		if err != nil {
			return result{}, err
		}
		req.Header.Set("Authorization", wxsign.Authorization{MchID: spec.MchID, Nonce: spec.Nonce,
			Timestamp: spec.Timestamp, Serial: spec.Serial, Signature: sig}.String())
	}
	if spec.AcceptSerial != "" {
		req.Header.Set(wxsign.HeaderSerial, spec.AcceptSerial)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	return result{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// platformKeys is the merchant-side key lookup for platform signatures.
func platformKeys(p *testkeys.Platform) wxsign.KeyLookup {
	return func(_ context.Context, serial string) (*rsa.PublicKey, error) {
		switch serial {
		case p.PublicKeyID:
			return &p.Key.PublicKey, nil
		case p.CertSerial:
			return &p.CertKey.PublicKey, nil
		}
		return nil, wxsign.ErrUnknownSerial
	}
}

// verify checks a response's signature headers against the platform keys.
func (f *fixture) verify(r result) error {
	return wxsign.HeadersFrom(r.Header.Get).Verify(context.Background(), platformKeys(f.p), f.sim.Now(), r.Body)
}

// admin calls the admin API and decodes the JSON answer into out (if non-nil).
func (f *fixture) admin(t *testing.T, method, path string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("marshal %T: %v", in, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// mustJSON marshals v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// prepayBody is a valid native prepay request.
func prepayBody(m *testkeys.Merchant, outTradeNo string, total int64, notifyURL string) map[string]any {
	return map[string]any{
		"appid": m.AppID, "mchid": m.MchID, "description": "Image形象店-深圳腾大-QQ公仔",
		"out_trade_no": outTradeNo, "notify_url": notifyURL,
		"amount": map[string]any{"total": total, "currency": "CNY"},
	}
}

// delivery is one notification as a receiver got it.
type delivery struct {
	Header    http.Header
	Body      []byte
	Arrived   time.Time
	VerifyErr error
	Plain     []byte // decrypted resource (only when verified)
	ID        string
}

// receiver is a merchant notification endpoint that verifies and decrypts
// every notification, records it, and answers with status(n, verifyErr).
type receiver struct {
	srv      *httptest.Server
	keys     wxsign.KeyLookup
	now      func() time.Time
	apiV3Key []byte
	status   func(n int, verifyErr error) int
	// hold, if set, is called for every request before answering.
	hold func(n int)

	mu          sync.Mutex
	got         []delivery
	inFlight    int
	maxInFlight int
	arrived     chan struct{}
}

func newReceiver(t *testing.T, f *fixture, status func(n int, verifyErr error) int) *receiver {
	t.Helper()
	rc := &receiver{keys: platformKeys(f.p), now: f.sim.Now, apiV3Key: []byte(f.m.APIv3Key), status: status,
		arrived: make(chan struct{}, 1024)}
	if rc.status == nil {
		rc.status = func(_ int, err error) int {
			if err != nil {
				return http.StatusUnauthorized
			}
			return http.StatusNoContent
		}
	}
	rc.srv = httptest.NewServer(rc)
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/notify/wxpay" }

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{Header: r.Header.Clone(), Body: body, Arrived: time.Now()}
	d.VerifyErr = wxsign.HeadersFrom(r.Header.Get).Verify(r.Context(), rc.keys, rc.now(), body)
	var env struct {
		ID       string          `json:"id"`
		Resource wxsign.Resource `json:"resource"`
	}
	if err := json.Unmarshal(body, &env); err != nil && d.VerifyErr == nil {
		d.VerifyErr = err
	}
	d.ID = env.ID
	if d.VerifyErr == nil {
		d.Plain, d.VerifyErr = env.Resource.Open(rc.apiV3Key)
	}
	rc.mu.Lock()
	n := len(rc.got)
	rc.got = append(rc.got, d)
	rc.inFlight++
	rc.maxInFlight = max(rc.maxInFlight, rc.inFlight)
	rc.mu.Unlock()
	rc.arrived <- struct{}{}
	if rc.hold != nil {
		rc.hold(n)
	}
	rc.mu.Lock()
	rc.inFlight--
	rc.mu.Unlock()
	w.WriteHeader(rc.status(n, d.VerifyErr))
}

// concurrency is the most requests the receiver handled at once.
func (rc *receiver) concurrency() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.maxInFlight
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wait waits for a notification to be delivered and returns the outcome.
func wait(t *testing.T, sim *wxpaysim.Sim, id string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := sim.WaitDelivered(ctx, id)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDelivered(%s): %v", id, err)
	}
	return err
}
