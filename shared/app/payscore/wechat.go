package payscore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Error codes of the payscore routes (the {code, message} body). Rules
// checked locally come first; the rest surface WeChat Pay's answers.
const (
	CodeInvalidOutOrderNo   = "INVALID_OUT_ORDER_NO"     // 400
	CodeInvalidAmount       = "INVALID_AMOUNT"           // 400: negative amount, count outside 1..100
	CodeTotalMismatch       = "TOTAL_AMOUNT_MISMATCH"    // 400: total != Σpayments − Σdiscounts
	CodeOverRiskCap         = "AMOUNT_OVER_RISK_CAP"     // 400
	CodeRiskFundName        = "RISK_FUND_NAME_MISMATCH"  // 400: also WeChat's 订单风险金额名称不符合要求
	CodeInvalidTime         = "INVALID_TIME"             // 400
	CodeFieldTooLong        = "FIELD_TOO_LONG"           // 400
	CodeAmountNotLower      = "AMOUNT_NOT_LOWER"         // 400: modify may only lower the amount
	CodeInvalidNotifyURL    = "INVALID_NOTIFY_URL"       // 500: deployment configuration
	CodeUserNotAuthorized   = "USER_NOT_AUTHORIZED"      // 403: the user's cached state is not AVAILABLE
	CodeAuthorizationActive = "AUTHORIZATION_NOT_ACTIVE" // 409: terminate of an authorization that is not AVAILABLE
	CodeAuthorizationCode   = "AUTHORIZATION_CODE_USED"  // 409
	CodeInvalidOrderState   = "INVALID_ORDER_STATE"      // 409: the state machine refuses the call
	CodeOrderBusy           = "ORDER_BUSY"               // 409: another call on the order is in flight
	CodeOrderPending        = "ORDER_PENDING"            // 409: the create's outcome is not known yet
	CodeOutOrderNoReused    = "OUT_ORDER_NO_REUSED"      // 409: same out_order_no, different request
	CodeCreateRejected      = "CREATE_REJECTED"          // 409: the concurrent create this replay waited for was refused
	CodeNoAuth              = "NO_AUTH"                  // 403: WeChat 商户暂无权限使用此服务
	CodeAppIDNotBound       = "APPID_NOT_BOUND"          // 403: WeChat mch_id和AppID未绑定
	CodeRiskRejected        = "RISK_REJECTED"            // 422: WeChat 综合评估不通过
	CodeUserHasOpenOrders   = "USER_HAS_OPEN_ORDERS"     // 409: WeChat 存在未完结订单
	CodeOrderNotExist       = "ORDER_NOT_EXIST"          // 404 at WeChat
	CodeNotConfigured       = "NOT_CONFIGURED"           // 503: no service_id / appid / WeChat client
	CodeTryAgain            = "TRY_AGAIN"                // 503: WeChat did not answer; retry the same request
	CodeUpstream            = apigw.CodeUpstream         // 502
)

// The notify channel of Pay Score callbacks and the WeChat Pay paths used.
const (
	notifyChannel            = "payscore"
	wechatCreatePath         = "/v3/payscore/serviceorder"
	wechatPermissionsPath    = "/v3/payscore/permissions"
	wechatPermissionsByCode  = "/v3/payscore/permissions/authorization-code/"
	wechatPermissionsByOpen  = "/v3/payscore/permissions/openid/"
	wechatServiceOrderPrefix = "/v3/payscore/serviceorder/"
)

// service is the merchant's Pay Score identity for one request.
type service struct {
	ID    string // service_id
	AppID string // the first appid of the merchant credentials
}

// service reads the service_id and appid from the merchant credentials.
func (h *Handler) service(ctx context.Context) (service, error) {
	if h.deps.Secrets == nil || h.deps.WeChat == nil {
		return service{}, apigw.Errorf(http.StatusServiceUnavailable, CodeNotConfigured, "the payscore function has no WeChat Pay client or credentials")
	}
	creds, err := h.deps.Secrets.Get(ctx)
	if err != nil {
		return service{}, fmt.Errorf("payscore: credentials: %w", err)
	}
	switch {
	case creds.PayScoreServiceID == "":
		return service{}, apigw.Errorf(http.StatusServiceUnavailable, CodeNotConfigured, "the merchant credentials have no payscore_service_id")
	case len(creds.AppIDs) == 0:
		return service{}, apigw.Errorf(http.StatusServiceUnavailable, CodeNotConfigured, "the merchant credentials have no appid")
	}
	return service{ID: creds.PayScoreServiceID, AppID: creds.AppIDs[0]}, nil
}

