// Package wxpay is the WeChat Pay APIv3 HTTP client of the bundle: it signs
// every request with the merchant key (wxsign on wechatpay-go's signer),
// verifies every 2xx response with the WeChat Pay key its Wechatpay-Serial
// names (public key, platform certificate, or either in mixed mode), turns
// error bodies into *APIError, retries only what is safe to retry, and
// throttles per merchant and API family.
//
// The base URL is configuration (production by default, the simulator in
// tests and `make dev`); the clock, nonce source, sleep and http.Client are
// injectable. It never starts wechatpay-go's background certificate
// downloader: keys come from the secrets cache, refreshed on an unknown serial.
package wxpay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// DefaultBaseURL is the production API host.
const DefaultBaseURL = "https://api.mch.weixin.qq.com"

// Credentials is what the client needs from the secrets cache.
type Credentials interface {
	Get(ctx context.Context) (*secrets.Credentials, error)
	VerificationKey(ctx context.Context, serial string) (*rsa.PublicKey, error)
}

// RetryPolicy bounds retries of idempotent failures.
type RetryPolicy struct {
	MaxAttempts int           // total attempts including the first; default 3, 1 disables retries
	BaseDelay   time.Duration // default 100ms; doubled per attempt, full jitter
	MaxDelay    time.Duration // default 2s
}

// Config configures a Client. Zero values mean documented defaults.
type Config struct {
	Credentials Credentials
	BaseURL     string       // default DefaultBaseURL
	HTTPClient  *http.Client // default: 10s timeout
	Now         func() time.Time
	Rand        io.Reader // nonces; default crypto/rand
	Sleep       func(ctx context.Context, d time.Duration) error
	Retry       RetryPolicy
	RateLimit   RateLimit // default 50/s, burst 50 per merchant+family; PerSecond < 0 disables
	UserAgent   string
}

// Client calls WeChat Pay APIv3.
type Client struct {
	creds   Credentials
	base    string
	http    *http.Client
	now     func() time.Time
	rand    io.Reader
	sleep   func(ctx context.Context, d time.Duration) error
	retry   RetryPolicy
	limiter *limiter
	ua      string
}

// New builds a client.
func New(cfg Config) *Client {
	c := &Client{creds: cfg.Credentials, base: strings.TrimRight(cfg.BaseURL, "/"), http: cfg.HTTPClient, now: cfg.Now,
		rand: cfg.Rand, sleep: cfg.Sleep, retry: cfg.Retry, ua: cfg.UserAgent}
	if c.base == "" {
		c.base = DefaultBaseURL
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = 3
	}
	if c.retry.BaseDelay <= 0 {
		c.retry.BaseDelay = 100 * time.Millisecond
	}
	if c.retry.MaxDelay <= 0 {
		c.retry.MaxDelay = 2 * time.Second
	}
	if c.ua == "" {
		c.ua = "wxpay-serverless/1 (+wechatpay-go v0.2.21)"
	}
	rl := cfg.RateLimit
	if rl.PerSecond == 0 {
		rl = RateLimit{PerSecond: 50, Burst: 50}
	}
	if rl.PerSecond > 0 {
		c.limiter = newLimiter(rl, c.now)
	}
	return c
}

// BaseURL is the configured API host.
func (c *Client) BaseURL() string { return c.base }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Request is one API call.
type Request struct {
	Method string
	Path   string     // escaped path, e.g. /v3/pay/transactions/out-trade-no/ORDER1
	Query  url.Values // optional
	Body   any        // JSON-encoded once and sent byte-identical on every attempt; nil for none
}

// Response is a verified 2xx answer.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	RequestID  string
	Attempts   int
}

// Do sends req and decodes the verified body into out (when non-nil and the
// body is not empty).
func (c *Client) Do(ctx context.Context, req Request, out any) (*Response, error) {
	return c.Send(ctx, c.newCall(req), out)
}

// Call is a request ready to send: its body encoded once (every attempt
// sends these bytes) and, when made by Prepare, the signature of its first
// attempt computed in the background.
type Call struct {
	method, path, uri string
	body              []byte
	err               error          // encoding failed
	signed            chan presigned // Prepare's result (buffered); nil without
}

// presigned is a first attempt's Authorization computed ahead of time.
type presigned struct {
	creds *secrets.Credentials
	auth  wxsign.Authorization
	at    time.Time
	err   error
}

// presignMaxAge bounds how old a precomputed signature may be when sent
// (WeChat Pay accepts a timestamp within 5 minutes of its clock).
const presignMaxAge = 30 * time.Second

func (c *Client) newCall(req Request) *Call {
	call := &Call{method: req.Method, path: req.Path, uri: req.Path}
	if len(req.Query) > 0 {
		call.uri += "?" + req.Query.Encode()
	}
	if req.Body != nil {
		if raw, ok := req.Body.(json.RawMessage); ok {
			call.body = raw
		} else if b, err := json.Marshal(req.Body); err != nil {
			call.err = fmt.Errorf("wxpay: encode %s %s: %w", req.Method, req.Path, err)
		} else {
			call.body = b
		}
	}
	return call
}

