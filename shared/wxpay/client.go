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
	var body []byte
	if req.Body != nil {
		var err error
		if raw, ok := req.Body.(json.RawMessage); ok {
			body = raw
		} else if body, err = json.Marshal(req.Body); err != nil {
			return nil, fmt.Errorf("wxpay: encode %s %s: %w", req.Method, req.Path, err)
		}
	}
	uri := req.Path
	if len(req.Query) > 0 {
		uri += "?" + req.Query.Encode()
	}
	creds, err := c.creds.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("wxpay: credentials: %w", err)
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := c.limiter.wait(ctx, creds.MchID+" "+Family(req.Path), c.sleep); err != nil {
			return nil, fmt.Errorf("wxpay: %s %s: rate limit wait: %w", req.Method, req.Path, err)
		}
		resp, err := c.attempt(ctx, creds, req.Method, uri, body)
		if err == nil {
			resp.Attempts = attempt
			if out != nil && len(resp.Body) > 0 {
				if err := json.Unmarshal(resp.Body, out); err != nil {
					return resp, fmt.Errorf("wxpay: decode %s %s: %w", req.Method, req.Path, err)
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
	return nil, fmt.Errorf("wxpay: %s %s: %w", req.Method, req.Path, lastErr)
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

func (c *Client) attempt(ctx context.Context, creds *secrets.Credentials, method, uri string, body []byte) (*Response, error) {
	nonce, err := wxsign.Nonce(c.rand)
	if err != nil {
		return nil, err
	}
	ts := c.now().Unix()
	sig, err := wxsign.Sign(creds.MerchantPrivateKey, wxsign.RequestMessage(method, uri, ts, nonce, body))
	if err != nil {
		return nil, err
	}
	auth := wxsign.Authorization{MchID: creds.MchID, Nonce: nonce, Timestamp: ts, Serial: creds.MerchantCertSerial, Signature: sig}
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
func (c *Client) Download(ctx context.Context, rawURL string) (io.ReadCloser, error) {
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
	hresp, err := c.http.Do(hreq)
	if err != nil {
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
