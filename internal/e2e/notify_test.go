package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// prepayAndRecord creates a Native order at the simulator (signed client
// call) and records it in the ledger as NOTPAY, as the payments function does.
func (w *world) prepayAndRecord(t *testing.T, outTradeNo string, total int64) {
	t.Helper()
	ctx := context.Background()
	_, err := w.Client.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: "/v3/pay/transactions/native", Body: map[string]any{
		"appid": w.Merchant.AppID, "mchid": w.Merchant.MchID, "description": "Image形象店-深圳腾大-QQ公仔", "out_trade_no": outTradeNo,
		"notify_url": w.FrontURL + "/notify/payments", "amount": map[string]any{"total": total, "currency": "CNY"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Store.Put(ctx, &store.Put{Key: ledger.OrderKey(outTradeNo), IfNotExists: true,
		Value: ledger.Order{OutTradeNo: outTradeNo, Status: ledger.TradeNotPay, Total: total, Source: "api"}}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) deliveries(id string) []wxpaysim.DeliveryRecord {
	var out []wxpaysim.DeliveryRecord
	for _, d := range w.Sim.Deliveries() {
		if d.NotificationID == id {
			out = append(out, d)
		}
	}
	return out
}

func (w *world) waitDeliveries(t *testing.T, id string, n int) []wxpaysim.DeliveryRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ds := w.deliveries(id); len(ds) >= n {
			return ds
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("notification %s: %d deliveries after 20s, want %d", id, len(w.deliveries(id)), n)
	return nil
}

// TestPaymentNotificationEndToEnd: the simulator delivers TRANSACTION.SUCCESS
// (5.51 yuan, a 0.01 yuan NOCASH coupon) through the front door's API Gateway
// v2 path; the order shows SUCCESS with amounts and promotion_detail; a
// duplicate delivery is acknowledged and changes nothing.
func TestPaymentNotificationEndToEnd(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	w.prepayAndRecord(t, "E2E1003", 551)
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, Kind: wxpaysim.KindNotifyDuplicate, Count: 1})
	res, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: w.Merchant.MchID, OutTradeNo: "E2E1003",
		Promotions: []wxpaysim.Promotion{{Type: "NOCASH", Amount: 1, StockID: "931386", MerchantContribute: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	ds := w.waitDeliveries(t, res.NotificationID, 2)
	for _, d := range ds {
		if d.Status != http.StatusNoContent {
			t.Fatalf("delivery %+v answered %d, want 204 for the first and the duplicate", d, d.Status)
		}
	}
	var o ledger.Order
	if err := w.Store.Get(ctx, ledger.OrderKey("E2E1003"), &o); err != nil {
		t.Fatal(err)
	}
	if o.Status != ledger.TradeSuccess || o.Total != 551 || o.PayerTotal != 550 || o.SettlementTotal != 550 ||
		len(o.Promotions) != 1 || o.Promotions[0].Type != "NOCASH" || o.TransactionID != res.TransactionID {
		t.Fatalf("order = %+v", o)
	}
	if got := strings.Count(w.logs.String(), `"outcome":"accepted"`); got != 1 {
		t.Fatalf("%d accepted outcomes, want 1", got)
	}
	if !strings.Contains(w.logs.String(), `"outcome":"duplicate"`) {
		t.Fatal("the duplicate delivery was not reported as a duplicate")
	}
}

// TestCorruptedDeliveriesRetriedUntilAccepted: stale, SIGNTEST, wrong-serial
// and tampered first attempts are refused with 401 (nothing stored), and
// WeChat's retry is then applied exactly once.
func TestCorruptedDeliveriesRetriedUntilAccepted(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	for i, kind := range []wxpaysim.FaultKind{wxpaysim.KindNotifyStaleTimestamp, wxpaysim.KindNotifySignTest,
		wxpaysim.KindNotifyWrongSerial, wxpaysim.KindNotifyTamperedBody} {
		no := "E2EBAD" + string(rune('A'+i))
		w.prepayAndRecord(t, no, 100)
		w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, Kind: kind, Count: 1})
		res, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: w.Merchant.MchID, OutTradeNo: no})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Sim.WaitDelivered(ctx, res.NotificationID); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		ds := w.deliveries(res.NotificationID)
		if len(ds) != 2 || ds[0].Status != http.StatusUnauthorized || ds[1].Status != http.StatusNoContent {
			t.Fatalf("%s: deliveries %+v, want 401 then 204", kind, ds)
		}
		var o ledger.Order
		if err := w.Store.Get(ctx, ledger.OrderKey(no), &o); err != nil || o.Status != ledger.TradeSuccess {
			t.Fatalf("%s: order %+v (%v)", kind, o, err)
		}
	}
}

func TestHealthThroughFrontDoor(t *testing.T) {
	w := newWorld(t, stackOptions())
	for _, fn := range []string{"payscore", "coupons", "payments", "billing"} {
		var rep map[string]any
		if status := w.call(t, http.MethodGet, "/"+fn+"/health", nil, &rep); status != http.StatusOK || rep["status"] != "ok" {
			t.Fatalf("GET /%s/health = %d %v", fn, status, rep)
		}
	}
}
