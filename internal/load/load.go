// Package load is the API load test of the reliability suite (`make load`,
// and a seconds-long variant in `make test`): a mixed workload — payment
// orders, Pay Score orders created and completed, merchant coupons used —
// sent through the local front door (the API Gateway stand-in, JWTs
// checked) at rising concurrency, against the real handlers, DynamoDB Local
// and the WeChat Pay simulator, all on loopback.
//
// Every level reports throughput and client-side p50/p99 latency. A timing
// middleware around each function handler measures the in-process handler
// overhead excluding I/O: the handler's duration minus the time its
// DynamoDB and WeChat Pay round trips (and the WeChat client's deliberate
// sleeps) took, metered by HTTP transports that read a per-request meter
// from the context. Bursts of identical concurrent requests check that one
// business request makes exactly one WeChat Pay call.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Options configure a Runner.
type Options struct {
	DynamoDBEndpoint string // required
	Table            string // required; created
	// Coupons is how many usable coupons are claimed during setup: one per
	// coupon use of the workload (a quarter of its requests) plus one per
	// coupon burst.
	Coupons int
	// PayScoreUsers is how many users authorize Pay Score during setup
	// (orders are spread over them); default 8.
	PayScoreUsers int
	Progress      io.Writer // optional setup/progress lines
}

// Runner is a running system under load: the stack (simulator, DynamoDB
// Local table, the stack's own front door for notifications) plus a second,
// metered front door over the same handlers that the workload calls.
type Runner struct {
	s        *stack.Stack
	frontURL string
	srv      *http.Server
	rec      *recorder
	http     *http.Client
	token    string
	run      string // unique prefix of this runner's business numbers
	seq      atomic.Int64
	progress io.Writer

	couponMu  sync.Mutex
	coupons   []couponRef
	psUsers   []string
	stockID   string
	serveDone chan error
	crypto    CryptoCost
}

// Start brings the system up and prepares the workload's fixtures (Pay
// Score users authorized, a coupon stock with claimed coupons). It only
// listens on loopback.
func Start(ctx context.Context, o Options) (*Runner, error) {
	if o.DynamoDBEndpoint == "" || o.Table == "" {
		return nil, errors.New("load: DynamoDBEndpoint and Table are required")
	}
	if o.PayScoreUsers <= 0 {
		o.PayScoreUsers = 8
	}
	ddbHTTP := &http.Client{Transport: meteredTransport{base: loopbackTransport(), kind: ioDynamoDB}}
	s, err := stack.Start(ctx, stack.Options{DynamoDBEndpoint: o.DynamoDBEndpoint, Table: o.Table, TimeScale: 0.001,
		DynamoDBOptions: []func(*dynamodb.Options){func(do *dynamodb.Options) { do.HTTPClient = ddbHTTP }}})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	r := &Runner{s: s, rec: &recorder{}, http: &http.Client{Transport: loopbackTransport(), Timeout: 60 * time.Second},
		run: fmt.Sprintf("%06d", time.Now().UnixNano()%1_000_000), progress: o.Progress, serveDone: make(chan error, 1)}
	if r.progress == nil {
		r.progress = io.Discard
	}
	if err := r.serve(); err != nil {
		s.Close()
		return nil, err
	}
	if r.token, err = s.Token(2 * time.Hour); err != nil {
		r.Close()
		return nil, fmt.Errorf("load: token: %w", err)
	}
	if err := r.setup(ctx, o); err != nil {
		r.Close()
		return nil, err
	}
	if r.crypto, err = calibrateCrypto(s.Merchant.Key, s.Platform.Key, 25); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// serve starts the metered front door: the same five handlers as the
// stack's door, but over a WeChat Pay client whose transport and sleeps are
// metered, each handler wrapped in the timing middleware.
//
// The WeChat Pay client's per-merchant rate limiter is off here. In AWS
// every concurrent request runs in its own Lambda container with its own
// client (and limiter) serving one request at a time; one shared limiter
// in this process would model N containers sharing a bucket and measure
// the limiter, not the handlers.
func (r *Runner) serve() error {
	wx := wxpay.New(wxpay.Config{Credentials: r.s.Secrets, BaseURL: r.s.SimURL,
		HTTPClient: &http.Client{Transport: meteredTransport{base: loopbackTransport(), kind: ioWeChat}, Timeout: 10 * time.Second},
		Sleep:      meteredSleep, RateLimit: wxpay.RateLimit{PerSecond: -1}})
	deps := r.s.Deps
	deps.WeChat = wx
	targets := frontdoor.AllFunctions(deps)
	for i := range targets {
		targets[i].Handle = r.rec.timed(targets[i].Handle)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("load: listen: %w", err)
	}
	r.frontURL = "http://" + ln.Addr().String()
	r.srv = &http.Server{Handler: frontdoor.NewWithAuthorizer(r.s.Auth, targets...), ReadHeaderTimeout: 10 * time.Second}
	go func() { r.serveDone <- r.srv.Serve(ln) }()
	return nil
}

// Close stops everything Start started.
func (r *Runner) Close() {
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.srv.Shutdown(ctx)
		cancel()
		<-r.serveDone
	}
	r.http.CloseIdleConnections()
	r.s.Close()
}

// Stack is the system under load (simulator, store, stack front door).
func (r *Runner) Stack() *stack.Stack { return r.s }

// Crypto is the calibrated cost of the protocol's RSA operations.
func (r *Runner) Crypto() CryptoCost { return r.crypto }

// FrontURL is the metered front door's base URL.
func (r *Runner) FrontURL() string { return r.frontURL }

// next is a fresh business number suffix.
func (r *Runner) next() string { return fmt.Sprintf("%s%06d", r.run, r.seq.Add(1)) }

func (r *Runner) logf(format string, args ...any) {
	fmt.Fprintf(r.progress, format+"\n", args...)
}

// answer is one request's outcome at the client.
type answer struct {
	status  int
	body    []byte
	latency time.Duration
}

// call sends one request through the metered front door with the JWT.
func (r *Runner) call(ctx context.Context, method, path, body string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.frontURL+path, rd)
	if err != nil {
		return answer{}, fmt.Errorf("load: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := r.http.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("load: %s %s: %w", method, path, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return answer{}, fmt.Errorf("load: %s %s: read answer: %w", method, path, err)
	}
	return answer{status: resp.StatusCode, body: raw, latency: lat}, nil
}
