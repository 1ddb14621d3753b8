package lambdatest_test

import (
	"net/http"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

func notifyExpectations() map[string]check {
	return map[string]check{
		"notify/payments-unverified.json": httpStatus(http.StatusUnauthorized, "MALFORMED_SIGNATURE"),
		"notify/unknown-channel.json":     httpStatus(http.StatusNotFound, apigw.CodeNotFound),
	}
}
