package load

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// ioMeter accumulates, for one handler invocation, the wall time spent
// waiting on DynamoDB and on WeChat Pay (network round trip, response body
// reads) and in deliberate waits (rate-limit and retry sleeps of the WeChat
// Pay client). Everything else the handler spends is in-process overhead:
// decoding, validation, JSON, request signing and response verification,
// SDK marshalling, scheduling.
type ioMeter struct {
	ddb, wechat, wait   atomic.Int64 // nanoseconds
	ddbCalls, wechatCnt atomic.Int64
}

type meterKey struct{}

func withMeter(ctx context.Context, m *ioMeter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

func meterFrom(ctx context.Context) *ioMeter {
	m, _ := ctx.Value(meterKey{}).(*ioMeter)
	return m
}

// ioKind says which counter a metered transport feeds.
type ioKind int

const (
	ioDynamoDB ioKind = iota
	ioWeChat
)

func (m *ioMeter) add(kind ioKind, d time.Duration, call bool) {
	switch kind {
	case ioDynamoDB:
		m.ddb.Add(int64(d))
		if call {
			m.ddbCalls.Add(1)
		}
	case ioWeChat:
		m.wechat.Add(int64(d))
		if call {
			m.wechatCnt.Add(1)
		}
	}
}

// meteredTransport times round trips (and the reads of their response
// bodies) into the meter found in the request's context. Requests without
// a meter (setup, notifications) pass through untimed.
type meteredTransport struct {
	base http.RoundTripper
	kind ioKind
}

func (t meteredTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	m := meterFrom(req.Context())
	if m == nil {
		return t.base.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	m.add(t.kind, time.Since(start), true)
	if err != nil {
		return resp, err
	}
	resp.Body = &meteredBody{ReadCloser: resp.Body, m: m, kind: t.kind}
	return resp, nil
}

// meteredBody adds the time spent reading a response body to the meter.
type meteredBody struct {
	io.ReadCloser
	m    *ioMeter
	kind ioKind
}

func (b *meteredBody) Read(p []byte) (int, error) {
	start := time.Now()
	n, err := b.ReadCloser.Read(p)
	b.m.add(b.kind, time.Since(start), false)
	return n, err
}

func (b *meteredBody) Close() error {
	start := time.Now()
	err := b.ReadCloser.Close()
	b.m.add(b.kind, time.Since(start), false)
	return err
}

// meteredSleep is the WeChat Pay client's sleep (rate limiter, retry
// backoff): the time slept is waiting, not overhead.
func meteredSleep(ctx context.Context, d time.Duration) error {
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	var err error
	select {
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if m := meterFrom(ctx); m != nil {
		m.wait.Add(int64(time.Since(start)))
	}
	return err
}

// loopbackTransport is an HTTP transport for many concurrent loopback
// connections: enough idle connections per host that a concurrency level
// reuses its connections instead of churning through ephemeral ports.
func loopbackTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
}

// Sample is one handler invocation as the timing middleware saw it.
type Sample struct {
	Route    string
	Status   int
	Total    time.Duration // the handler, start to answer
	DynamoDB time.Duration // DynamoDB round trips and body reads
	WeChat   time.Duration // WeChat Pay round trips and body reads
	Wait     time.Duration // rate-limit and retry sleeps
	DDBCalls int
	WxCalls  int
}

// IO is the time the handler spent waiting on something outside the
// process.
func (s Sample) IO() time.Duration { return s.DynamoDB + s.WeChat + s.Wait }

// Overhead is the in-process time: the handler's duration minus its I/O.
// The handlers make their calls one after another, so the I/O intervals
// never overlap and the subtraction is exact.
func (s Sample) Overhead() time.Duration { return s.Total - s.IO() }

// recorder collects handler samples for the phase being measured.
type recorder struct {
	mu      sync.Mutex
	samples []Sample
	on      bool
}

func (r *recorder) start() {
	r.mu.Lock()
	r.samples, r.on = nil, true
	r.mu.Unlock()
}

func (r *recorder) stop() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.samples
	r.samples, r.on = nil, false
	return out
}

func (r *recorder) add(s Sample) {
	r.mu.Lock()
	if r.on {
		r.samples = append(r.samples, s)
	}
	r.mu.Unlock()
}

// handlerFunc is a front door target's entry point.
type handlerFunc func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// timed wraps a target with the timing middleware: a fresh meter in the
// context, the handler timed, one Sample recorded.
func (r *recorder) timed(next handlerFunc) handlerFunc {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		m := &ioMeter{}
		start := time.Now()
		resp, err := next(withMeter(ctx, m), e)
		total := time.Since(start)
		r.add(Sample{Route: e.RouteKey, Status: resp.StatusCode, Total: total,
			DynamoDB: time.Duration(m.ddb.Load()), WeChat: time.Duration(m.wechat.Load()), Wait: time.Duration(m.wait.Load()),
			DDBCalls: int(m.ddbCalls.Load()), WxCalls: int(m.wechatCnt.Load())})
		return resp, err
	}
}

// Percentile is the nearest-rank percentile p (0 < p <= 100) of ds; 0 for
// none. ds is not modified.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(float64(len(s)) * p / 100))
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}
