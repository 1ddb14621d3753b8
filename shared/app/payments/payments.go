// Package payments is the handler of the payments function: orders (JSAPI,
// mini-program, Native, APP, H5) and refunds, including no-prepaid coupons.
//
// Every rule the merchant's own ledger can decide (amounts, states, refund
// totals, idempotency keys) is checked before WeChat Pay is called, and a
// rejected request writes nothing. Orders and refunds are written before the
// WeChat Pay call (so a retry of the same request resumes it and a
// notification racing the answer finds its row) and completed after it.
package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Error codes of the payments routes (beyond the apigw ones). WeChat Pay's
// own codes are passed through when it rejects a request.
const (
	CodeOrderPaid         = "ORDER_PAID"
	CodeOrderClosed       = "ORDER_CLOSED"
	CodeOrderNotPaid      = "ORDER_NOT_PAID"
	CodeOrderState        = "INVALID_ORDER_STATE"
	CodeRefundExceeds     = "REFUND_EXCEEDS_REFUNDABLE"
	CodeTooManyRefunds    = "TOO_MANY_REFUNDS"
	CodeOrderAmounts      = "ORDER_AMOUNTS_INCONSISTENT"
	CodeWeChatUnavailable = "WECHAT_UNAVAILABLE"
	CodeTryAgain          = "TRY_AGAIN"
)

// maxRefundsPerOrder is WeChat Pay's limit of partial refunds of one order.
const maxRefundsPerOrder = 50

// Handler answers the payments routes.
type Handler struct {
	router *apigw.Router
	deps   app.Deps
	now    func() time.Time
}

// New builds the handler.
func New(deps app.Deps) *Handler {
	h := &Handler{deps: deps, now: deps.Clock()}
	routes := []apigw.Route{
		deps.HealthRoute("payments", "/payments"),
		{Method: http.MethodPost, Path: "/payments/orders", Scope: apigw.ScopeApp, Handle: h.createOrder},
		{Method: http.MethodGet, Path: "/payments/orders/{out_trade_no}", Scope: apigw.ScopeApp, Handle: h.getOrder},
		{Method: http.MethodPost, Path: "/payments/orders/{out_trade_no}/close", Scope: apigw.ScopeApp, Handle: h.closeOrder},
		{Method: http.MethodPost, Path: "/payments/refunds", Scope: apigw.ScopeApp, Handle: h.createRefund},
		{Method: http.MethodGet, Path: "/payments/refunds/{out_refund_no}", Scope: apigw.ScopeApp, Handle: h.getRefund},
	}
	h.router = deps.NewRouter(routes)
	return h
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return h.router.Handle(ctx, e)
}

// merchant returns the merchant credentials, or a 503.
func (h *Handler) merchant(ctx context.Context) (*secrets.Credentials, error) {
	if h.deps.Secrets == nil {
		return nil, apigw.Errorf(http.StatusServiceUnavailable, CodeWeChatUnavailable, "merchant credentials are not configured")
	}
	c, err := h.deps.Secrets.Get(ctx)
	if err != nil {
		return nil, &apigw.Error{Status: http.StatusServiceUnavailable, Code: CodeWeChatUnavailable,
			Message: "merchant credentials are unavailable", Err: err}
	}
	return c, nil
}

// client returns the WeChat Pay client, or a 503 (checked before anything
// that would need it is written).
func (h *Handler) client() (*wxpay.Client, error) {
	if h.deps.WeChat == nil {
		return nil, apigw.Errorf(http.StatusServiceUnavailable, CodeWeChatUnavailable, "the WeChat Pay client is not configured")
	}
	return h.deps.WeChat, nil
}

// credentials returns both the merchant credentials and the client.
func (h *Handler) credentials(ctx context.Context) (*secrets.Credentials, *wxpay.Client, error) {
	c, err := h.merchant(ctx)
	if err != nil {
		return nil, nil, err
	}
	wc, err := h.client()
	if err != nil {
		return nil, nil, err
	}
	return c, wc, nil
}

// upstream maps a failed WeChat Pay call to an answer: business rejections
// (4xx) keep WeChat Pay's code, transient failures say to retry the same
// request, everything else is a 502. The cause stays in Err for the log.
func upstream(what string, err error) *apigw.Error {
	var ae *wxpay.APIError
	switch {
	case errors.As(err, &ae) && ae.Retryable():
		return &apigw.Error{Status: http.StatusServiceUnavailable, Code: CodeTryAgain,
			Message: fmt.Sprintf("WeChat Pay is busy or failing (%s) while %s; retry the same request", ae.Code, what), Err: err}
	case errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden):
		return &apigw.Error{Status: http.StatusBadGateway, Code: apigw.CodeUpstream,
			Message: fmt.Sprintf("WeChat Pay refused the merchant's credentials (%s) while %s", ae.Code, what), Err: err}
	case errors.As(err, &ae) && wxpay.IsNotFound(err):
		return &apigw.Error{Status: http.StatusNotFound, Code: ae.Code, Message: fmt.Sprintf("WeChat Pay: %s (%s)", ae.Message, what), Err: err}
	case errors.As(err, &ae) && (ae.Code == wxpay.CodeOrderPaid || ae.Code == wxpay.CodeOrderClosed):
		return &apigw.Error{Status: http.StatusConflict, Code: ae.Code, Message: fmt.Sprintf("WeChat Pay: %s (%s)", ae.Message, what), Err: err}
	case errors.As(err, &ae):
		return &apigw.Error{Status: http.StatusBadRequest, Code: ae.Code, Message: fmt.Sprintf("WeChat Pay rejected %s: %s", what, ae.Message), Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apigw.Error{Status: http.StatusGatewayTimeout, Code: apigw.CodeUpstream,
			Message: fmt.Sprintf("WeChat Pay did not answer in time while %s; retry the same request", what), Err: err}
	}
	return &apigw.Error{Status: http.StatusBadGateway, Code: apigw.CodeUpstream,
		Message: fmt.Sprintf("WeChat Pay could not be reached while %s; retry the same request", what), Err: err}
}

// rejected reports whether WeChat Pay definitely refused the request (a
// business error that is not worth retrying): nothing was created there.
func rejected(err error) bool {
	var ae *wxpay.APIError
	return errors.As(err, &ae) && !ae.Retryable()
}

// digest is the idempotency digest of a normalised request.
func digest(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("payments: digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// liveFlag reads the optional ?live= query parameter.
func liveFlag(req *apigw.Request) (bool, error) {
	switch v := req.Query("live"); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, "live must be true or false, got %q", v)
	}
}

// validNo checks a merchant number: minLen..maxLen characters of
// [0-9A-Za-z] and extra.
func validNo(s string, minLen, maxLen int, extra string) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

// pathNo validates a number taken from the path.
func pathNo(req *apigw.Request, name string, minLen, maxLen int, extra string) (string, error) {
	v := req.PathParams[name]
	if !validNo(v, minLen, maxLen, extra) {
		return "", apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, "%s must be %d-%d characters of [0-9A-Za-z%s]", name, minLen, maxLen, extra)
	}
	return v, nil
}
