package lambdatest_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
)

// The sample events run without a WeChat Pay client: valid requests stop
// at 503 WECHAT_NOT_CONFIGURED after every local rule passed; invalid ones
// get their rule's 400; plugin-sign needs no WeChat call at all.
func couponsExpectations() map[string]check {
	return map[string]check{
		"coupons/health.json": healthy("coupons"),
		// The sample's appid is not one of the merchant's.
		"coupons/use-coupon.json":                         httpStatus(http.StatusBadRequest, coupons.CodeAppIDNotBound),
		"coupons/create-stock.json":                       httpStatus(http.StatusServiceUnavailable, coupons.CodeWeChatUnavailable),
		"coupons/create-stock-per-user-over-100.json":     httpStatus(http.StatusBadRequest, apigw.CodeParamError),
		"coupons/create-activity-window-over-a-year.json": httpStatus(http.StatusBadRequest, coupons.CodeInvalidTime),
		"coupons/plugin-sign.json": func(t *testing.T, out []byte) {
			t.Helper()
			httpStatus(http.StatusOK, "")(t, out)
			var resp events.APIGatewayV2HTTPResponse
			if err := lambdatest.DecodeStrict(out, &resp); err != nil {
				t.Fatal(err)
			}
			var ans struct {
				PluginAppID        string                `json:"plugin_appid"`
				PluginVersion      string                `json:"plugin_version"`
				SendCouponParams   []coupons.PluginParam `json:"send_coupon_params"`
				SendCouponMerchant string                `json:"send_coupon_merchant"`
				Sign               string                `json:"sign"`
			}
			if err := lambdatest.DecodeStrict([]byte(resp.Body), &ans); err != nil {
				t.Fatalf("plugin-sign answer %s: %v", resp.Body, err)
			}
			if ans.PluginAppID != coupons.PluginAppID || len(ans.SendCouponParams) != 1 || ans.SendCouponParams[0].OutRequestNo == "" ||
				!regexp.MustCompile(`^[0-9A-F]{64}$`).MatchString(ans.Sign) {
				t.Fatalf("plugin-sign answer = %s, want the plugin appid, a generated out_request_no and a 64-hex sign", resp.Body)
			}
		},
	}
}
