package notify_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
)

// FuzzNotify throws arbitrary bodies and signature headers at the handler:
// it must never panic, never answer 2xx (nothing unsigned is accepted) and
// never 5xx (garbage is the sender's problem, not ours). Seeds live in
// testdata/fuzz/FuzzNotify as well as below.
func FuzzNotify(f *testing.F) {
	env := lambdatest.NewEnv(f)
	h := notify.New(env.Deps)
	valid := env.Notification(f, "payments", notify.EventTransactionSuccess, "transaction", map[string]any{"out_trade_no": "F1"}, lambdatest.NotificationOptions{})
	f.Add([]byte(valid.Body), valid.Headers["wechatpay-signature"], valid.Headers["wechatpay-timestamp"], env.Platform.PublicKeyID, "payments", false)
	f.Add([]byte(`{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAA","nonce":"123456789012"}}`), "c2ln", "1795399200", "PUB_KEY_ID_1", "payments", false)
	f.Add([]byte(`{`), "WECHATPAY/SIGNTEST/", "0", "", "refunds", true)
	f.Add([]byte{0xff, 0xfe, 0x00}, "", "-1", "x", "coupons", false)
	f.Fuzz(func(t *testing.T, body []byte, sig, ts, serial, channel string, b64 bool) {
		ev := events.APIGatewayV2HTTPRequest{RouteKey: "POST /notify/{channel}", RawPath: "/notify/" + channel,
			PathParameters: map[string]string{"channel": channel}, Body: string(body), IsBase64Encoded: b64,
			Headers: map[string]string{"wechatpay-signature": sig, "wechatpay-timestamp": ts, "wechatpay-serial": serial, "wechatpay-nonce": "n"}}
		ev.RequestContext.HTTP.Method = http.MethodPost
		resp, err := h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("Go error: %v", err)
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("status %d for fuzzed input; want a 4xx (body %s)", resp.StatusCode, resp.Body)
		}
	})
}
