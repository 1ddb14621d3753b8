// Package coupons is the handler of the coupons function: merchant coupons
// (/v3/marketing/busifavor) and pay-gift activities
// (/v3/marketing/paygiftactivity).
//
// Every route checks WeChat Pay's field rules locally first and answers a
// specific 4xx without calling WeChat Pay when one fails (validate.go,
// paygift.go). Calls that carry a request number run through the
// request-number engine (requests.go): the number is generated or
// validated, stored with the exact call before it is sent, and reused on
// retry. The ledger keeps stocks, coupons (with their history) and
// activities in DynamoDB; COUPON.SEND notifications, applied by the notify
// function, add coupons to it.
package coupons

import (
	"context"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Error codes of the {code, message} body specific to this function (the
// shared ones are in apigw).
const (
	CodeInvalidTime       = "INVALID_TIME"       // not RFC 3339, or outside the allowed window
	CodeInvalidRequestNo  = "INVALID_REQUEST_NO" // a caller's request number has the wrong shape
	CodeRequestNoReused   = "REQUEST_NO_REUSED"  // the same request number for a different request
	CodeRuleMismatch      = "RULE_MISMATCH"      // stock_type / send_content and their rule objects disagree
	CodeAppIDNotBound     = "APPID_NOT_BOUND"    // the appid is not one of the merchant's
	CodeNotOpen           = "NOT_OPEN"           // a field WeChat Pay has not opened yet
	CodeCouponState       = "COUPON_STATE"       // the ledger shows the coupon cannot take this action
	CodeStockRule         = "STOCK_RULE"         // the stock (from the ledger) does not allow this
	CodeAwardStock        = "AWARD_STOCK"        // a pay-gift award stock does not fit the activity
	CodeUnsupportedChar   = "UNSUPPORTED_CHARACTER"
	CodeOutcomeUnknown    = "OUTCOME_UNKNOWN" // WeChat Pay did not confirm; retry the same request
	CodeWeChatUnavailable = "WECHAT_NOT_CONFIGURED"
	CodeAPIv2KeyMissing   = "APIV2_KEY_MISSING"
)

// Handler answers the coupons and pay-gift routes.
type Handler struct {
	router *apigw.Router
	deps   app.Deps
	now    func() time.Time
}

// New builds the handler. Stock, activity and callback management are admin
// routes; redemption, sending and user queries are app routes.
func New(deps app.Deps) *Handler {
	h := &Handler{deps: deps, now: deps.Clock()}
	get, post, put, patch, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	admin, appScope := apigw.ScopeAdmin, apigw.ScopeApp
	routes := []apigw.Route{
		deps.HealthRoute("coupons", "/coupons"),
		{Method: post, Path: "/coupons/stocks", Scope: admin, Handle: h.createStock},
		{Method: get, Path: "/coupons/stocks/{stock_id}", Scope: admin, Handle: h.getStock},
		{Method: patch, Path: "/coupons/stocks/{stock_id}", Scope: admin, Handle: h.modifyStock},
		{Method: post, Path: "/coupons/stocks/{stock_id}/budget", Scope: admin, Handle: h.modifyBudget},
		{Method: post, Path: "/coupons/stocks/{stock_id}/codes", Scope: admin, Handle: h.uploadCodes},
		{Method: get, Path: "/coupons/stocks/{stock_id}/codes", Scope: admin, Handle: h.listCodes},
		{Method: get, Path: "/coupons/stocks/{stock_id}/codes/{coupon_code}", Scope: admin, Handle: h.getCode},
		{Method: del, Path: "/coupons/stocks/{stock_id}/codes/{coupon_code}", Scope: admin, Handle: h.deleteCode},
		{Method: post, Path: "/coupons/use", Scope: appScope, Handle: h.use},
		{Method: post, Path: "/coupons/send", Scope: appScope, Handle: h.send},
		{Method: post, Path: "/coupons/associate", Scope: appScope, Handle: h.associate(true)},
		{Method: post, Path: "/coupons/disassociate", Scope: appScope, Handle: h.associate(false)},
		{Method: post, Path: "/coupons/return", Scope: appScope, Handle: h.returnCoupon},
		{Method: post, Path: "/coupons/deactivate", Scope: admin, Handle: h.deactivate},
		{Method: get, Path: "/coupons/users/{openid}/coupons", Scope: appScope, Handle: h.filterUserCoupons},
		{Method: get, Path: "/coupons/users/{openid}/coupons/{coupon_code}", Scope: appScope, Handle: h.getUserCoupon},
		{Method: put, Path: "/coupons/callback", Scope: admin, Handle: h.setCallback},
		{Method: get, Path: "/coupons/callback", Scope: admin, Handle: h.getCallback},
		{Method: post, Path: "/coupons/plugin-sign", Scope: appScope, Handle: h.pluginSign},
		{Method: post, Path: "/paygift/activities", Scope: admin, Handle: h.createActivity},
		{Method: get, Path: "/paygift/activities", Scope: admin, Handle: h.listActivities},
		{Method: get, Path: "/paygift/activities/{activity_id}", Scope: admin, Handle: h.getActivity},
		{Method: get, Path: "/paygift/activities/{activity_id}/goods", Scope: admin, Handle: h.activityGoods},
		{Method: post, Path: "/paygift/activities/{activity_id}/terminate", Scope: admin, Handle: h.terminateActivity},
		{Method: get, Path: "/paygift/activities/{activity_id}/merchants", Scope: admin, Handle: h.activityMerchants},
		{Method: post, Path: "/paygift/activities/{activity_id}/merchants/add", Scope: admin, Handle: h.changeMerchants(true)},
		{Method: post, Path: "/paygift/activities/{activity_id}/merchants/delete", Scope: admin, Handle: h.changeMerchants(false)},
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

// client is the WeChat Pay client, or a 503 when the function runs without
// one (route listing, sample events).
func (h *Handler) client() (*wxpay.Client, error) {
	if h.deps.WeChat == nil {
		return nil, apigw.Errorf(http.StatusServiceUnavailable, CodeWeChatUnavailable, "the WeChat Pay client is not configured")
	}
	return h.deps.WeChat, nil
}

// creds are the merchant's credentials (mchid, appids, APIv2 key).
func (h *Handler) creds(ctx context.Context) (*secrets.Credentials, error) {
	if h.deps.Secrets == nil {
		return nil, apigw.Errorf(http.StatusServiceUnavailable, CodeWeChatUnavailable, "merchant credentials are not configured")
	}
	c, err := h.deps.Secrets.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("coupons: credentials: %w", err)
	}
	return c, nil
}

// decode reads a request body strictly. WeChat Pay rejects 4-byte UTF-8
// characters (emoji), so they are refused here before anything is sent.
func decode(req *apigw.Request, v any) error {
	if err := noFourByteRunes(string(req.Body)); err != nil {
		return err
	}
	return apigw.DecodeJSON(req.Body, v)
}

func noFourByteRunes(s string) error {
	if !utf8.ValidString(s) {
		return apigw.Errorf(http.StatusBadRequest, CodeUnsupportedChar, "the request is not valid UTF-8")
	}
	for _, r := range s {
		if r > 0xFFFF {
			return apigw.Errorf(http.StatusBadRequest, CodeUnsupportedChar,
				"WeChat Pay does not accept 4-byte UTF-8 characters such as emoji (%U)", r)
		}
	}
	return nil
}
