package lambdatest_test

import (
	"net/http"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
)

// paymentsExpectations: the sample events run against a fresh table and a
// deps without a WeChat Pay client, so each shows a rule the function
// decides on its own: unknown orders and refunds are 404s, invalid input a
// 400, and a valid order is refused with 503 before anything is written
// (the end-to-end tests in internal/e2e drive the same requests against the
// simulator).
func paymentsExpectations() map[string]check {
	return map[string]check{
		"payments/health.json":               healthy("payments"),
		"payments/get-order.json":            httpStatus(http.StatusNotFound, apigw.CodeNotFound),
		"payments/create-order.json":         httpStatus(http.StatusServiceUnavailable, payments.CodeWeChatUnavailable),
		"payments/create-order-invalid.json": httpStatus(http.StatusBadRequest, apigw.CodeParamError),
		"payments/close-order.json":          httpStatus(http.StatusNotFound, apigw.CodeNotFound),
		"payments/create-refund.json":        httpStatus(http.StatusNotFound, apigw.CodeNotFound),
		"payments/get-refund.json":           httpStatus(http.StatusNotFound, apigw.CodeNotFound),
	}
}
