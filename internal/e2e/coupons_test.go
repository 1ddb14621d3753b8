package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

var shanghai = time.FixedZone("CST", 8*3600)

func e2eTime(t time.Time) string { return t.In(shanghai).Format(time.RFC3339) }

// e2eStock is a create-stock body of the coupons function.
func e2eStock(mode, notifyAppID string) map[string]any {
	now := time.Now()
	return map[string]any{
		"stock_name": "8月1日活动券", "comment": "活动使用", "goods_name": "全场可用", "stock_type": "NORMAL", "coupon_code_mode": mode,
		"coupon_use_rule": map[string]any{
			"coupon_available_time": map[string]any{"available_begin_time": e2eTime(now.Add(-time.Hour)),
				"available_end_time": e2eTime(now.Add(30 * 24 * time.Hour))},
			"fixed_normal_coupon": map[string]any{"discount_amount": 500, "transaction_minimum": 1000},
			"use_method":          "OFF_LINE",
		},
		"stock_send_rule": map[string]any{"max_coupons": 10, "max_coupons_per_user": 2},
		"notify_config":   map[string]any{"notify_appid": notifyAppID},
	}
}

// expectStatus calls a route and checks the status (and the error code).
func (w *world) expectStatus(t *testing.T, what, method, path string, in any, status int, code string) map[string]any {
	t.Helper()
	var out map[string]any
	got := w.call(t, method, path, in, &out)
	if got != status || (code != "" && out["code"] != code) {
		t.Fatalf("%s: %s %s = %d %v, want %d %s", what, method, path, got, out, status, code)
	}
	return out
}

// waitCouponSend waits until a COUPON.SEND for the coupon was acknowledged
// by the notify function.
func (w *world) waitCouponSend(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	if err := w.Sim.WaitDelivered(ctx, id); err != nil {
		t.Fatalf("COUPON.SEND %s: %v", id, err)
	}
	for _, d := range w.deliveries(id) {
		if d.EventType != "COUPON.SEND" || !strings.HasSuffix(d.URL, "/notify/coupons") {
			t.Fatalf("delivery %+v, want COUPON.SEND to /notify/coupons", d)
		}
	}
}

func (w *world) ledgerCoupon(t *testing.T, stockID, code string) ledger.Coupon {
	t.Helper()
	var c ledger.Coupon
	if err := w.Store.Get(context.Background(), ledger.CouponKey(stockID, code), &c); err != nil {
		t.Fatalf("ledger coupon %s/%s: %v", stockID, code, err)
	}
	return c
}

