// Package demo is the guided run behind `make demo`: every flow of the
// bundle, driven the way a merchant's app and WeChat Pay drive it.
//
// It talks only HTTP: to the front door (the API Gateway stand-in of `make
// dev`, or any deployed HTTP API) with a bearer token, and to the WeChat Pay
// simulator's unauthenticated admin API under /sim/ for what a WeChat user
// does (authorize Pay Score, pay, get deducted) and for the simulator clock.
// Each step prints its number, the HTTP calls with their status and time,
// and the ledger state the call changed, as the function's routes answer it.
// Any unexpected answer stops the run with a *StepError.
//
// The demo never prints a response body of a successful call: it prints
// chosen fields. Simulator admin answers carry notification plaintexts
// (payer openids...), which must stay out of every log.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Config says where the stack is.
type Config struct {
	// FrontURL is the front door, e.g. http://127.0.0.1:3000 for `make dev`.
	FrontURL string
	// SimURL is the WeChat Pay simulator, e.g. http://127.0.0.1:8787.
	SimURL string
	// Token is a bearer JWT with the wxpay/app and wxpay/admin scopes.
	Token string
	// MchID picks the simulated merchant; "" takes the simulator's first.
	MchID string
	// Out receives the progress; nil discards it.
	Out io.Writer
	// HTTPClient is used for every call; nil means a client with a 60 s
	// timeout.
	HTTPClient *http.Client
	// WaitTimeout bounds each wait for a notification or a state change;
	// 0 means 30 s.
	WaitTimeout time.Duration
}

// Call is one HTTP request a step made.
type Call struct {
	Target  string // "app" (front door) or "sim" (simulator admin API)
	Method  string
	Path    string
	Status  int
	Elapsed time.Duration
}

// Step is one numbered step of the run.
type Step struct {
	N       int
	Flow    string
	Title   string
	Calls   []Call
	Changes []string // the state lines the step printed
	Err     error    // nil when the step passed
}

// IDs are the business identifiers the run created, for checking the
// ledger afterwards.
type IDs struct {
	PayScoreOpenID, PayScoreCode, PayScoreOrder, PayScoreTransaction string

	CouponOpenID, CouponStock, CouponCode string

	GiftOpenID, GiftStock, GiftActivity, GiftOrder, GiftTransaction, GiftCoupon string

	NoCashOrder, NoCashTransaction, NoCashRefund string
}

// OpenIDs are the openids the demo chose itself (the app knows them; they
// may appear in its output). Any other openid came from WeChat Pay.
func (ids IDs) OpenIDs() []string {
	return []string{ids.PayScoreOpenID, ids.CouponOpenID, ids.GiftOpenID}
}

// Result is what a run did.
type Result struct {
	MchID string
	Steps []Step
	// Flows lists the flows that completed, in order.
	Flows []string
	IDs   IDs
	// BillDate is the Shanghai day the flows ran on.
	BillDate string
	// Reconciliation is the billing function's answer for BillDate.
	Reconciliation *Reconciliation
}

// Passed reports whether every step passed and every flow completed.
func (r *Result) Passed() bool {
	if r == nil || len(r.Flows) != len(flows()) {
		return false
	}
	for _, s := range r.Steps {
		if s.Err != nil {
			return false
		}
	}
	return true
}

// StepError is the failure of one step.
type StepError struct {
	Step  int
	Flow  string
	Title string
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s: %s): %v", e.Step, e.Flow, e.Title, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrUnexpected classifies an answer the demo did not expect (a status or
// a state).
var ErrUnexpected = errors.New("unexpected answer")

// ErrTimeout classifies a wait that ran out.
var ErrTimeout = errors.New("timed out")

// flow is one guided flow.
type flow struct {
	name string
	doc  string
	run  func(ctx context.Context, r *runner) error
}

// flows are the flows in the order they run.
func flows() []flow {
	return []flow{
		{"setup", "the stack and a day of its own", setup},
		{"payscore", "Pay Score, no-confirm mode (docs/payscore.md)", payScoreFlow},
		{"coupons", "Merchant coupon: stock to redemption (docs/coupons.md)", couponFlow},
		{"paygift", "Pay-gift activity: a qualifying payment earns a coupon (docs/coupons.md)", payGiftFlow},
		{"nocash", "A payment with a no-prepaid (NOCASH) coupon and a partial refund (docs/payments.md)", noCashFlow},
		{"reconcile", "The day's bill reconciled (docs/billing.md)", reconcileFlow},
	}
}

// FlowNames lists the flows a complete run goes through.
func FlowNames() []string {
	var out []string
	for _, f := range flows() {
		out = append(out, f.name)
	}
	return out
}

// Run runs every flow in order and stops at the first failure. The Result
// covers what ran, also on error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.FrontURL == "" || cfg.SimURL == "" || cfg.Token == "" {
		return nil, errors.New("demo: FrontURL, SimURL and Token are required")
	}
	r := &runner{cfg: cfg, out: cfg.Out, hc: cfg.HTTPClient, res: &Result{}, wait: cfg.WaitTimeout}
	if r.out == nil {
		r.out = io.Discard
	}
	if r.hc == nil {
		r.hc = &http.Client{Timeout: 60 * time.Second}
	}
	if r.wait <= 0 {
		r.wait = 30 * time.Second
	}
	r.cfg.FrontURL = strings.TrimRight(cfg.FrontURL, "/")
	r.cfg.SimURL = strings.TrimRight(cfg.SimURL, "/")
	start := time.Now()
	r.printf("wxpay-serverless demo\n  front door %s\n  simulator  %s\n", r.cfg.FrontURL, r.cfg.SimURL)
	all := flows()
	for i, f := range all {
		r.flow = f.name
		r.printf("\n== %d/%d %s ==\n", i+1, len(all), f.doc)
		err := f.run(ctx, r)
		if err == nil && r.step != nil && r.step.Err != nil {
			err = r.step.Err
		}
		if err != nil {
			r.fail(err)
			r.printf("\nFAILED after %s: %v\n", time.Since(start).Round(time.Millisecond), r.lastErr)
			return r.res, r.lastErr
		}
		r.res.Flows = append(r.res.Flows, f.name)
	}
	r.printf("\nAll %d flows completed in %d steps (%s).\n", len(all), len(r.res.Steps), time.Since(start).Round(time.Millisecond))
	return r.res, nil
}

