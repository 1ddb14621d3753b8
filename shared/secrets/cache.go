package secrets

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Cache defaults.
const (
	// DefaultTTL is how long fetched credentials are served before Get
	// fetches them again.
	DefaultTTL = 15 * time.Minute
	// DefaultMinRefreshInterval is the minimum spacing between fetches forced
	// by Refresh (and between retries after a failed fetch while cached
	// credentials exist).
	DefaultMinRefreshInterval = 30 * time.Second
	// maxSerialInError bounds how much of an untrusted serial is echoed in
	// errors.
	maxSerialInError = 128
)

// errFetchAborted is reported to callers waiting on a fetch whose Source
// panicked.
var errFetchAborted = errors.New("secrets: fetch aborted")

// CacheOptions configure a [Cache]. The zero value is usable.
type CacheOptions struct {
	// TTL is how long credentials are served from memory; <= 0 means
	// DefaultTTL.
	TTL time.Duration
	// MinRefreshInterval rate-limits Refresh: a Refresh closer than this to
	// the previous fetch attempt returns the cached credentials without
	// fetching, so a storm of unknown serials cannot hammer Secrets Manager.
	// After a failed fetch it also spaces out the retries made by Get while
	// stale credentials are served. <= 0 means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives "secrets loaded" and refresh failure records; nil
	// discards them. Secret values are never logged.
	Logger *slog.Logger
}

// Cache serves [Credentials] from a [Source], fetching and parsing them at
// most once per TTL. Concurrent callers share a single fetch. When a fetch
// fails but credentials were loaded before, the previous credentials keep
// being served (and a warning is logged). A Cache is safe for concurrent use;
// the Credentials it returns are shared and must not be modified.
type Cache struct {
	src        Source
	ttl        time.Duration
	minRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger

	mu          sync.Mutex
	creds       *Credentials // last successfully loaded credentials
	fetchedAt   time.Time    // start of the fetch that produced creds
	lastAttempt time.Time    // start of the last fetch attempt
	lastErr     error        // error of the last fetch attempt
	inflight    *flight      // fetch in progress, if any
}

// flight is one fetch shared by every caller that needs it.
type flight struct {
	done  chan struct{}
	creds *Credentials // credentials after the fetch: new, or stale on failure
	err   error        // fetch or parse error; nil on success
}

