package notify_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// TestCouponSendRecordsPayGiftTransaction: a COUPON.SEND of the pay-gift
// channel records attach_info.transaction_id as paygift_transaction_id; a
// send without attach_info records none; a coupon already used is not
// turned back to SENDED.
func TestCouponSendRecordsPayGiftTransaction(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	send := func(code, channel string, attach map[string]any) map[string]any {
		r := map[string]any{"event_type": "EVENT_TYPE_BUSICOUPON_SEND", "coupon_code": code, "stock_id": "1212345678",
			"send_time": "2026-11-22T10:00:00+08:00", "openid": "oGiftUser", "send_channel": channel, "send_merchant": "1900000109"}
		if attach != nil {
			r["attach_info"] = attach
		}
		return r
	}
	tests := []struct {
		name     string
		code     string
		resource map[string]any
		prior    *ledger.Coupon
		wantTxn  string
		wantSt   string
	}{
		{name: "pay-gift send", code: "GIFT0001", resource: send("GIFT0001", "BUSICOUPON_SEND_CHANNEL_PAYGIFT",
			map[string]any{"transaction_id": "4200000001202611220000000001", "activity_id": "126002309"}),
			wantTxn: "4200000001202611220000000001", wantSt: ledger.CouponSended},
		{name: "plugin send", code: "MINI0001", resource: send("MINI0001", "BUSICOUPON_SEND_CHANNEL_MINIAPP", nil), wantSt: ledger.CouponSended},
		{name: "already used", code: "USED0001", resource: send("USED0001", "BUSICOUPON_SEND_CHANNEL_PAYGIFT",
			map[string]any{"transaction_id": "4200000001202611220000000002"}),
			prior: &ledger.Coupon{StockID: "1212345678", CouponCode: "USED0001", State: ledger.CouponUsed, UseRequestNo: "U1"}, wantSt: ledger.CouponUsed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prior != nil {
				if err := w.Store.Put(ctx, &store.Put{Key: ledger.CouponKey(tc.prior.StockID, tc.prior.CouponCode), Value: tc.prior}); err != nil {
					t.Fatal(err)
				}
			}
			ev := w.Notification(t, "coupons", notify.EventCouponSend, "coupon", tc.resource, lambdatest.NotificationOptions{})
			if resp := w.deliver(t, ev); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("delivery of %v = %d %s, want 204", tc.resource, resp.StatusCode, resp.Body)
			}
			var c ledger.Coupon
			if err := w.Store.Get(ctx, ledger.CouponKey("1212345678", tc.code), &c); err != nil {
				t.Fatal(err)
			}
			if c.State != tc.wantSt || c.PayGiftTransactionID != tc.wantTxn {
				t.Fatalf("coupon after %s = %+v, want state %s paygift_transaction_id %q", tc.name, c, tc.wantSt, tc.wantTxn)
			}
			if tc.prior == nil && (c.OpenID != "oGiftUser" || c.SendChannel != tc.resource["send_channel"]) {
				t.Fatalf("coupon = %+v, want openid and send_channel from the notification", c)
			}
		})
	}
}
