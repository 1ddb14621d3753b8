package lambdatest_test

import (
	"net/http"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

func couponsExpectations() map[string]check {
	return map[string]check{
		"coupons/health.json":     healthy("coupons"),
		"coupons/use-coupon.json": httpStatus(http.StatusNotImplemented, apigw.CodeNotImplemented),
	}
}
