// Package wxpaysim is a local WeChat Pay APIv3 simulator for tests and
// development. It is an http.Handler that speaks the real protocol:
//
//   - every /v3/ request must carry a valid WECHATPAY2-SHA256-RSA2048
//     Authorization header (merchant API key, ±5 minutes of the sim clock,
//     signature over METHOD\nRequestURI\ntimestamp\nnonce\nbody\n);
//   - every /v3/ response, errors and 204s included, is signed with the
//     platform key the merchant's Mode selects (public key, platform
//     certificate, or mixed: whatever the request's Wechatpay-Serial names);
//   - errors are WeChat bodies {"code","message"} with the real statuses;
//   - notifications are AEAD_AES_256_GCM resources sealed with the merchant
//     APIv3 key, POSTed signed, and retried on WeChat's schedule
//     (15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h,
//     scaled by Config.TimeScale);
//   - faults (API errors, delays, bad response signatures, duplicate,
//     concurrent, out-of-order, stale, SIGNTEST, wrong-serial and tampered
//     notifications) are injected on demand.
//
// The real world (a user paying, the sim clock moving, a merchant switching
// from certificates to the public key) is driven through the unauthenticated
// admin API under /sim/ or the equivalent Go methods.
//
// # Extending
//
// Products are route tables: a file per product declares
// func (s *Sim) xxxRoutes() []route, listing (method, pattern, handler)
// triples with {name} path parameters, and New appends it to the table.
// Handlers get the authenticated merchant (its business state is guarded by
// merchant.mu), the path parameters, the query and the verified body, and
// return a reply or an *apiError. Anything a product needs to tell the
// merchant goes through Sim.Notify.
package wxpaysim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// timeLayout is the RFC 3339 form WeChat Pay uses: second precision, +08:00.
const timeLayout = "2006-01-02T15:04:05+08:00"

// formatTime renders t the way WeChat Pay does.
func formatTime(t time.Time) string {
	return t.In(time.FixedZone("CST", 8*3600)).Format(timeLayout)
}

// deliveryTimeout is how long WeChat Pay waits for a notification answer.
const deliveryTimeout = 5 * time.Second

// Config configures a Sim. The zero value is usable.
type Config struct {
	// Platform is the WeChat Pay side key material; nil generates one.
	Platform *testkeys.Platform
	// Now is the base clock; nil means time.Now. The sim clock is Now()
	// plus everything passed to Advance.
	Now func() time.Time
	// HTTPClient delivers notifications; nil means a client with a 5 s
	// timeout. Every attempt is also bounded by 5 s, as WeChat treats a
	// slower answer as a failure. Pass httptest.Server.Client() to deliver
	// to a TLS test server.
	HTTPClient *http.Client
	// TimeScale multiplies the notification retry schedule; 0 means 1.0
	// (real time). Tests use e.g. 0.001 (15 s becomes 15 ms).
	TimeScale float64
	// Logf, if set, receives one line per notable event (deliveries,
	// internal errors).
	Logf func(format string, args ...any)
}

// Sim is the simulator. Create it with New; all methods are safe for
// concurrent use. Call Close to stop notification delivery.
type Sim struct {
	platform *testkeys.Platform
	baseNow  func() time.Time
	client   *http.Client
	// ownClient: client was made by New, so Close may close its idle
	// connections.
	ownClient bool
	scale     float64
	logf      func(format string, args ...any)
	routes    []route
	// ps is the Pay Score state: set once by New, guarded by its own lock
	// (payscoreState.lock), which is never taken while holding mu.
	ps *payscoreState
	// unknownSerial is a well-formed serial that names no key, for the
	// wrong-serial faults.
	unknownSerial string

	rootCtx    context.Context
	rootCancel context.CancelFunc
	wg         sync.WaitGroup

	clockMu sync.Mutex // guards offset; a leaf lock, so Now is callable anywhere
	offset  time.Duration

	// mu guards everything below. Lock order: mu before any merchant.mu;
	// never take mu while holding a merchant.mu.
	mu         sync.Mutex
	closed     bool
	merchants  map[string]*merchant
	faults     []*faultState
	requests   []RequestRecord
	deliveries []DeliveryRecord
	notes      map[string]*notification
	held       map[string][]*notification // per mchid, KindNotifyOutOfOrder
	gen        int                        // incremented by Reset
	genCtx     context.Context
	genCancel  context.CancelFunc
}