// NewCache returns a Cache reading from src.
func NewCache(src Source, opts CacheOptions) *Cache {
	c := &Cache{
		src:        src,
		ttl:        opts.TTL,
		minRefresh: opts.MinRefreshInterval,
		now:        opts.Now,
		log:        opts.Logger,
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.minRefresh <= 0 {
		c.minRefresh = DefaultMinRefreshInterval
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Get returns the cached credentials, fetching them when none are cached or
// the TTL has expired. If a fetch fails while older credentials exist, the
// older credentials are returned with a nil error and a warning is logged;
// otherwise the fetch error is returned.
func (c *Cache) Get(ctx context.Context) (*Credentials, error) {
	c.mu.Lock()
	if c.creds != nil {
		now := c.now()
		fresh := now.Sub(c.fetchedAt) < c.ttl
		backingOff := c.lastErr != nil && now.Sub(c.lastAttempt) < c.minRefresh
		if fresh || (backingOff && c.inflight == nil) {
			creds := c.creds
			c.mu.Unlock()
			return creds, nil
		}
	}
	creds, err := c.loadLocked(ctx)
	return result(creds, err)
}

// Refresh fetches the credentials again regardless of the TTL, for example
// because a response or notification carries an unknown Wechatpay-Serial.
// Calls within MinRefreshInterval of the previous fetch attempt return the
// cached credentials without fetching. Failures are handled as in Get.
func (c *Cache) Refresh(ctx context.Context) (*Credentials, error) {
	creds, err := c.refresh(ctx)
	return result(creds, err)
}

// VerificationKey returns the WeChat Pay key for serial (a public key ID or a
// platform certificate serial). When the cached credentials do not know the
// serial it calls Refresh once and looks again; if the serial is still
// unknown the error matches errors.Is(err, ErrUnknownSerial).
func (c *Cache) VerificationKey(ctx context.Context, serial string) (*rsa.PublicKey, error) {
	creds, err := c.Get(ctx)
	if err != nil {
		return nil, err
	}
	if key, ok := creds.VerificationKey(serial); ok {
		return key, nil
	}
	if serial == "" {
		return nil, fmt.Errorf("%w: empty serial", ErrUnknownSerial)
	}
	shown := serial
	if len(shown) > maxSerialInError {
		shown = shown[:maxSerialInError] + "..."
	}
	creds, fetchErr := c.refresh(ctx)
	if key, ok := creds.VerificationKey(serial); ok {
		return key, nil
	}
	if fetchErr != nil {
		return nil, fmt.Errorf("%w %q (refresh failed: %w)", ErrUnknownSerial, shown, fetchErr)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownSerial, shown)
}

// refresh is Refresh returning both the credentials (possibly stale) and the
// fetch error, if any.
func (c *Cache) refresh(ctx context.Context) (*Credentials, error) {
	c.mu.Lock()
	if c.inflight == nil && c.creds != nil && c.now().Sub(c.lastAttempt) < c.minRefresh {
		creds := c.creds
		c.mu.Unlock()
		return creds, nil
	}
	return c.loadLocked(ctx)
}

// result turns a (possibly stale) credentials/error pair into what Get and
// Refresh return: any credentials win over the error.
func result(creds *Credentials, err error) (*Credentials, error) {
	if creds != nil {
		return creds, nil
	}
	return nil, err
}

// loadLocked joins the fetch in flight or starts one. It must be called with
// c.mu held and releases it. It returns the credentials after the fetch (new,
// or the previous ones if the fetch failed) and the fetch error.
func (c *Cache) loadLocked(ctx context.Context) (*Credentials, error) {
	if f := c.inflight; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.creds, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("secrets: waiting for credentials: %w", ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	c.inflight = f
	started := c.now()
	c.lastAttempt = started
	c.mu.Unlock()

	c.fetch(ctx, f, started)
	c.logOutcome(ctx, f)
	return f.creds, f.err
}

// fetch performs the fetch for flight f, publishes the outcome and wakes the
// waiters, even if the Source panics.
func (c *Cache) fetch(ctx context.Context, f *flight, started time.Time) {
	var (
		creds     *Credentials
		err       error
		completed bool
	)
	defer func() {
		if !completed {
			creds, err = nil, errFetchAborted
		}
		c.mu.Lock()
		c.lastErr = err
		if err == nil {
			c.creds = creds
			c.fetchedAt = started
		}
		f.creds, f.err = c.creds, err
		c.inflight = nil
		c.mu.Unlock()
		close(f.done)
	}()
	creds, err = c.fetchAndParse(ctx)
	completed = true
}

// fetchAndParse fetches the document and parses it.
func (c *Cache) fetchAndParse(ctx context.Context) (*Credentials, error) {
	raw, version, err := c.src.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	creds, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("secrets: parse secret version %q: %w", version, err)
	}
	creds.Version = version
	return creds, nil
}

// logOutcome logs the result of flight f. Only redacted credentials and
// error strings (which never contain secret values) are logged.
func (c *Cache) logOutcome(ctx context.Context, f *flight) {
	switch {
	case f.err == nil:
		c.log.LogAttrs(ctx, slog.LevelInfo, "secrets loaded",
			slog.String("version", f.creds.Version),
			slog.Any("credentials", f.creds))
	case f.creds != nil:
		c.log.LogAttrs(ctx, slog.LevelWarn, "secrets refresh failed; serving cached credentials",
			slog.String("error", f.err.Error()),
			slog.String("cached_version", f.creds.Version))
	default:
		c.log.LogAttrs(ctx, slog.LevelError, "secrets load failed",
			slog.String("error", f.err.Error()))
	}
}
