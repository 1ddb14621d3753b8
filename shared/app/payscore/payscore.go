// Package payscore is the handler of the payscore function: WeChat Pay Score
// in no-confirm mode (免确认模式) — authorizations, service orders and the
// missed-callback sweep (wechatpay-apiv3.md section 2, the official
// no-confirm guide's five steps).
//
// Every rule WeChat Pay would reject is checked first, locally, and answered
// with a specific 4xx without calling WeChat Pay: the state machine of
// wechatpay-apiv3.md 2.4 (from the ledger row), the amount formula and
// limits, risk_fund names of the service's mode, field lengths and formats.
// Creating an order is idempotent on out_order_no (request digest stored
// with the order), and any call whose outcome is unknown (timeout, 5xx,
// unverifiable answer) is followed by a query before anything is retried.
//
// The function receives two event shapes: HTTP API requests (the app
// routes) and the EventBridge Scheduler input of the sweep, which settles
// orders whose PAYSCORE.USER_PAID callback never arrived.
package payscore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// JobSweep is the job name the PayscoreSweepSchedule in template.yaml sends.
const JobSweep = "payscore-sweep"

// ScheduleInput is the JSON the EventBridge Scheduler target sends verbatim.
// ScheduledTime comes from the <aws.scheduler.scheduled-time> attribute.
type ScheduleInput struct {
	Job           string `json:"job"`
	ScheduledTime string `json:"scheduled_time"`
}

// Event is what the payscore function receives: an HTTP API request or the
// schedule's input. Exactly one field is set; decoding is strict.
type Event = apigw.Triggered[ScheduleInput]

// ErrUnknownEvent is returned for a payload that is neither shape.
var ErrUnknownEvent = apigw.ErrUnknownEvent

// Defaults of Config.
const (
	// DefaultRiskCap is the service's risk cap (风险金额上限) in fen when
	// Config.RiskCap is zero: 500.00 CNY. The real cap is agreed with WeChat
	// Pay per service_id; configure it. The simulator uses the same default.
	DefaultRiskCap int64 = 50000
	// DefaultSweepAge is how long after complete an order may stay
	// USER_PAYING before the sweep asks WeChat: 4 h, the guide's "after all
	// notification attempts (4 hours) query the order".
	DefaultSweepAge = 4 * time.Hour
	// DefaultSweepLimit bounds the orders one sweep run looks at.
	DefaultSweepLimit = 100
)

// Config is the Pay Score service configuration. Zero values mean the
// documented defaults.
type Config struct {
	// Mode is the service's sub-mode; it decides the legal risk_fund names.
	// Default ledger.PayScoreEnjoyFirst (先享, ESTIMATE_ORDER_COST), the only
	// mode the official guide allows for no-confirm services.
	Mode ledger.PayScoreMode
	// RiskCap bounds risk_fund.amount and, in 先享 mode, total_amount
	// (fen). Default DefaultRiskCap.
	RiskCap int64
	// SweepAge is the age after complete at which the sweep queries an order
	// still waiting for payment. Default DefaultSweepAge.
	SweepAge time.Duration
	// SweepLimit is the most orders one sweep run queries. Default
	// DefaultSweepLimit.
	SweepLimit int
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("payscore: invalid configuration")

func (c Config) withDefaults() (Config, error) {
	if c.Mode == "" {
		c.Mode = ledger.PayScoreEnjoyFirst
	}
	if c.RiskCap == 0 {
		c.RiskCap = DefaultRiskCap
	}
	if c.SweepAge == 0 {
		c.SweepAge = DefaultSweepAge
	}
	if c.SweepLimit == 0 {
		c.SweepLimit = DefaultSweepLimit
	}
	switch {
	case !c.Mode.Valid():
		return c, fmt.Errorf("%w: mode %q (want %s or %s)", ErrConfig, c.Mode, ledger.PayScoreEnjoyFirst, ledger.PayScoreDepositFree)
	case c.RiskCap < 0 || c.SweepAge < 0 || c.SweepLimit < 0:
		return c, fmt.Errorf("%w: RiskCap, SweepAge and SweepLimit must not be negative", ErrConfig)
	}
	return c, nil
}

// Handler answers the payscore routes and runs the sweep.
type Handler struct {
	deps   app.Deps
	cfg    Config
	router *apigw.Router
	now    func() time.Time
	log    *slog.Logger
}

// New builds the handler with the default Config.
func New(deps app.Deps) *Handler {
	h, _ := NewWithConfig(deps, Config{}) // the zero Config always validates
	return h
}

// NewWithConfig builds the handler with cfg (zero fields are defaults).
func NewWithConfig(deps app.Deps, cfg Config) (*Handler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Handler{deps: deps, cfg: cfg, now: deps.Clock(), log: deps.Logger()}
	h.router = deps.NewRouter(h.routes())
	return h, nil
}

// Config returns the effective configuration (defaults applied).
func (h *Handler) Config() Config { return h.cfg }

func (h *Handler) routes() []apigw.Route {
	return []apigw.Route{
		h.deps.HealthRoute("payscore", "/payscore"),
		{Method: http.MethodPost, Path: "/payscore/authorizations", Scope: apigw.ScopeApp, Handle: h.preAuthorize},
		{Method: http.MethodGet, Path: "/payscore/authorizations/{authorization_code}", Scope: apigw.ScopeApp, Handle: h.getAuthorizationByCode},
		{Method: http.MethodDelete, Path: "/payscore/authorizations/{authorization_code}", Scope: apigw.ScopeApp, Handle: h.terminateByCode},
		{Method: http.MethodGet, Path: "/payscore/users/{openid}/authorization", Scope: apigw.ScopeApp, Handle: h.getUserAuthorization},
		{Method: http.MethodDelete, Path: "/payscore/users/{openid}/authorization", Scope: apigw.ScopeApp, Handle: h.terminateUser},
		{Method: http.MethodPost, Path: "/payscore/orders", Scope: apigw.ScopeApp, Handle: h.createOrder},
		{Method: http.MethodGet, Path: "/payscore/orders/{out_order_no}", Scope: apigw.ScopeApp, Handle: h.getOrder},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/complete", Scope: apigw.ScopeApp, Handle: h.completeOrder},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/modify", Scope: apigw.ScopeApp, Handle: h.modifyOrder},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/cancel", Scope: apigw.ScopeApp, Handle: h.cancelOrder},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/sync", Scope: apigw.ScopeApp, Handle: h.syncOrder},
	}
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point. HTTP requests get an HTTP response; a
// scheduled sweep returns a SweepResult, or an error (so that the
// asynchronous invocation is retried and finally dead-lettered) when it
// could not run at all.
func (h *Handler) Handle(ctx context.Context, e Event) (any, error) {
	switch {
	case e.HTTP != nil:
		return h.router.Handle(ctx, *e.HTTP)
	case e.Schedule != nil:
		return h.runSchedule(ctx, e.Schedule)
	}
	return nil, ErrUnknownEvent
}

func (h *Handler) runSchedule(ctx context.Context, in *ScheduleInput) (*SweepResult, error) {
	if in.Job != JobSweep {
		return nil, fmt.Errorf("payscore: unknown job %q", in.Job)
	}
	if in.ScheduledTime != "" {
		if _, err := time.Parse(time.RFC3339, in.ScheduledTime); err != nil {
			return nil, fmt.Errorf("payscore: scheduled_time %q: %w", in.ScheduledTime, err)
		}
	}
	return h.Sweep(ctx)
}
