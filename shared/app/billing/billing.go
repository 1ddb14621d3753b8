// Package billing is the handler of the billing function: the daily bill
// download and reconciliation, triggered by EventBridge Scheduler, and the
// admin routes to re-run or read one bill date.
package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

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
// schedule's input. Exactly one field is set.
type Event struct {
	HTTP     *events.APIGatewayV2HTTPRequest
	Schedule *ScheduleInput
}

// ErrUnknownEvent is returned for a payload that is neither shape.
var ErrUnknownEvent = errors.New("billing: event is neither an HTTP API request nor a schedule input")

// UnmarshalJSON decodes strictly: the payload must match one shape exactly.
func (e *Event) UnmarshalJSON(b []byte) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("billing: decode event: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	switch {
	case probe["routeKey"] != nil || probe["requestContext"] != nil:
		var req events.APIGatewayV2HTTPRequest
		if err := dec.Decode(&req); err != nil {
			return fmt.Errorf("billing: decode HTTP API event: %w", err)
		}
		*e = Event{HTTP: &req}
	case probe["job"] != nil:
		var in ScheduleInput
		if err := dec.Decode(&in); err != nil {
			return fmt.Errorf("billing: decode schedule input: %w", err)
		}
		*e = Event{Schedule: &in}
	default:
		return ErrUnknownEvent
	}
	return nil
}

// MarshalJSON encodes whichever shape is set.
func (e Event) MarshalJSON() ([]byte, error) {
	switch {
	case e.HTTP != nil:
		return json.Marshal(e.HTTP)
	case e.Schedule != nil:
		return json.Marshal(e.Schedule)
	}
	return nil, ErrUnknownEvent
}

// JobResult is what a scheduled invocation returns.
type JobResult struct {
	Job      string `json:"job"`
	BillDate string `json:"bill_date"`
	Status   string `json:"status"`
}

// Handler answers both triggers.
type Handler struct {
	router *apigw.Router
	now    func() time.Time
}

// New builds the handler.
func New(deps app.Deps) *Handler {
	ni := apigw.NotImplemented
	routes := []apigw.Route{
		deps.HealthRoute("billing", "/billing"),
		{Method: http.MethodPost, Path: "/billing/reconciliations/{bill_date}", Scope: apigw.ScopeAdmin, Handle: ni},
		{Method: http.MethodGet, Path: "/billing/reconciliations/{bill_date}", Scope: apigw.ScopeAdmin, Handle: ni},
	}
	return &Handler{router: deps.NewRouter(routes), now: deps.Clock()}
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

func (h *Handler) runSchedule(_ context.Context, in *ScheduleInput) (*JobResult, error) {
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
	// The download and reconciliation pipeline lands with the billing issue.
	return &JobResult{Job: in.Job, BillDate: date, Status: "pending_pipeline"}, nil
}

// PreviousBillDate is the bill date a run at t reconciles: the day before t's
// date in Asia/Shanghai (Lambda clocks are UTC, so 16:00-24:00 UTC is already
// the next Shanghai day).
func PreviousBillDate(t time.Time) string {
	return ledger.Day(t.AddDate(0, 0, -1))
}
