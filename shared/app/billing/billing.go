// Package billing is the handler of the billing function: the daily bill
// download and reconciliation, triggered by EventBridge Scheduler, and the
// admin routes to re-run or read one bill date.
package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// JobDailyBills is the job name the schedule in template.yaml sends.
const JobDailyBills = "daily-bills"

// ScheduleInput is the JSON the EventBridge Scheduler target sends (its
// Input, verbatim: Lambda gets no EventBridge envelope for a scheduler target).
// ScheduledTime comes from the <aws.scheduler.scheduled-time> context attribute.
type ScheduleInput struct {
	Job           string `json:"job"`
	ScheduledTime string `json:"scheduled_time"`
	// BillDate overrides the computed date (yyyy-MM-dd, Asia/Shanghai).
	BillDate string `json:"bill_date,omitempty"`
}

// Event is what the billing function receives: an HTTP API request or the
// schedule's input. Exactly one field is set; decoding is strict.
type Event = apigw.Triggered[ScheduleInput]

// ErrUnknownEvent is returned for a payload that is neither shape.
var ErrUnknownEvent = apigw.ErrUnknownEvent

// JobResult is what a scheduled invocation returns.
type JobResult struct {
	Job         string `json:"job"`
	BillDate    string `json:"bill_date"`
	Status      string `json:"status"` // DONE, EMPTY, or not_configured
	RunID       string `json:"run_id,omitempty"`
	Differences int64  `json:"differences"`
	Error       string `json:"error,omitempty"`
}

// StatusNotConfigured is the JobResult status of a function deployed
// without bill storage or a WeChat Pay client: retrying cannot help, so it
// is logged and counted (metric ReconciliationRuns, Status=not_configured)
// instead of going to the dead-letter queue.
const StatusNotConfigured = "not_configured"

// Handler answers both triggers.
type Handler struct {
	router *apigw.Router
	now    func() time.Time
	deps   app.Deps
	tune   []func(*Pipeline)
}

// Option adjusts the pipelines a handler builds (tests, local tools).
type Option func(*Pipeline)

// New builds the handler.
func New(deps app.Deps, opts ...Option) *Handler {
	h := &Handler{now: deps.Clock(), deps: deps}
	for _, o := range opts {
		h.tune = append(h.tune, o)
	}
	routes := []apigw.Route{
		deps.HealthRoute("billing", "/billing"),
		{Method: http.MethodPost, Path: "/billing/reconciliations/{bill_date}", Scope: apigw.ScopeAdmin, Handle: h.postRun},
		{Method: http.MethodGet, Path: "/billing/reconciliations/{bill_date}", Scope: apigw.ScopeAdmin, Handle: h.getRun},
	}
	h.router = deps.NewRouter(routes)
	return h
}

// Pipeline builds the pipeline of one run with the given not-ready backoff.
func (h *Handler) Pipeline(b Backoff) *Pipeline {
	p := &Pipeline{Store: h.deps.Store, Bills: h.deps.Bills, Log: h.deps.Logger(), Metrics: h.deps.Metrics, Now: h.now, NotReady: b}
	if h.deps.WeChat != nil {
		p.WeChat = h.deps.WeChat
	}
	for _, t := range h.tune {
		t(p)
	}
	return p
}