// runner carries one run.
type runner struct {
	cfg     Config
	out     io.Writer
	hc      *http.Client
	wait    time.Duration
	res     *Result
	flow    string
	step    *Step
	lastErr error

	appID, serviceID string
	suffix           string // makes the run's numbers unique
	clockShared      bool   // handlers follow the simulator clock
	clockNote        string // why not, when not
}

func (r *runner) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

// begin starts the next step.
func (r *runner) begin(title string) {
	r.res.Steps = append(r.res.Steps, Step{N: len(r.res.Steps) + 1, Flow: r.flow, Title: title})
	r.step = &r.res.Steps[len(r.res.Steps)-1]
	r.printf("[%2d] %s\n", r.step.N, title)
}

// note prints and records a state line of the current step.
func (r *runner) note(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.step.Changes = append(r.step.Changes, line)
	r.printf("       %s\n", line)
}

// fail records err on the current step as a *StepError.
func (r *runner) fail(err error) {
	var se *StepError
	if !errors.As(err, &se) {
		if r.step == nil {
			r.begin("start")
		}
		se = &StepError{Step: r.step.N, Flow: r.step.Flow, Title: r.step.Title, Err: err}
	}
	if r.step != nil && r.step.Err == nil {
		r.step.Err = se
	}
	r.lastErr = se
}

// unexpected builds an ErrUnexpected error.
func unexpected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnexpected, fmt.Sprintf(format, args...))
}

// errorBody is the {code, message} shape of every error answer (the
// functions' and the simulator's).
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// app calls the front door.
func (r *runner) app(ctx context.Context, method, path string, in, out any, want ...int) (int, error) {
	return r.call(ctx, "app", r.cfg.FrontURL, method, path, in, out, want)
}

// sim calls the simulator's admin API.
func (r *runner) sim(ctx context.Context, method, path string, in, out any, want ...int) (int, error) {
	return r.call(ctx, "sim", r.cfg.SimURL, method, path, in, out, want)
}

// call sends in (JSON; nil for no body), prints the call, checks the
// status against want (default 200) and decodes a 2xx answer into out (an
// error answer into out when out is an *errorBody). The body of an answer
// is never printed; an unexpected error answer is reported by its code and
// message only.
func (r *runner) call(ctx context.Context, target, base, method, path string, in, out any, want []int) (int, error) {
	status, raw, elapsed, err := r.send(ctx, target, base, method, path, in)
	r.step.Calls = append(r.step.Calls, Call{Target: target, Method: method, Path: path, Status: status, Elapsed: elapsed})
	shown := path
	if len(shown) > 90 {
		shown = shown[:87] + "..."
	}
	if err != nil {
		r.printf("       %s  %-6s %s  -> %v\n", target, method, shown, err)
		return status, err
	}
	r.printf("       %s  %-6s %s  -> %d (%d ms)\n", target, method, shown, status, elapsed.Milliseconds())
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	if !slices.Contains(want, status) {
		var e errorBody
		_ = json.Unmarshal(raw, &e)
		if e.Code != "" {
			return status, unexpected("%s %s answered %d %s: %s, want %v", method, path, status, e.Code, e.Message, want)
		}
		return status, unexpected("%s %s answered %d, want %v", method, path, status, want)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return status, fmt.Errorf("%s %s: %d answer is not the expected JSON: %w", method, path, status, err)
		}
	}
	return status, nil
}

// send does one request.
func (r *runner) send(ctx context.Context, target, base, method, path string, in any) (int, []byte, time.Duration, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, 0, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return 0, nil, 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if target == "app" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
	}
	start := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	elapsed := time.Since(start)
	if err != nil {
		return resp.StatusCode, nil, elapsed, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, raw, elapsed, nil
}

// poll calls check until it reports done, the wait runs out or ctx ends.
// It returns the number of polls.
func (r *runner) poll(ctx context.Context, what string, check func(ctx context.Context) (bool, error)) (int, error) {
	deadline := time.Now().Add(r.wait)
	delay := 20 * time.Millisecond
	for n := 1; ; n++ {
		done, err := check(ctx)
		if err != nil || done {
			return n, err
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("%w after %s waiting for %s", ErrTimeout, r.wait, what)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, ctx.Err()
		case <-t.C:
		}
		if delay < 250*time.Millisecond {
			delay *= 2
		}
	}
}

// quietGet is a GET that is not printed as a call of its own (the polls of
// a wait); the wait prints one line for all of them.
func (r *runner) quietGet(ctx context.Context, target, path string, out any) error {
	base := r.cfg.SimURL
	if target == "app" {
		base = r.cfg.FrontURL
	}
	status, raw, _, err := r.send(ctx, target, base, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		var e errorBody
		_ = json.Unmarshal(raw, &e)
		return unexpected("GET %s answered %d %s %s", path, status, e.Code, e.Message)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
