package notify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/metrics"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

// publisher is a recording fake for domain events.
type publisher struct {
	mu  sync.Mutex
	evs []domainevent.Event
}

func (p *publisher) Publish(_ context.Context, evs []domainevent.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, evs...)
	return nil
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.evs)
}

type world struct {
	*lambdatest.Env
	h       *notify.Handler
	pub     *publisher
	calls   *lambdatest.CallCounter
	logs    *lambdatest.SyncBuffer
	metrics *lambdatest.SyncBuffer
}

func newWorld(t *testing.T) *world {
	calls := &lambdatest.CallCounter{}
	env := lambdatest.NewEnv(t, calls.Option)
	w := &world{Env: env, pub: &publisher{}, calls: calls, logs: &lambdatest.SyncBuffer{}, metrics: &lambdatest.SyncBuffer{}}
	deps := env.Deps
	deps.Log = slog.New(slog.NewJSONHandler(w.logs, nil))
	deps.Events = w.pub
	deps.Metrics = &metrics.EMF{Namespace: "test", W: w.metrics}
	w.h = notify.New(deps)
	if _, err := env.Secrets.Get(context.Background()); err != nil { // warm the cache like cold start does
		t.Fatal(err)
	}
	return w
}

func (w *world) deliver(t *testing.T, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := w.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle returned a Go error: %v", err)
	}
	return resp
}

func transaction(outTradeNo string) map[string]any {
	return map[string]any{
		"appid": "wxd678efh567hg6787", "mchid": "1900000109", "out_trade_no": outTradeNo, "transaction_id": "4200000000" + outTradeNo,
		"trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
		"success_time": "2026-11-22T23:59:58+08:00", "payer": map[string]any{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
		"amount": map[string]any{"total": 551, "payer_total": 550, "currency": "CNY", "payer_currency": "CNY"},
		"promotion_detail": []any{map[string]any{"coupon_id": "109519", "type": "NOCASH", "amount": 1, "stock_id": "931386",
			"wechatpay_contribute": 0, "merchant_contribute": 1, "other_contribute": 0, "currency": "CNY"}},
	}
}

func TestTransactionSuccessExactlyOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if err := w.Store.Put(ctx, &store.Put{Key: ledger.OrderKey("ORDER551"), Value: ledger.Order{OutTradeNo: "ORDER551", Status: ledger.TradeNotPay, Total: 551, Source: "api"}}); err != nil {
		t.Fatal(err)
	}
	ev := w.Notification(t, "payments", notify.EventTransactionSuccess, "transaction", transaction("ORDER551"), lambdatest.NotificationOptions{})
	w.calls.Reset()
	if resp := w.deliver(t, ev); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first delivery = %d %s, want 204", resp.StatusCode, resp.Body)
	}
	if n := w.calls.Total(); n > 2 {
		t.Fatalf("first delivery made %d DynamoDB calls, want <= 2", n)
	}
	var o ledger.Order
	if err := w.Store.Get(ctx, ledger.OrderKey("ORDER551"), &o); err != nil {
		t.Fatal(err)
	}
	if o.Status != ledger.TradeSuccess || o.Total != 551 || o.PayerTotal != 550 || o.SettlementTotal != 550 || o.NoCashTotal != 1 ||
		o.CouponTotal != 1 || len(o.Promotions) != 1 || o.Promotions[0].Type != "NOCASH" || o.TransactionID != "4200000000ORDER551" || o.Source != "api" {
		t.Fatalf("order after TRANSACTION.SUCCESS = %+v", o)
	}
	if w.pub.count() != 1 {
		t.Fatalf("published %d domain events, want 1", w.pub.count())
	}
	var pending []domainevent.Event
	if _, err := w.Store.Query(ctx, store.Query{Index: true, PK: ledger.OutboxIndex}, &pending); err != nil || len(pending) != 0 {
		t.Fatalf("outbox after a published event holds %d (%v), want 0", len(pending), err)
	}
	before := w.ItemCount(t)
	w.calls.Reset()
	if resp := w.deliver(t, ev); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("duplicate delivery = %d %s, want 204", resp.StatusCode, resp.Body)
	}
	if n := w.calls.Total(); n != 1 {
		t.Fatalf("duplicate delivery made %d DynamoDB calls, want 1", n)
	}
	var again ledger.Order
	if err := w.Store.Get(ctx, ledger.OrderKey("ORDER551"), &again); err != nil || again.UpdatedAt != o.UpdatedAt {
		t.Fatalf("duplicate changed the order: %+v", again)
	}
	// Same business key + event under a new notification id: still no second effect.
	other := w.Notification(t, "payments", notify.EventTransactionSuccess, "transaction", transaction("ORDER551"), lambdatest.NotificationOptions{})
	if resp := w.deliver(t, other); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("same business key = %d, want 204", resp.StatusCode)
	}
	if after := w.ItemCount(t); after != before || w.pub.count() != 1 {
		t.Fatalf("duplicates wrote items (%d -> %d) or events (%d)", before, after, w.pub.count())
	}
	if !strings.Contains(w.logs.String(), `"outcome":"duplicate"`) || !strings.Contains(w.metrics.String(), `"Outcome":"duplicate"`) {
		t.Fatalf("duplicate not logged/measured:\n%s\n%s", w.logs.String(), w.metrics.String())
	}
	w.AssertNoSecrets(t, "notify logs", w.logs.String())
	if strings.Contains(w.logs.String(), "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") {
		t.Fatal("decrypted plaintext (payer openid) reached the logs")
	}
}