// Prepare encodes req and starts signing its first attempt in the
// background, so that the RSA signature (1-2.5 ms of CPU, the largest
// in-process cost of a call) overlaps whatever I/O the caller does before
// Send — typically the ledger write that must precede the call. A prepared
// call that is never sent costs that CPU and nothing else; one sent late
// (after presignMaxAge) or after the credentials changed is signed afresh.
func (c *Client) Prepare(ctx context.Context, req Request) *Call {
	call := c.newCall(req)
	if call.err != nil {
		return call
	}
	call.signed = make(chan presigned, 1)
	at := c.now()
	go func() {
		creds, err := c.creds.Get(ctx)
		if err != nil {
			call.signed <- presigned{err: err}
			return
		}
		auth, err := c.authorize(creds, call.method, call.uri, at, call.body)
		call.signed <- presigned{creds: creds, auth: auth, at: at, err: err}
	}()
	return call
}

// Send sends a call (from Prepare, or built by Do) with the retry policy of
// Do and decodes the verified body into out.
func (c *Client) Send(ctx context.Context, call *Call, out any) (*Response, error) {
	if call.err != nil {
		return nil, call.err
	}
	creds, err := c.creds.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("wxpay: credentials: %w", err)
	}
	var first *wxsign.Authorization
	if call.signed != nil {
		select {
		case p := <-call.signed:
			if p.err == nil && p.creds == creds && c.now().Sub(p.at) < presignMaxAge {
				first = &p.auth
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("wxpay: %s %s: %w", call.method, call.path, ctx.Err())
		}
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := c.limiter.wait(ctx, creds.MchID+" "+Family(call.path), c.sleep); err != nil {
			return nil, fmt.Errorf("wxpay: %s %s: rate limit wait: %w", call.method, call.path, err)
		}
		auth := first
		first = nil // a retry is signed afresh (new timestamp and nonce)
		resp, err := c.attempt(ctx, creds, call, auth)
		if err == nil {
			resp.Attempts = attempt
			if out != nil && len(resp.Body) > 0 {
				if err := json.Unmarshal(resp.Body, out); err != nil {
					return resp, fmt.Errorf("wxpay: decode %s %s: %w", call.method, call.path, err)
				}
			}
			return resp, nil
		}
		lastErr = err
		if attempt >= c.retry.MaxAttempts || !retryable(ctx, err) {
			break
		}
		delay := c.backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			break // the Lambda deadline comes first: answer with what we know
		}
		if err := c.sleep(ctx, delay); err != nil {
			break
		}
	}
	return nil, fmt.Errorf("wxpay: %s %s: %w", call.method, call.path, lastErr)
}

// authorize signs one attempt: a fresh nonce, the timestamp of at.
func (c *Client) authorize(creds *secrets.Credentials, method, uri string, at time.Time, body []byte) (wxsign.Authorization, error) {
	nonce, err := wxsign.Nonce(c.rand)
	if err != nil {
		return wxsign.Authorization{}, err
	}
	ts := at.Unix()
	sig, err := wxsign.Sign(creds.MerchantPrivateKey, wxsign.RequestMessage(method, uri, ts, nonce, body))
	if err != nil {
		return wxsign.Authorization{}, err
	}
	return wxsign.Authorization{MchID: creds.MchID, Nonce: nonce, Timestamp: ts, Serial: creds.MerchantCertSerial, Signature: sig}, nil
}

func (c *Client) backoff(attempt int) time.Duration {
	d := float64(c.retry.BaseDelay) * math.Pow(2, float64(attempt-1))
	if d > float64(c.retry.MaxDelay) {
		d = float64(c.retry.MaxDelay)
	}
	// Full jitter spreads retries of many containers hitting one failure.
	return time.Duration(d/2 + mrand.Float64()*d/2)
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	return errors.Is(err, ErrTransport)
}