// wxCreate is the create body (wechatpay-apiv3.md 2.2 O1).
type wxCreate struct {
	OutOrderNo          string                    `json:"out_order_no"`
	AppID               string                    `json:"appid"`
	ServiceID           string                    `json:"service_id"`
	ServiceIntroduction string                    `json:"service_introduction"`
	PostPayments        []ledger.PayScoreItem     `json:"post_payments,omitempty"`
	PostDiscounts       []ledger.PayScoreItem     `json:"post_discounts,omitempty"`
	TimeRange           *ledger.PayScoreTimeRange `json:"time_range"`
	Location            *ledger.PayScoreLocation  `json:"location,omitempty"`
	RiskFund            *ledger.PayScoreRiskFund  `json:"risk_fund"`
	Attach              string                    `json:"attach,omitempty"`
	NotifyURL           string                    `json:"notify_url"`
	OpenID              string                    `json:"openid"`
	NeedUserConfirm     bool                      `json:"need_user_confirm"`
	Device              *ledger.PayScoreDevice    `json:"device,omitempty"`
}

// wxOrder is a service order as WeChat Pay answers it (O1/O2/O4/O5/O7).
type wxOrder struct {
	AppID               string                    `json:"appid"`
	MchID               string                    `json:"mchid"`
	OutOrderNo          string                    `json:"out_order_no"`
	ServiceID           string                    `json:"service_id"`
	ServiceIntroduction string                    `json:"service_introduction"`
	State               string                    `json:"state"`
	StateDescription    string                    `json:"state_description"`
	TotalAmount         *int64                    `json:"total_amount"`
	PostPayments        []ledger.PayScoreItem     `json:"post_payments"`
	PostDiscounts       []ledger.PayScoreItem     `json:"post_discounts"`
	RiskFund            *ledger.PayScoreRiskFund  `json:"risk_fund"`
	TimeRange           *ledger.PayScoreTimeRange `json:"time_range"`
	Location            *ledger.PayScoreLocation  `json:"location"`
	Attach              string                    `json:"attach"`
	OrderID             string                    `json:"order_id"`
	OpenID              string                    `json:"openid"`
	Collection          *wxCollection             `json:"collection"`
}

type wxCollection struct {
	State        string     `json:"state"`
	TotalAmount  int64      `json:"total_amount"`
	PayingAmount int64      `json:"paying_amount"`
	PaidAmount   int64      `json:"paid_amount"`
	Details      []wxDetail `json:"details,omitempty"`
}

type wxDetail struct {
	Seq             int64              `json:"seq"`
	Amount          int64              `json:"amount"`
	PaidType        string             `json:"paid_type"`
	PaidTime        string             `json:"paid_time"`
	TransactionID   string             `json:"transaction_id,omitempty"`
	PromotionDetail []ledger.Promotion `json:"promotion_detail,omitempty"`
}

// wxAuthorization is an authorization record (A2/A4).
type wxAuthorization struct {
	ServiceID                string `json:"service_id"`
	AppID                    string `json:"appid"`
	OpenID                   string `json:"openid"`
	AuthorizationCode        string `json:"authorization_code"`
	AuthorizationState       string `json:"authorization_state"`
	CancelAuthorizationTime  string `json:"cancel_authorization_time"`
	AuthorizationSuccessTime string `json:"authorization_success_time"`
}

// definitive reports a WeChat answer that settles the call: a business
// error (4xx). Anything else (5xx after the client's retries, transport
// failures, timeouts, unverifiable answers) leaves the outcome unknown.
func definitive(err error) bool {
	var ae *wxpay.APIError
	return errors.As(err, &ae) && !ae.Retryable()
}