func TestConcurrentDuplicatesOneEffect(t *testing.T) {
	w := newWorld(t)
	ev := w.Notification(t, "payments", notify.EventTransactionSuccess, "transaction", transaction("RACE1"), lambdatest.NotificationOptions{})
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	start := make(chan struct{})
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := w.h.Handle(context.Background(), ev)
			if err != nil {
				t.Error(err)
			}
			statuses[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	accepted := strings.Count(w.logs.String(), `"outcome":"accepted"`)
	if accepted != 1 || w.pub.count() != 1 {
		t.Fatalf("8 concurrent deliveries: %d accepted, %d events published; want exactly 1 and 1 (statuses %v)", accepted, w.pub.count(), statuses)
	}
	for i, s := range statuses {
		if s != http.StatusNoContent && s != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d answered %d; want 204 (or 503 to be retried)", i, s)
		}
	}
	var o ledger.Order
	if err := w.Store.Get(context.Background(), ledger.OrderKey("RACE1"), &o); err != nil || o.Status != ledger.TradeSuccess {
		t.Fatalf("order = %+v (%v)", o, err)
	}
}

func TestRejectionsTouchNothing(t *testing.T) {
	w := newWorld(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tx := transaction("REJ1")
	mk := func(ch string, o lambdatest.NotificationOptions) events.APIGatewayV2HTTPRequest {
		return w.Notification(t, ch, notify.EventTransactionSuccess, "transaction", tx, o)
	}
	garbage := w.SignedDelivery(t, "payments", []byte("this is not json"), lambdatest.NotificationOptions{})
	badB64 := mk("payments", lambdatest.NotificationOptions{})
	badB64.IsBase64Encoded, badB64.Body = true, "%%%not base64%%%"
	missing := mk("payments", lambdatest.NotificationOptions{})
	delete(missing.Headers, "wechatpay-signature")
	unknownChannel := mk("payments", lambdatest.NotificationOptions{})
	unknownChannel.PathParameters["channel"], unknownChannel.RawPath = "wallet", "/notify/wallet"
	tests := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		{"bad signature", mk("payments", lambdatest.NotificationOptions{SignWith: other}), 401, "BAD_SIGNATURE"},
		{"tampered body", mk("payments", lambdatest.NotificationOptions{Tamper: true}), 401, "BAD_SIGNATURE"},
		{"stale timestamp", mk("payments", lambdatest.NotificationOptions{Now: time.Now().Add(-6 * time.Minute)}), 401, "STALE_TIMESTAMP"},
		{"future timestamp", mk("payments", lambdatest.NotificationOptions{Now: time.Now().Add(6 * time.Minute)}), 401, "STALE_TIMESTAMP"},
		{"unknown serial", mk("payments", lambdatest.NotificationOptions{Serial: "PUB_KEY_ID_0000000000000000000000000000"}), 401, "UNKNOWN_SERIAL"},
		{"SIGNTEST probe", mk("payments", lambdatest.NotificationOptions{Signature: "WECHATPAY/SIGNTEST/c2lnbmF0dXJl"}), 401, "SIGNTEST_PROBE"},
		{"missing signature header", missing, 401, "MALFORMED_SIGNATURE"},
		{"wrong channel for event type", mk("coupons", lambdatest.NotificationOptions{}), 400, "WRONG_CHANNEL"},
		{"bad base64 body", badB64, 400, apigw.CodeInvalidRequest},
		{"non-JSON body", garbage, 400, "INVALID_BODY"},
		{"wrong resource algorithm", mk("payments", lambdatest.NotificationOptions{Algorithm: "AEAD_SM4_GCM"}), 400, "UNSUPPORTED_ALGORITHM"},
		{"decrypt failure", mk("payments", lambdatest.NotificationOptions{APIv3Key: "TESTKEYxxxxxxxxxxxxxxxxxxxxxxxxx"}), 400, "DECRYPT_FAILED"},
		{"unknown channel", unknownChannel, 404, apigw.CodeNotFound},
	}
	before := w.ItemCount(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := w.deliver(t, tc.ev)
			var body apigw.ErrorBody
			if resp.StatusCode != tc.status || json.Unmarshal([]byte(resp.Body), &body) != nil || body.Code != tc.code || body.Message == "" {
				t.Fatalf("= %d %s, want %d with code %s", resp.StatusCode, resp.Body, tc.status, tc.code)
			}
			if after := w.ItemCount(t); after != before {
				t.Fatalf("a rejected delivery wrote to the table: %d items -> %d", before, after)
			}
		})
	}
	if w.pub.count() != 0 {
		t.Fatalf("rejections published %d events", w.pub.count())
	}
}