func (c *Client) attempt(ctx context.Context, creds *secrets.Credentials, call *Call, auth *wxsign.Authorization) (*Response, error) {
	if auth == nil {
		a, err := c.authorize(creds, call.method, call.uri, c.now(), call.body)
		if err != nil {
			return nil, err
		}
		auth = &a
	}
	method, uri, body := call.method, call.uri, call.body
	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, c.base+uri, rdr)
	if err != nil {
		return nil, fmt.Errorf("wxpay: build request: %w", err)
	}
	hreq.Header.Set(wxsign.HeaderAuthorization, auth.String())
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.ua)
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if serial := acceptSerial(creds); serial != "" {
		// Tells WeChat Pay which key we verify with (in mixed mode it
		// answers with that key): the public key when we have one.
		hreq.Header.Set(wxsign.HeaderSerial, serial)
	}
	hresp, err := c.http.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrTransport, err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hresp.Body, 16<<20))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || ctx.Err() == nil {
			return nil, fmt.Errorf("%w: read body: %w", ErrTransport, err)
		}
		return nil, err
	}
	reqID := hresp.Header.Get(wxsign.HeaderRequestID)
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		ae := &APIError{StatusCode: hresp.StatusCode, RequestID: reqID}
		var eb struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		}
		if json.Unmarshal(raw, &eb) == nil {
			ae.Code, ae.Message, ae.Detail = eb.Code, eb.Message, eb.Detail
		}
		if ae.Code == "" {
			ae.Code = http.StatusText(hresp.StatusCode)
		}
		return nil, ae
	}
	h := wxsign.HeadersFrom(hresp.Header.Get)
	if err := h.Verify(ctx, KeyLookup(c.creds), c.now(), raw); err != nil {
		return nil, fmt.Errorf("%w: %w (request id %s)", ErrResponseSignature, err, reqID)
	}
	return &Response{StatusCode: hresp.StatusCode, Header: hresp.Header, Body: raw, RequestID: reqID}, nil
}

func acceptSerial(c *secrets.Credentials) string {
	if c.PublicKeyID != "" {
		return c.PublicKeyID
	}
	serials := make([]string, 0, len(c.PlatformCerts))
	for serial := range c.PlatformCerts {
		serials = append(serials, serial)
	}
	sort.Strings(serials)
	if len(serials) == 0 {
		return ""
	}
	return serials[len(serials)-1]
}

// KeyLookup adapts the secrets cache to wxsign: an unknown serial (after the
// cache's one refresh) becomes wxsign.ErrUnknownSerial.
func KeyLookup(creds Credentials) wxsign.KeyLookup {
	return func(ctx context.Context, serial string) (*rsa.PublicKey, error) {
		k, err := creds.VerificationKey(ctx, serial)
		if errors.Is(err, secrets.ErrUnknownSerial) {
			return nil, fmt.Errorf("%w: %w", wxsign.ErrUnknownSerial, err)
		}
		return k, err
	}
}

// Download fetches a file WeChat Pay serves unsigned (bill downloads): the
// request is signed as usual, the response is not verified — the caller
// checks the file hash instead. The URL must be on the configured base URL,
// so signed requests never leave for another host.
//
// The HTTP client's Timeout bounds a whole exchange, body included, and a
// busy day's bill (tens of MB gzipped, read as fast as the pipeline parses
// it) can outlast it: here it bounds the wait for the response headers
// only, and the body is bounded by ctx (the caller's deadline). Close the
// body to release the request.
func (c *Client) Download(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	body, err := c.download(ctx, cancel, rawURL)
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelOnClose{ReadCloser: body, cancel: cancel}, nil
}

// cancelOnClose ends a download's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func (c *Client) download(ctx context.Context, cancel context.CancelFunc, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wxpay: download url: %w", err)
	}
	base, _ := url.Parse(c.base)
	if u.Scheme != base.Scheme || u.Host != base.Host {
		return nil, fmt.Errorf("wxpay: download url host %q is not the API host %q", u.Host, base.Host)
	}
	creds, err := c.creds.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("wxpay: credentials: %w", err)
	}
	nonce, err := wxsign.Nonce(c.rand)
	if err != nil {
		return nil, err
	}
	ts := c.now().Unix()
	uri := u.RequestURI()
	sig, err := wxsign.Sign(creds.MerchantPrivateKey, wxsign.RequestMessage(http.MethodGet, uri, ts, nonce, nil))
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+uri, nil)
	if err != nil {
		return nil, fmt.Errorf("wxpay: build request: %w", err)
	}
	hreq.Header.Set(wxsign.HeaderAuthorization, wxsign.Authorization{MchID: creds.MchID, Nonce: nonce, Timestamp: ts,
		Serial: creds.MerchantCertSerial, Signature: sig}.String())
	hreq.Header.Set("User-Agent", c.ua)
	hc := *c.http
	hc.Timeout = 0
	var late atomic.Bool
	if c.http.Timeout > 0 {
		headers := time.AfterFunc(c.http.Timeout, func() { late.Store(true); cancel() })
		defer headers.Stop()
	}
	hresp, err := hc.Do(hreq)
	if err != nil {
		if late.Load() {
			err = fmt.Errorf("no response headers within %s: %w", c.http.Timeout, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("wxpay: download: %w: %w", ErrTransport, err)
	}
	if hresp.StatusCode != http.StatusOK {
		defer hresp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(hresp.Body, 64<<10))
		ae := &APIError{StatusCode: hresp.StatusCode, RequestID: hresp.Header.Get(wxsign.HeaderRequestID)}
		_ = json.Unmarshal(raw, ae)
		return nil, fmt.Errorf("wxpay: download: %w", ae)
	}
	return hresp.Body, nil
}
