package lambdatest_test

import (
	"net/http"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

func paymentsExpectations() map[string]check {
	return map[string]check{
		"payments/health.json":    healthy("payments"),
		"payments/get-order.json": httpStatus(http.StatusNotImplemented, apigw.CodeNotImplemented),
	}
}
