// Package payscore is the handler of the payscore function: WeChat Pay Score
// in no-confirm mode (authorizations, service orders, the missed-callback
// sweep).
package payscore

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
)

// Handler answers the payscore routes.
type Handler struct {
	router *apigw.Router
}

// New builds the handler.
func New(deps app.Deps) *Handler {
	ni := apigw.NotImplemented
	routes := []apigw.Route{
		deps.HealthRoute("payscore", "/payscore"),
		{Method: http.MethodPost, Path: "/payscore/authorizations", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodGet, Path: "/payscore/authorizations/{authorization_code}", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodDelete, Path: "/payscore/authorizations/{authorization_code}", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodGet, Path: "/payscore/users/{openid}/authorization", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodDelete, Path: "/payscore/users/{openid}/authorization", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodPost, Path: "/payscore/orders", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodGet, Path: "/payscore/orders/{out_order_no}", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/complete", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/modify", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/cancel", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodPost, Path: "/payscore/orders/{out_order_no}/sync", Scope: apigw.ScopeApp, Handle: ni},
	}
	return &Handler{router: deps.NewRouter(routes)}
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return h.router.Handle(ctx, e)
}
