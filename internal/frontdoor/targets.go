package frontdoor

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payscore"
)

// AllFunctions builds the five function handlers over deps, exactly as their
// Lambda mains do, and returns them as door targets.
func AllFunctions(deps app.Deps) []Target {
	n, ps, c, pm, b := notify.New(deps), payscore.New(deps), coupons.New(deps), payments.New(deps), billing.New(deps)
	return []Target{
		{Function: "notify", Routes: n.Routes(), Handle: n.Handle},
		PayscoreTarget(ps),
		{Function: "coupons", Routes: c.Routes(), Handle: c.Handle},
		{Function: "payments", Routes: pm.Routes(), Handle: pm.Handle},
		{Function: "billing", Routes: b.Routes(), Handle: func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			out, err := b.Handle(ctx, billing.Event{HTTP: &e})
			if err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
			resp, _ := out.(events.APIGatewayV2HTTPResponse)
			return resp, nil
		}},
	}
}

// PayscoreTarget adapts the payscore handler, whose Lambda entry point takes
// the payscore.Event union (HTTP request or schedule input), to the door.
func PayscoreTarget(h *payscore.Handler) Target {
	return Target{Function: "payscore", Routes: h.Routes(), Handle: func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		out, err := h.Handle(ctx, payscore.Event{HTTP: &e})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		resp, _ := out.(events.APIGatewayV2HTTPResponse)
		return resp, nil
	}}
}
