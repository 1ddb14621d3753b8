package wxpay

import (
	"context"
	"strings"
	"sync"
	"time"
)

// RateLimit is a token bucket per merchant and API family. WeChat Pay limits
// request rates per merchant and interface ("FREQUENCY_LIMITED"); throttling
// on our side keeps a burst of Lambda invocations from tripping it.
type RateLimit struct {
	PerSecond float64 // refill rate; <= 0 disables limiting
	Burst     int     // bucket size; default max(1, PerSecond)
}

type bucket struct {
	tokens float64
	last   time.Time
}

type limiter struct {
	cfg     RateLimit
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
}

func newLimiter(cfg RateLimit, now func() time.Time) *limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = int(cfg.PerSecond)
		if cfg.Burst < 1 {
			cfg.Burst = 1
		}
	}
	return &limiter{cfg: cfg, now: now, buckets: map[string]*bucket{}}
}

// Family names the API family of a path: its first three segments, e.g.
// /v3/payscore/serviceorder, /v3/marketing/busifavor, /v3/pay/transactions.
func Family(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 4)
	if len(parts) > 3 {
		parts = parts[:3]
	}
	return "/" + strings.Join(parts, "/")
}

// reserve takes a token for key, returning how long to wait first.
func (l *limiter) reserve(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		l.buckets[key] = b
	}
	b.tokens += now.Sub(b.last).Seconds() * l.cfg.PerSecond
	if b.tokens > float64(l.cfg.Burst) {
		b.tokens = float64(l.cfg.Burst)
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / l.cfg.PerSecond * float64(time.Second))
}

// wait blocks until a token is available or ctx ends.
func (l *limiter) wait(ctx context.Context, key string, sleep func(context.Context, time.Duration) error) error {
	if l == nil || l.cfg.PerSecond <= 0 {
		return nil
	}
	if d := l.reserve(key); d > 0 {
		return sleep(ctx, d)
	}
	return nil
}
