// Package payments is the handler of the payments function: orders (JSAPI,
// mini-program, Native, APP, H5) and refunds, including no-prepaid coupons.
package payments

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
)

// Handler answers the payments routes.
type Handler struct {
	router *apigw.Router
}

// New builds the handler.
func New(deps app.Deps) *Handler {
	ni := apigw.NotImplemented
	routes := []apigw.Route{
		deps.HealthRoute("payments", "/payments"),
		{Method: http.MethodPost, Path: "/payments/orders", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodGet, Path: "/payments/orders/{out_trade_no}", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodPost, Path: "/payments/orders/{out_trade_no}/close", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodPost, Path: "/payments/refunds", Scope: apigw.ScopeApp, Handle: ni},
		{Method: http.MethodGet, Path: "/payments/refunds/{out_refund_no}", Scope: apigw.ScopeApp, Handle: ni},
	}
	return &Handler{router: deps.NewRouter(routes)}
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return h.router.Handle(ctx, e)
}