func TestDeliveryVariantsAccepted(t *testing.T) {
	w := newWorld(t)
	for name, o := range map[string]lambdatest.NotificationOptions{
		"base64 body":          {Base64: true},
		"canonical headers":    {UpperHeaders: true},
		"4m50s old":            {Now: time.Now().Add(-4*time.Minute - 50*time.Second)},
		"platform cert serial": {SignWith: w.Platform.CertKey, Serial: w.Platform.CertSerial},
	} {
		t.Run(name, func(t *testing.T) {
			no := "VAR" + strings.ReplaceAll(name, " ", "")
			if len(no) > 32 {
				no = no[:32]
			}
			resp := w.deliver(t, w.Notification(t, "payments", notify.EventTransactionSuccess, "transaction", transaction(no), o))
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("= %d %s, want 204", resp.StatusCode, resp.Body)
			}
		})
	}
}

func TestOutOfOrderAndConflicts(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	t.Run("refund before its payment is known is stored", func(t *testing.T) {
		refund := map[string]any{"mchid": "1900000109", "out_trade_no": "UNSEEN1", "transaction_id": "42000001", "out_refund_no": "RF1",
			"refund_id": "50300001", "refund_status": "SUCCESS", "success_time": "2026-11-23T10:00:00+08:00", "user_received_account": "支付用户零钱",
			"amount": map[string]any{"total": 10000, "refund": 5000, "payer_total": 9000, "payer_refund": 4500}}
		resp := w.deliver(t, w.Notification(t, "refunds", notify.EventRefundSuccess, "refund", refund, lambdatest.NotificationOptions{}))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("= %d %s", resp.StatusCode, resp.Body)
		}
		var r map[string]any
		if err := w.Store.Get(ctx, ledger.RefundKey("RF1"), &r); err != nil || r["status"] != "SUCCESS" || r["payer_refund"].(float64) != 4500 {
			t.Fatalf("refund row = %v (%v)", r, err)
		}
	})
	t.Run("an older authorization event does not undo a newer one", func(t *testing.T) {
		open := map[string]any{"appid": "wx1", "mchid": "1900000109", "service_id": "500001", "openid": "oUser1",
			"user_service_status": "USER_OPEN_SERVICE", "openorclose_time": "2026-11-23T10:00:00+08:00"}
		closed := map[string]any{"appid": "wx1", "mchid": "1900000109", "service_id": "500001", "openid": "oUser1",
			"user_service_status": "USER_CLOSE_SERVICE", "openorclose_time": "2026-11-23T11:00:00+08:00"}
		if resp := w.deliver(t, w.Notification(t, "payscore", notify.EventPayScoreClose, "payscore", closed, lambdatest.NotificationOptions{})); resp.StatusCode != 204 {
			t.Fatalf("close = %d %s", resp.StatusCode, resp.Body)
		}
		if resp := w.deliver(t, w.Notification(t, "payscore", notify.EventPayScoreOpen, "payscore", open, lambdatest.NotificationOptions{})); resp.StatusCode != 204 {
			t.Fatalf("older open = %d %s", resp.StatusCode, resp.Body)
		}
		var a map[string]any
		if err := w.Store.Get(ctx, ledger.AuthorizationKey("500001", "oUser1"), &a); err != nil || a["state"] != "UNAVAILABLE" {
			t.Fatalf("authorization = %v (%v), want UNAVAILABLE", a, err)
		}
		if !strings.Contains(w.logs.String(), `"outcome":"superseded"`) {
			t.Fatal("the older event was not reported as superseded")
		}
	})
	t.Run("payment of a closed order is an anomaly kept for reconciliation", func(t *testing.T) {
		if err := w.Store.Put(ctx, &store.Put{Key: ledger.OrderKey("CLOSED1"), Value: ledger.Order{OutTradeNo: "CLOSED1", Status: ledger.TradeClosed, Total: 551}}); err != nil {
			t.Fatal(err)
		}
		resp := w.deliver(t, w.Notification(t, "payments", notify.EventTransactionSuccess, "transaction", transaction("CLOSED1"), lambdatest.NotificationOptions{}))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("= %d %s", resp.StatusCode, resp.Body)
		}
		var anomalies []map[string]any
		if _, err := w.Store.Query(ctx, store.Query{Index: true, PK: "ANOMALY#OPEN"}, &anomalies); err != nil || len(anomalies) != 1 ||
			anomalies[0]["current_state"] != "CLOSED" {
			t.Fatalf("anomalies = %v (%v)", anomalies, err)
		}
		var o ledger.Order
		if err := w.Store.Get(ctx, ledger.OrderKey("CLOSED1"), &o); err != nil || o.Status != ledger.TradeClosed {
			t.Fatalf("order = %+v, want still CLOSED (a human decides)", o)
		}
	})
	t.Run("coupon sent via pay-gift lands in the ledger", func(t *testing.T) {
		send := map[string]any{"event_type": "EVENT_TYPE_BUSICOUPON_SEND", "coupon_code": "CODE1", "stock_id": "1212",
			"send_time": "2026-11-23T10:00:00+08:00", "openid": "oUser2", "send_channel": "BUSICOUPON_SEND_CHANNEL_PAYGIFT",
			"send_merchant": "1900000109", "attach_info": map[string]any{"transaction_id": "4200000001", "act_code": "ACT1"}}
		resp := w.deliver(t, w.Notification(t, "coupons", notify.EventCouponSend, "coupon", send, lambdatest.NotificationOptions{}))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("= %d %s", resp.StatusCode, resp.Body)
		}
		var c map[string]any
		if err := w.Store.Get(ctx, ledger.CouponKey("1212", "CODE1"), &c); err != nil || c["state"] != "SENDED" ||
			!strings.Contains(c["attach_info_json"].(string), "4200000001") {
			t.Fatalf("coupon = %v (%v)", c, err)
		}
	})
	t.Run("Pay Score payment marks the order DONE", func(t *testing.T) {
		if err := w.Store.Put(ctx, &store.Put{Key: ledger.PayScoreOrderKey("PS1"), Value: map[string]any{"out_order_no": "PS1", "state": "DOING", "state_description": "MCH_COMPLETE"}}); err != nil {
			t.Fatal(err)
		}
		paid := map[string]any{"appid": "wx1", "mchid": "1900000109", "service_id": "500001", "out_order_no": "PS1", "order_id": "1000000000201911",
			"openid": "oUser1", "state": "DONE", "total_amount": 400, "collection": map[string]any{"state": "USER_PAID", "total_amount": 400,
				"paying_amount": 0, "paid_amount": 400, "details": []any{map[string]any{"seq": 1, "amount": 400, "paid_type": "NEWTON",
					"paid_time": "2026-11-23T14:00:00+08:00", "transaction_id": "4200000002"}}}}
		resp := w.deliver(t, w.Notification(t, "payscore", notify.EventPayScorePaid, "payscore", paid, lambdatest.NotificationOptions{}))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("= %d %s", resp.StatusCode, resp.Body)
		}
		var o map[string]any
		if err := w.Store.Get(ctx, ledger.PayScoreOrderKey("PS1"), &o); err != nil || o["state"] != "DONE" || o["state_description"] != "USER_PAID" ||
			o["transaction_id"] != "4200000002" || o["paid_amount"].(float64) != 400 {
			t.Fatalf("pay score order = %v (%v)", o, err)
		}
		var day []map[string]any
		if _, err := w.Store.Query(ctx, store.Query{Index: true, PK: ledger.DayIndex(ledger.PayScoreDayKind, "2026-11-23")}, &day); err != nil ||
			len(day) != 1 || day[0]["out_order_no"] != "PS1" {
			t.Fatalf("settled Pay Score orders of 2026-11-23 = %v (%v), want PS1 filed for reconciliation", day, err)
		}
	})
	t.Run("an invalid payload is rejected before any write", func(t *testing.T) {
		before := w.ItemCount(t)
		bad := transaction("BADAMT")
		bad["amount"] = map[string]any{"total": 100, "payer_total": 200}
		resp := w.deliver(t, w.Notification(t, "payments", notify.EventTransactionSuccess, "transaction", bad, lambdatest.NotificationOptions{}))
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains([]byte(resp.Body), []byte("INVALID_RESOURCE")) || w.ItemCount(t) != before {
			t.Fatalf("= %d %s", resp.StatusCode, resp.Body)
		}
	})
}