// configured reports what is missing to run the pipeline ("" when nothing).
func (h *Handler) configured() string {
	p := h.Pipeline(Backoff{})
	var missing []string
	if p.WeChat == nil {
		missing = append(missing, "the WeChat Pay client")
	}
	if p.Bills == nil {
		missing = append(missing, "bill storage (BILLS_BUCKET)")
	}
	if p.Store == nil {
		missing = append(missing, "the table")
	}
	return strings.Join(missing, " and ")
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point. HTTP requests get an HTTP response; a
// scheduled run returns a JobResult or an error, so that the asynchronous
// invocation is retried and finally lands in the dead-letter queue.
func (h *Handler) Handle(ctx context.Context, e Event) (any, error) {
	switch {
	case e.HTTP != nil:
		return h.router.Handle(ctx, *e.HTTP)
	case e.Schedule != nil:
		return h.runSchedule(ctx, e.Schedule)
	}
	return nil, ErrUnknownEvent
}

// runSchedule reconciles the previous Shanghai day (or bill_date). A bill
// still being generated is waited for with DefaultBackoff; if it is still
// not ready the record says PENDING and the error makes Lambda retry the
// invocation (twice, then the dead-letter queue).
func (h *Handler) runSchedule(ctx context.Context, in *ScheduleInput) (*JobResult, error) {
	if in.Job != JobDailyBills {
		return nil, fmt.Errorf("billing: unknown job %q", in.Job)
	}
	date := in.BillDate
	if date == "" {
		at := h.now()
		if in.ScheduledTime != "" {
			t, err := time.Parse(time.RFC3339, in.ScheduledTime)
			if err != nil {
				return nil, fmt.Errorf("billing: scheduled_time %q: %w", in.ScheduledTime, err)
			}
			at = t
		}
		date = PreviousBillDate(at)
	} else if _, err := time.ParseInLocation(time.DateOnly, date, ledger.Shanghai); err != nil {
		return nil, fmt.Errorf("billing: bill_date %q: %w", date, err)
	}
	res := &JobResult{Job: in.Job, BillDate: date}
	if missing := h.configured(); missing != "" {
		res.Status, res.Error = StatusNotConfigured, "no "+missing+" configured"
		h.deps.Logger().ErrorContext(ctx, "scheduled reconciliation cannot run", "bill_date", date, "missing", missing)
		h.deps.Metrics.Count("ReconciliationRuns", 1, map[string]string{"Function": "billing", "Status": StatusNotConfigured})
		return res, nil
	}
	if err := CheckBillDate(date, h.now()); err != nil {
		return nil, err
	}
	rec, err := h.Pipeline(DefaultBackoff()).Run(ctx, date, "schedule")
	if rec != nil {
		res.Status, res.RunID, res.Differences = rec.Status, rec.RunID, rec.Differences
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ErrBillDate: a bill date WeChat Pay cannot have a bill for.
var ErrBillDate = errors.New("billing: invalid bill date")

// CheckBillDate accepts yyyy-MM-dd dates from three months ago (WeChat Pay
// keeps bills that long, wechatpay-apiv3.md 6.1) up to yesterday, in
// Asia/Shanghai (a day's bill exists from 09:00 the next day).
func CheckBillDate(date string, now time.Time) error {
	if _, err := parseDate(date); err != nil {
		return err
	}
	today := ledger.Day(now)
	if date >= today {
		return fmt.Errorf("%w: %s is not before today (%s, Asia/Shanghai); a day's bill exists from 09:00 the next day", ErrBillDate, date, today)
	}
	if oldest := ledger.Day(now.In(ledger.Shanghai).AddDate(0, -3, 0)); date < oldest {
		return fmt.Errorf("%w: %s is before %s; WeChat Pay keeps bills for three months", ErrBillDate, date, oldest)
	}
	return nil
}

// parseDate parses a canonical yyyy-MM-dd date (Asia/Shanghai).
func parseDate(date string) (time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, date, ledger.Shanghai)
	if err != nil || d.Format(time.DateOnly) != date {
		return time.Time{}, fmt.Errorf("%w: %q is not a date yyyy-MM-dd", ErrBillDate, date)
	}
	return d, nil
}

// PreviousBillDate is the bill date a run at t reconciles: the day before t's
// date in Asia/Shanghai (Lambda clocks are UTC, so 16:00-24:00 UTC is already
// the next Shanghai day).
func PreviousBillDate(t time.Time) string {
	return ledger.Day(t.AddDate(0, 0, -1))
}