// TestMerchantCouponSeedFlow is seed 003's key steps through the front
// door: create a stock, upload codes, the user claims through the
// mini-program plugin with our sign, COUPON.SEND lands in the ledger, the
// user's coupons are queried, and the coupon is used, returned and
// deactivated — with the errors on the way.
func TestMerchantCouponSeedFlow(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	m := w.Merchant
	const openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

	cb := w.expectStatus(t, "callback", http.MethodPut, "/coupons/callback", nil, http.StatusOK, "")
	if cb["notify_url"] != w.FrontURL+"/notify/coupons" {
		t.Fatalf("callback = %v, want the notify function's coupons channel", cb)
	}
	st := w.expectStatus(t, "create stock", http.MethodPost, "/coupons/stocks", e2eStock("MERCHANT_UPLOAD", m.AppID), http.StatusOK, "")
	stock := st["stock_id"].(string)
	codes := "/coupons/stocks/" + stock + "/codes"
	w.expectStatus(t, "a code with #", http.MethodPost, codes,
		map[string]any{"coupon_code_list": []string{"E2E#1"}}, http.StatusBadRequest, "PARAM_ERROR")
	up := w.expectStatus(t, "upload", http.MethodPost, codes, map[string]any{"coupon_code_list": []string{"E2ECODE01", "E2ECODE02"}}, http.StatusOK, "")
	if up["success_count"] != 2.0 {
		t.Fatalf("upload = %v", up)
	}
	w.expectStatus(t, "upload beyond the stock size", http.MethodPost, codes,
		map[string]any{"coupon_code_list": []string{"A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"}}, http.StatusBadRequest, "STOCK_RULE")

	// The app asks for the plugin parameters and sign; the user claims.
	sg := w.expectStatus(t, "plugin sign", http.MethodPost, "/coupons/plugin-sign",
		map[string]any{"send_coupon_params": []map[string]any{{"stock_id": stock}}, "openid": openid}, http.StatusOK, "")
	p := sg["send_coupon_params"].([]any)[0].(map[string]any)
	if err := w.Sim.SetAPIv2Key(m.MchID, m.APIv2Key); err != nil {
		t.Fatal(err)
	}
	claim := wxpaysim.CouponClaim{OpenID: openid, AppID: m.AppID, SendCouponMerchant: sg["send_coupon_merchant"].(string),
		SendCouponParams: []wxpaysim.PluginCouponParam{{StockID: p["stock_id"].(string), OutRequestNo: p["out_request_no"].(string)}}, Sign: sg["sign"].(string)}
	res, err := w.Sim.ClaimCoupons(ctx, claim)
	if err != nil || len(res.Results) != 1 || res.Results[0].Code != "SUCCESS" || len(res.NotificationIDs) != 1 {
		t.Fatalf("plugin claim = %+v (%v)", res, err)
	}
	code := res.Results[0].CouponCode
	w.waitCouponSend(t, ctx, res.NotificationIDs[0])
	if c := w.ledgerCoupon(t, stock, code); c.State != ledger.CouponSended || c.OpenID != openid || c.SendChannel != "BUSICOUPON_SEND_CHANNEL_MINIAPP" {
		t.Fatalf("ledger after COUPON.SEND = %+v", c)
	}

	// Query the user's coupons.
	list := w.expectStatus(t, "filter", http.MethodGet, "/coupons/users/"+openid+"/coupons?stock_id="+stock, nil, http.StatusOK, "")
	if list["total_count"] != 1.0 {
		t.Fatalf("filter = %v", list)
	}
	one := w.expectStatus(t, "user coupon", http.MethodGet, "/coupons/users/"+openid+"/coupons/"+code, nil, http.StatusOK, "")
	if one["coupon_state"] != "SENDED" || one["stock_id"] != stock {
		t.Fatalf("user coupon = %v", one)
	}

	// Use, return, deactivate; the errors in between.
	coupon := map[string]any{"stock_id": stock, "coupon_code": code}
	w.expectStatus(t, "return before use", http.MethodPost, "/coupons/return", coupon, http.StatusConflict, "COUPON_STATE")
	used := w.expectStatus(t, "use", http.MethodPost, "/coupons/use", map[string]any{"stock_id": stock, "coupon_code": code, "openid": openid}, http.StatusOK, "")
	if c := w.ledgerCoupon(t, stock, code); c.State != ledger.CouponUsed || c.UseRequestNo != used["use_request_no"] {
		t.Fatalf("ledger after use = %+v, answer %v", c, used)
	}
	w.expectStatus(t, "use twice", http.MethodPost, "/coupons/use", coupon, http.StatusConflict, "COUPON_STATE")
	w.expectStatus(t, "deactivate a used coupon", http.MethodPost, "/coupons/deactivate", coupon, http.StatusConflict, "COUPON_STATE")
	w.expectStatus(t, "return", http.MethodPost, "/coupons/return", coupon, http.StatusOK, "")
	if c := w.ledgerCoupon(t, stock, code); c.State != ledger.CouponSended || c.ReturnRequestNo == "" {
		t.Fatalf("ledger after return = %+v", c)
	}
	w.expectStatus(t, "deactivate", http.MethodPost, "/coupons/deactivate", map[string]any{"stock_id": stock, "coupon_code": code, "deactivate_reason": "活动取消"}, http.StatusOK, "")
	w.expectStatus(t, "use a deactivated coupon", http.MethodPost, "/coupons/use", coupon, http.StatusConflict, "COUPON_STATE")
	if one := w.expectStatus(t, "user coupon", http.MethodGet, "/coupons/users/"+openid+"/coupons/"+code, nil, http.StatusOK, ""); one["coupon_state"] != "DEACTIVATED" {
		t.Fatalf("WeChat's coupon = %v, want DEACTIVATED", one)
	}
	if c := w.ledgerCoupon(t, stock, code); c.State != ledger.CouponDeactivated {
		t.Fatalf("ledger = %+v, want DEACTIVATED", c)
	}
	// A late copy of COUPON.SEND (new notification id) must not bring the
	// coupon back.
	late, err := w.Sim.Notify(ctx, wxpaysim.Notification{MchID: m.MchID, URL: w.FrontURL + "/notify/coupons", EventType: "COUPON.SEND",
		OriginalType: "coupon", Summary: "商家券领券通知", Plaintext: []byte(`{"event_type":"EVENT_TYPE_BUSICOUPON_SEND","coupon_code":"` + code +
			`","stock_id":"` + stock + `","send_time":"` + e2eTime(time.Now()) + `","openid":"` + openid +
			`","send_channel":"BUSICOUPON_SEND_CHANNEL_MINIAPP","send_merchant":"` + m.MchID + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	w.waitCouponSend(t, ctx, late)
	if c := w.ledgerCoupon(t, stock, code); c.State != ledger.CouponDeactivated {
		t.Fatalf("ledger after a late COUPON.SEND = %+v, want still DEACTIVATED", c)
	}
	if s := w.expectStatus(t, "stock", http.MethodGet, "/coupons/stocks/"+stock, nil, http.StatusOK, ""); s["send_count_information"].(map[string]any)["total_send_num"] != 1.0 {
		t.Fatalf("stock = %v, want 1 coupon sent", s)
	}
}

// TestPayGiftFlow: create an activity over a stock, manage it, a qualifying
// payment earns a coupon (COUPON.SEND with send_channel PAYGIFT and the
// payment's transaction_id lands in the ledger), then terminate.
func TestPayGiftFlow(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	m := w.Merchant
	w.expectStatus(t, "callback", http.MethodPut, "/coupons/callback", nil, http.StatusOK, "")
	stock := w.expectStatus(t, "create stock", http.MethodPost, "/coupons/stocks", e2eStock("WECHATPAY_MODE", m.AppID), http.StatusOK, "")["stock_id"].(string)
	now := time.Now()
	act := map[string]any{
		"activity_base_info": map[string]any{"activity_name": "满100送券", "activity_second_title": "下单即送", "merchant_logo_url": "https://wxpaylogo.qpic.cn/logo.png",
			"begin_time": e2eTime(now), "end_time": e2eTime(now.Add(7 * 24 * time.Hour)), "delivery_purpose": "OFF_LINE_PAY"},
		"award_send_rule": map[string]any{"transaction_amount_minimum": 10000, "send_content": "SINGLE_COUPON",
			"award_list": []map[string]any{{"stock_id": stock, "original_image_url": "https://wxpaylogo.qpic.cn/award.png"}}, "merchant_id_list": []string{m.MchID}},
	}
	gift := map[string]any{"activity_base_info": act["activity_base_info"], "award_send_rule": map[string]any{"transaction_amount_minimum": 10000,
		"send_content": "GIFT_PACKAGE", "award_list": act["award_send_rule"].(map[string]any)["award_list"], "merchant_id_list": []string{m.MchID}}}
	w.expectStatus(t, "gift package of one", http.MethodPost, "/paygift/activities", gift, http.StatusBadRequest, "RULE_MISMATCH")
	id := w.expectStatus(t, "create activity", http.MethodPost, "/paygift/activities", act, http.StatusOK, "")["activity_id"].(string)
	base := "/paygift/activities/" + id

	if l := w.expectStatus(t, "list", http.MethodGet, "/paygift/activities?limit=10", nil, http.StatusOK, ""); l["total_count"] != 1.0 {
		t.Fatalf("list = %v", l)
	}
	if d := w.expectStatus(t, "detail", http.MethodGet, base, nil, http.StatusOK, ""); d["activity_status"] != "ONGOING_ACT_STATUS" {
		t.Fatalf("detail = %v", d)
	}
	w.expectStatus(t, "goods", http.MethodGet, base+"/goods", nil, http.StatusOK, "")
	w.expectStatus(t, "add merchants", http.MethodPost, base+"/merchants/add", map[string]any{"merchant_id_list": []string{"1900000002"}}, http.StatusOK, "")
	if ms := w.expectStatus(t, "merchants", http.MethodGet, base+"/merchants", nil, http.StatusOK, ""); ms["total_count"] != 2.0 {
		t.Fatalf("merchants = %v", ms)
	}
	w.expectStatus(t, "delete merchants", http.MethodPost, base+"/merchants/delete", map[string]any{"merchant_id_list": []string{"1900000002"}}, http.StatusOK, "")

	// Below the threshold: no gift. At 120 yuan: the coupon.
	w.prepayAndRecord(t, "E2EPG0001", 9999)
	if _, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: m.MchID, OutTradeNo: "E2EPG0001", OpenID: "oGiftUser"}); err != nil {
		t.Fatal(err)
	}
	if s := w.Sim.PayGiftSends(m.MchID); len(s) != 0 {
		t.Fatalf("a 99.99 yuan payment earned %+v, want nothing (threshold 100 yuan)", s)
	}
	w.prepayAndRecord(t, "E2EPG0002", 12000)
	paid, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: m.MchID, OutTradeNo: "E2EPG0002", OpenID: "oGiftUser"})
	if err != nil {
		t.Fatal(err)
	}
	sends := w.Sim.PayGiftSends(m.MchID)
	if len(sends) != 1 || sends[0].CouponCode == "" || sends[0].TransactionID != paid.TransactionID {
		t.Fatalf("pay-gift sends = %+v", sends)
	}
	var note string
	deadline := time.Now().Add(20 * time.Second)
	for note == "" && time.Now().Before(deadline) {
		for _, d := range w.Sim.Deliveries() {
			if d.EventType == "COUPON.SEND" && d.Acked {
				note = d.NotificationID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if note == "" {
		t.Fatal("no COUPON.SEND acknowledged by the notify function")
	}
	c := w.ledgerCoupon(t, stock, sends[0].CouponCode)
	if c.State != ledger.CouponSended || c.SendChannel != "BUSICOUPON_SEND_CHANNEL_PAYGIFT" || c.PayGiftTransactionID != paid.TransactionID ||
		!strings.Contains(c.AttachInfoJSON, paid.TransactionID) || c.OpenID != "oGiftUser" {
		t.Fatalf("ledger coupon = %+v, want a PAYGIFT send for %s", c, paid.TransactionID)
	}

	w.expectStatus(t, "terminate", http.MethodPost, base+"/terminate", nil, http.StatusOK, "")
	if d := w.expectStatus(t, "detail", http.MethodGet, base, nil, http.StatusOK, ""); d["activity_status"] != "TERMINATE_ACT_STATUS" {
		t.Fatalf("detail after terminate = %v", d)
	}
	w.expectStatus(t, "terminate twice", http.MethodPost, base+"/terminate", nil, http.StatusBadRequest, "INVALID_REQUEST")
	w.prepayAndRecord(t, "E2EPG0003", 12000)
	if _, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: m.MchID, OutTradeNo: "E2EPG0003", OpenID: "oGiftUser2"}); err != nil {
		t.Fatal(err)
	}
	if s := w.Sim.PayGiftSends(m.MchID); len(s) != 1 {
		t.Fatalf("after terminate: %d sends, want still 1", len(s))
	}
}