// wechatError turns a WeChat Pay failure into the answer the app gets. The
// FAQ errors of the no-confirm guide get their own codes; WeChat's message
// and Request-ID are kept for support.
func (h *Handler) wechatError(op string, err error) error {
	var ae *wxpay.APIError
	if !errors.As(err, &ae) {
		return &apigw.Error{Status: http.StatusBadGateway, Code: CodeUpstream,
			Message: fmt.Sprintf("WeChat Pay did not answer the %s; retry the same request", op), Err: err}
	}
	wx := fmt.Sprintf("%s %s (request id %s)", ae.Code, ae.Message, ae.RequestID)
	e := func(status int, code, format string, args ...any) error {
		return &apigw.Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...) + "; WeChat Pay: " + wx, Err: err}
	}
	switch {
	case ae.Code == wxpay.CodeNoAuth:
		return e(http.StatusForbidden, CodeNoAuth, "WeChat Pay refused the %s: no permission for this service (商户暂无权限使用此服务) — check the "+
			"service's no-confirm permission, the mchid/appid binding and tester whitelist, and that the user authorized the service", op)
	case strings.Contains(ae.Message, "综合评估不通过"):
		return e(http.StatusUnprocessableEntity, CodeRiskRejected, "WeChat Pay Score risk evaluation rejected the %s (综合评估不通过): retry later or offer another payment method", op)
	case strings.Contains(ae.Message, "未绑定") || ae.Code == "APPID_MCHID_NOT_MATCH":
		return e(http.StatusForbidden, CodeAppIDNotBound, "the appid is not bound to the merchant or the service (mch_id和AppID未绑定): bind it in the merchant platform")
	case strings.Contains(ae.Message, "风险金额名称"):
		return e(http.StatusBadRequest, CodeRiskFundName, "WeChat Pay rejected risk_fund.name (订单风险金额名称不符合要求): the service's mode is not %s as configured", h.cfg.Mode)
	case strings.Contains(ae.Message, "未授权") || strings.Contains(ae.Message, "已解除授权"):
		return e(http.StatusConflict, CodeAuthorizationActive, "WeChat Pay has no active authorization to end")
	case strings.Contains(ae.Message, "未完结"):
		return e(http.StatusConflict, CodeUserHasOpenOrders, "the user has unfinished Pay Score orders (存在未完结订单)")
	case ae.Code == "INVALID_ORDER_STATE" || ae.Code == "ORDER_DONE" || ae.Code == "ORDER_CANCELED":
		return e(http.StatusConflict, CodeInvalidOrderState, "WeChat Pay refused the %s in the order's current state", op)
	case wxpay.IsNotFound(err):
		return e(http.StatusNotFound, CodeOrderNotExist, "WeChat Pay does not know this record")
	case ae.Retryable():
		return e(http.StatusBadGateway, CodeUpstream, "WeChat Pay failed the %s; retry the same request", op)
	}
	status := ae.StatusCode
	if status < 400 || status > 499 {
		status = http.StatusBadGateway
	}
	return e(status, ae.Code, "WeChat Pay rejected the %s", op)
}

// tryAgain is the answer when WeChat's outcome is unknown and the query
// could not settle it.
func tryAgain(format string, args ...any) error {
	return apigw.Errorf(http.StatusServiceUnavailable, CodeTryAgain, format, args...)
}

// queryOrder asks WeChat for an order (O2).
func (h *Handler) queryOrder(ctx context.Context, svc service, outOrderNo string) (*wxOrder, error) {
	var out wxOrder
	q := url.Values{"out_order_no": {outOrderNo}, "service_id": {svc.ID}, "appid": {svc.AppID}}
	if _, err := h.deps.WeChat.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: wechatCreatePath, Query: q}, &out); err != nil {
		return nil, err
	}
	if out.OutOrderNo != outOrderNo || out.State == "" {
		return nil, fmt.Errorf("payscore: query %s: WeChat answered for %q in state %q", outOrderNo, out.OutOrderNo, out.State)
	}
	return &out, nil
}

