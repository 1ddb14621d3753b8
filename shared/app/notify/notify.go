// Package notify is the handler of the notify function, the public front door
// for everything WeChat Pay pushes: POST /notify/{channel}.
package notify

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
)

// Handler answers notification deliveries.
type Handler struct {
	router *apigw.Router
}

// New builds the handler.
func New(deps app.Deps) *Handler {
	routes := []apigw.Route{
		{Method: http.MethodPost, Path: "/notify/{channel}", Scope: apigw.ScopeNone, Handle: receive},
	}
	return &Handler{router: deps.NewRouter(routes)}
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return h.router.Handle(ctx, e)
}

// receive rejects unknown channels; verification and exactly-once processing
// land with the notify issue. Until then every delivery gets a non-2xx so
// WeChat Pay keeps retrying and nothing is lost.
func receive(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	ch := req.PathParams["channel"]
	if !KnownChannel(ch) {
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound, "unknown notification channel %q", ch)
	}
	return apigw.NotImplemented(ctx, req)
}

// KnownChannel reports whether ch is one of the notification channels, one
// notify_url each: payments, refunds, payscore, coupons.
func KnownChannel(ch string) bool {
	switch ch {
	case "payments", "refunds", "payscore", "coupons":
		return true
	}
	return false
}
