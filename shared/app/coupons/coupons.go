// Package coupons is the handler of the coupons function: merchant coupons
// (/v3/marketing/busifavor) and pay-gift activities
// (/v3/marketing/paygiftactivity).
package coupons

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
)

// Handler answers the coupons and pay-gift routes.
type Handler struct {
	router *apigw.Router
}

// New builds the handler. Stock, activity and callback management are admin
// routes; redemption, sending and user queries are app routes.
func New(deps app.Deps) *Handler {
	ni := apigw.NotImplemented
	get, post, put, patch, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	admin, appScope := apigw.ScopeAdmin, apigw.ScopeApp
	routes := []apigw.Route{
		deps.HealthRoute("coupons", "/coupons"),
		{Method: post, Path: "/coupons/stocks", Scope: admin, Handle: ni},
		{Method: get, Path: "/coupons/stocks/{stock_id}", Scope: admin, Handle: ni},
		{Method: patch, Path: "/coupons/stocks/{stock_id}", Scope: admin, Handle: ni},
		{Method: post, Path: "/coupons/stocks/{stock_id}/budget", Scope: admin, Handle: ni},
		{Method: post, Path: "/coupons/stocks/{stock_id}/codes", Scope: admin, Handle: ni},
		{Method: get, Path: "/coupons/stocks/{stock_id}/codes", Scope: admin, Handle: ni},
		{Method: get, Path: "/coupons/stocks/{stock_id}/codes/{coupon_code}", Scope: admin, Handle: ni},
		{Method: del, Path: "/coupons/stocks/{stock_id}/codes/{coupon_code}", Scope: admin, Handle: ni},
		{Method: post, Path: "/coupons/use", Scope: appScope, Handle: ni},
		{Method: post, Path: "/coupons/send", Scope: appScope, Handle: ni},
		{Method: post, Path: "/coupons/associate", Scope: appScope, Handle: ni},
		{Method: post, Path: "/coupons/disassociate", Scope: appScope, Handle: ni},
		{Method: post, Path: "/coupons/return", Scope: appScope, Handle: ni},
		{Method: post, Path: "/coupons/deactivate", Scope: admin, Handle: ni},
		{Method: get, Path: "/coupons/users/{openid}/coupons", Scope: appScope, Handle: ni},
		{Method: get, Path: "/coupons/users/{openid}/coupons/{coupon_code}", Scope: appScope, Handle: ni},
		{Method: put, Path: "/coupons/callback", Scope: admin, Handle: ni},
		{Method: get, Path: "/coupons/callback", Scope: admin, Handle: ni},
		{Method: post, Path: "/coupons/plugin-sign", Scope: appScope, Handle: ni},
		{Method: post, Path: "/paygift/activities", Scope: admin, Handle: ni},
		{Method: get, Path: "/paygift/activities", Scope: admin, Handle: ni},
		{Method: get, Path: "/paygift/activities/{activity_id}", Scope: admin, Handle: ni},
		{Method: get, Path: "/paygift/activities/{activity_id}/goods", Scope: admin, Handle: ni},
		{Method: post, Path: "/paygift/activities/{activity_id}/terminate", Scope: admin, Handle: ni},
		{Method: get, Path: "/paygift/activities/{activity_id}/merchants", Scope: admin, Handle: ni},
		{Method: post, Path: "/paygift/activities/{activity_id}/merchants/add", Scope: admin, Handle: ni},
		{Method: post, Path: "/paygift/activities/{activity_id}/merchants/delete", Scope: admin, Handle: ni},
	}
	return &Handler{router: deps.NewRouter(routes)}
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return h.router.Handle(ctx, e)
}