// applyRemote records what WeChat reports for an order and returns the
// ledger row afterwards. A terminal row never changes; a row that is not
// there yet is created (an order found by a query).
func (h *Handler) applyRemote(ctx context.Context, svc service, remote *wxOrder) (*ledger.PayScoreOrder, error) {
	key := ledger.PayScoreOrderKey(remote.OutOrderNo)
	var cur ledger.PayScoreOrder
	err := h.deps.Store.Get(ctx, key, &cur)
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return nil, err
	}
	if !missing && cur.Terminal() {
		return &cur, nil
	}
	now := h.now()
	stamp := ledger.WechatTime(now)
	set := map[string]any{"out_order_no": remote.OutOrderNo, "state": remote.State, "updated_at": stamp}
	if remote.OrderID != "" {
		set["order_id"] = remote.OrderID
	}
	if cur.LastError != "" {
		set["last_error"] = "" // WeChat has the order after all
	}
	if missing {
		set["service_id"], set["appid"], set["openid"], set["source"] = svc.ID, svc.AppID, remote.OpenID, "query"
		set["service_introduction"], set["created_at"] = remote.ServiceIntroduction, stamp
		if remote.RiskFund != nil {
			set["risk_fund"] = remote.RiskFund
		}
	}
	desc := ""
	if remote.State == ledger.PayScoreDoing {
		desc = remote.StateDescription
	}
	if remote.TotalAmount != nil {
		set["total_amount"] = *remote.TotalAmount
	}
	if len(remote.PostPayments) > 0 {
		set["post_payments"] = remote.PostPayments
	}
	if len(remote.PostDiscounts) > 0 {
		set["post_discounts"] = remote.PostDiscounts
	}
	if remote.TimeRange != nil {
		set["time_range"] = remote.TimeRange
	}
	var index *store.IndexKey
	if c := remote.Collection; c != nil {
		set["collection_state"] = c.State
		set["paid_amount"] = c.PaidAmount
		if b, err := json.Marshal(c); err == nil {
			set["collection_json"] = string(b)
		}
		if n := len(c.Details); n > 0 {
			d := c.Details[n-1]
			set["paid_time"], set["paid_type"] = d.PaidTime, d.PaidType
			if d.TransactionID != "" {
				set["transaction_id"] = d.TransactionID
			}
		}
	}
	switch {
	case remote.State == ledger.PayScoreDone:
		// The ledger's convention (shared with the notify function):
		// DONE orders carry state_description USER_PAID.
		desc = ledger.PayScoreUserPaid
		set["collection_state"] = ledger.PayScoreUserPaid
		set["settled_at"] = stamp
		paidTime, _ := set["paid_time"].(string)
		index = settledIndex(remote.OutOrderNo, paidTime, now)
	case desc == ledger.PayScoreMchComplete && cur.StateDescription != ledger.PayScoreMchComplete:
		// Completed but not recorded as such (a complete whose answer was
		// lost): it now waits for the deduction like any other.
		set["completed_at"] = stamp
		index = awaitingIndex(remote.OutOrderNo, now)
	}
	set["state_description"] = desc
	u := &store.Update{Key: key, Set: set, Index: index, AllowMissing: missing,
		ExpectIn: map[string][]any{"state": {ledger.PayScoreCreating, ledger.PayScoreRejected, ledger.PayScoreCreated, ledger.PayScoreDoing}}}
	ops := []store.Op{u}
	var ev *domainevent.Event
	if remote.State == ledger.PayScoreDone {
		// The payment is applied once whichever way the ledger learns of
		// it (the sweep or a live query finding what PAYSCORE.USER_PAID
		// would have brought): the notification's application counter and
		// its domain event, through the outbox, in the same guarded write.
		var paid int64
		if remote.Collection != nil {
			paid = remote.Collection.PaidAmount
		}
		detail, err := json.Marshal(map[string]any{"source": "query", "event_type": ledger.EventPayScorePaid, "channel": "payscore",
			"ledger": map[string]any{"out_order_no": remote.OutOrderNo, "order_id": remote.OrderID, "paid_amount": paid}})
		if err != nil {
			return nil, fmt.Errorf("payscore: encode domain event: %w", err)
		}
		ev = &domainevent.Event{ID: "query:" + remote.OrderID + ":" + ledger.PayScoreDone, DetailType: ledger.EventPayScorePaid,
			Detail: detail, CreatedAt: stamp}
		u.Add = map[string]int64{ledger.AppliedAttr(ledger.EventPayScorePaid): 1}
		ops = append(ops, domainevent.OutboxPut(*ev, now))
	}
	if ev != nil {
		err = h.deps.Store.Transact(ctx, ops...)
	} else {
		err = h.deps.Store.Update(ctx, u)
	}
	switch {
	case err == nil && ev != nil:
		if perr := domainevent.Flush(ctx, h.deps.Store, h.deps.Events, *ev); perr != nil {
			h.log.WarnContext(ctx, "domain event left in the outbox", "id", ev.ID, "error", perr)
		}
	case err != nil && !errors.Is(err, store.ErrConflict):
		return nil, err
	}
	// A conflict means a terminal state won the race (e.g. the notify
	// function applied USER_PAID): the stored row is the truth.
	var out ledger.PayScoreOrder
	if err := h.deps.Store.Get(ctx, key, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// settledIndex files a settled order under the Shanghai day it was paid
// (now when WeChat gave no usable paid_time), for reconciliation.
func settledIndex(outOrderNo, paidTime string, now time.Time) *store.IndexKey {
	at := now
	if t, err := ledger.ParsePaidTime(paidTime); paidTime != "" && err == nil {
		at = t
	}
	return &store.IndexKey{PK: ledger.DayIndex(ledger.PayScoreDayKind, ledger.Day(at)), SK: outOrderNo}
}

// awaitingIndex files an order completed at t in the sweep's partition.
func awaitingIndex(outOrderNo string, t time.Time) *store.IndexKey {
	return &store.IndexKey{PK: ledger.PayScoreAwaitingIndex, SK: ledger.WechatTime(t) + "#" + outOrderNo}
}
