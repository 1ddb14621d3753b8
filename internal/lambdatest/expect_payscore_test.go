package lambdatest_test

import (
	"net/http"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

func payscoreExpectations() map[string]check {
	return map[string]check{
		"payscore/health.json":       healthy("payscore"),
		"payscore/create-order.json": httpStatus(http.StatusNotImplemented, apigw.CodeNotImplemented),
	}
}
