package payments

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"

	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

func TestUpstreamClassification(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"system error after retries", &wxpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR"}, http.StatusServiceUnavailable, CodeTryAgain},
		{"rate limited", &wxpay.APIError{StatusCode: 429, Code: "FREQUENCY_LIMITED"}, http.StatusServiceUnavailable, CodeTryAgain},
		{"bad credentials", &wxpay.APIError{StatusCode: 401, Code: "SIGN_ERROR"}, http.StatusBadGateway, "UPSTREAM_ERROR"},
		{"no permission", &wxpay.APIError{StatusCode: 403, Code: "NO_AUTH"}, http.StatusBadGateway, "UPSTREAM_ERROR"},
		{"not found", fmt.Errorf("wrapped: %w", &wxpay.APIError{StatusCode: 404, Code: "ORDER_NOT_EXIST"}), http.StatusNotFound, "ORDER_NOT_EXIST"},
		{"already paid", &wxpay.APIError{StatusCode: 400, Code: "ORDERPAID"}, http.StatusConflict, "ORDERPAID"},
		{"business rejection", &wxpay.APIError{StatusCode: 400, Code: "NOT_ENOUGH", Message: "余额不足"}, http.StatusBadRequest, "NOT_ENOUGH"},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, "UPSTREAM_ERROR"},
		{"transport", fmt.Errorf("x: %w", wxpay.ErrTransport), http.StatusBadGateway, "UPSTREAM_ERROR"},
		{"bad response signature", fmt.Errorf("x: %w", wxpay.ErrResponseSignature), http.StatusBadGateway, "UPSTREAM_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := upstream("testing", tc.err)
			if got.Status != tc.status || got.Code != tc.code || got.Message == "" || !errors.Is(got, tc.err) {
				t.Fatalf("upstream(%v) = %d %s %q (cause kept: %v), want %d %s", tc.err, got.Status, got.Code, got.Message, errors.Is(got, tc.err), tc.status, tc.code)
			}
		})
	}
	if !rejected(&wxpay.APIError{StatusCode: 400, Code: "PARAM_ERROR"}) || rejected(&wxpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR"}) ||
		rejected(wxpay.ErrTransport) {
		t.Error("rejected: only non-retryable WeChat Pay errors mean nothing was created")
	}
}

// TestPayParamsSignature: the JSAPI/mini-program paySign and the APP sign
// are byte-identical to wechatpay-go's signer over the documented messages
// (RSA PKCS #1 v1.5 is deterministic).
func TestPayParamsSignature(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sdk := &signers.SHA256WithRSASigner{MchID: "1900000109", CertificateSerialNo: "5157F09EFDC096DE15EBE81A47057A72", PrivateKey: key}
	now := time.Unix(1795399200, 0)
	for _, tc := range []struct {
		clientType string
		message    func(p map[string]string) string
		sigField   string
	}{
		{"JSAPI", func(p map[string]string) string {
			return p["appId"] + "\n" + p["timeStamp"] + "\n" + p["nonceStr"] + "\n" + p["package"] + "\n"
		}, "paySign"},
		{"MINIPROGRAM", func(p map[string]string) string {
			return p["appId"] + "\n" + p["timeStamp"] + "\n" + p["nonceStr"] + "\n" + p["package"] + "\n"
		}, "paySign"},
		{"APP", func(p map[string]string) string {
			return p["appid"] + "\n" + p["timestamp"] + "\n" + p["noncestr"] + "\n" + p["prepayid"] + "\n"
		}, "sign"},
	} {
		t.Run(tc.clientType, func(t *testing.T) {
			p, err := payParams(tc.clientType, "wxd678efh567hg6787", "1900000109", "wx201410272009395522657a690389285100", key, now)
			if err != nil {
				t.Fatal(err)
			}
			if tc.clientType != "APP" && (p["package"] != "prepay_id=wx201410272009395522657a690389285100" || p["signType"] != "RSA" || p["timeStamp"] != "1795399200") {
				t.Fatalf("params %v", p)
			}
			if tc.clientType == "APP" && (p["package"] != "Sign=WXPay" || p["partnerid"] != "1900000109" || p["timestamp"] != "1795399200") {
				t.Fatalf("params %v", p)
			}
			want, err := sdk.Sign(context.Background(), tc.message(p))
			if err != nil {
				t.Fatal(err)
			}
			if p[tc.sigField] != want.Signature {
				t.Fatalf("%s = %s, wechatpay-go signs %q as %s", tc.sigField, p[tc.sigField], tc.message(p), want.Signature)
			}
		})
	}
	if p, err := payParams("NATIVE", "wx", "1", "x", key, now); p != nil || err != nil {
		t.Errorf("NATIVE has no client parameters, got %v %v", p, err)
	}
}

func TestNormalizeOrder(t *testing.T) {
	creds := &secrets.Credentials{MchID: "1900000109", AppIDs: []string{"wxd678efh567hg6787", "wx2"}}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := CreateOrderRequest{TradeType: "H5", OutTradeNo: "ORDER_0001", Description: "x",
		SceneInfo: &SceneInfo{PayerClientIP: "2001:db8::1"}, TimeExpire: "2026-11-23T12:00:00Z"}
	r.Amount.Total = 1
	if err := r.normalize(creds, now); err != nil {
		t.Fatal(err)
	}
	if r.AppID != "wxd678efh567hg6787" || r.Amount.Currency != "CNY" || r.SceneInfo.H5Info == nil || r.SceneInfo.H5Info.Type != "Wap" ||
		r.TimeExpire != "2026-11-23T20:00:00+08:00" {
		t.Fatalf("normalized %+v (h5 %+v), want default appid, CNY, Wap and time_expire in +08:00", r, r.SceneInfo.H5Info)
	}
	a, _ := digest(r)
	r2 := r
	r2.TimeExpire = "2026-11-23T20:00:00+08:00" // the same instant, already normalised
	if err := r2.normalize(creds, now); err != nil {
		t.Fatal(err)
	}
	if b, _ := digest(r2); a != b {
		t.Errorf("digest differs for the same instant written two ways")
	}
	r2.Amount.Total = 2
	if b, _ := digest(r2); a == b {
		t.Errorf("digest does not cover the amount")
	}
}

// TestPayParamsDeterministic: the client parameters of an order are the
// same bytes every time they are signed (nonce from the prepay_id, the
// caller's timestamp), and differ between orders.
func TestPayParamsDeterministic(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1795399200, 0)
	a, err := payParams("JSAPI", "wxd678efh567hg6787", "1900000109", "wx201410272009395522657a690389285100", key, at)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := payParams("JSAPI", "wxd678efh567hg6787", "1900000109", "wx201410272009395522657a690389285100", key, at)
	c, _ := payParams("JSAPI", "wxd678efh567hg6787", "1900000109", "wx201410272009395522657a690389285101", key, at)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("the same order signed twice: %v vs %v", a, b)
	}
	if a["nonceStr"] == c["nonceStr"] || a["paySign"] == c["paySign"] || len(a["nonceStr"]) != 32 {
		t.Fatalf("two orders share nonce %q / signature, or the nonce is not 32 characters", a["nonceStr"])
	}
}