// New returns a simulator with no merchants.
func New(cfg Config) (*Sim, error) {
	p := cfg.Platform
	if p == nil {
		var err error
		if p, err = testkeys.NewPlatform(); err != nil {
			return nil, fmt.Errorf("wxpaysim: generate platform keys: %w", err)
		}
	}
	if p.Key == nil || p.CertKey == nil || p.PublicKeyID == "" || p.CertSerial == "" || len(p.CertPEM) == 0 {
		return nil, fmt.Errorf("%w: platform needs Key, CertKey, PublicKeyID, CertSerial and CertPEM", ErrInvalid)
	}
	if cfg.TimeScale < 0 {
		return nil, fmt.Errorf("%w: negative TimeScale %v", ErrInvalid, cfg.TimeScale)
	}
	s := &Sim{
		platform:  p,
		baseNow:   cfg.Now,
		client:    cfg.HTTPClient,
		scale:     cfg.TimeScale,
		logf:      cfg.Logf,
		merchants: make(map[string]*merchant),
		notes:     make(map[string]*notification),
		held:      make(map[string][]*notification),
	}
	if s.baseNow == nil {
		s.baseNow = time.Now
	}
	if s.client == nil {
		tr, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("%w: http.DefaultTransport is not an *http.Transport; pass Config.HTTPClient", ErrInvalid)
		}
		s.client = &http.Client{Timeout: deliveryTimeout, Transport: tr.Clone()}
		s.ownClient = true
	}
	if s.scale == 0 {
		s.scale = 1
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	serial, err := randomString(40, "0123456789ABCDEF")
	if err != nil {
		return nil, err
	}
	s.unknownSerial = serial
	s.rootCtx, s.rootCancel = context.WithCancel(context.Background())
	s.genCtx, s.genCancel = context.WithCancel(s.rootCtx)
	s.ps = &payscoreState{gen: -1, services: make(map[string]PayScoreService)}
	for _, table := range [][]route{s.certificateRoutes(), s.paymentRoutes(), s.refundRoutes(), s.payscoreRoutes(), s.busifavorRoutes(), s.paygiftRoutes(), s.billRoutes()} {
		s.routes = append(s.routes, table...)
	}
	return s, nil
}

// Platform returns the WeChat Pay key material the simulator signs with.
func (s *Sim) Platform() *testkeys.Platform { return s.platform }

// Now returns the sim clock: Config.Now() plus every Advance.
func (s *Sim) Now() time.Time {
	s.clockMu.Lock()
	off := s.offset
	s.clockMu.Unlock()
	return s.baseNow().Add(off)
}

// Advance moves the sim clock by d (negative d moves it back). It affects
// the request authentication window, signature timestamps and business
// times; notification retry delays run on the real clock.
func (s *Sim) Advance(d time.Duration) {
	s.clockMu.Lock()
	s.offset += d
	s.clockMu.Unlock()
}

// Reset forgets all business state (orders...), faults, request and
// delivery records and notifications, and cancels pending deliveries. The
// merchants and the clock stay.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.genCancel()
	s.genCtx, s.genCancel = context.WithCancel(s.rootCtx)
	s.gen++
	for _, m := range s.merchants {
		m.mu.Lock()
		m.resetState()
		m.mu.Unlock()
	}
	s.cancelHeldLocked()
	s.faults = nil
	s.requests = nil
	s.deliveries = nil
	s.notes = make(map[string]*notification)
}

// Close cancels pending notification deliveries, waits for their
// goroutines and closes the idle connections of the delivery client it
// created, so no goroutine of the simulator outlives it. The handler keeps
// answering API requests; Notify fails with ErrClosed.
func (s *Sim) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.rootCancel()
		s.cancelHeldLocked()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
}

// ServeHTTP serves the WeChat Pay API under /v3/ and the admin API under
// /sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/v3/"):
		s.serveV3(w, r)
	case p == "/sim" || strings.HasPrefix(p, "/sim/"):
		s.serveAdmin(w, r)
	default:
		writeJSON(w, http.StatusNotFound, errorBody{Code: "NOT_FOUND", Message: "wxpaysim serves /v3/ (WeChat Pay API) and /sim/ (admin API)"})
	}
}

// marshalJSON encodes v like WeChat Pay does: compact, without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("wxpaysim: encode JSON: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// writeJSON writes an unsigned JSON answer (admin API).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

const (
	alnum  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	digits = "0123456789"
)

// resourceNonce is the 12-character AEAD_AES_256_GCM nonce of a resource.
func resourceNonce() (string, error) { return wxsign.NonceN(rand.Reader, 12) }

// randomString returns n characters of alphabet from crypto/rand.
func randomString(n int, alphabet string) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("wxpaysim: random: %w", err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b), nil
}
