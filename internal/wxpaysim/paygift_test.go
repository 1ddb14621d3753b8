package wxpaysim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
)

const pgBase = "/v3/marketing/paygiftactivity"

// activityBody is a valid full-send activity body over stocks.
func activityBody(now time.Time, outRequestNo string, minimum int64, merchants []string, stocks ...string) map[string]any {
	var awards []map[string]any
	for _, s := range stocks {
		awards = append(awards, map[string]any{"stock_id": s, "original_image_url": "https://wxpaylogo.qpic.cn/award.png",
			"thumbnail_url": "https://wxpaylogo.qpic.cn/thumb.png"})
	}
	content := "SINGLE_COUPON"
	if len(stocks) > 1 {
		content = "GIFT_PACKAGE"
	}
	return map[string]any{
		"activity_base_info": map[string]any{"activity_name": "满100送券", "activity_second_title": "下单即送", "merchant_logo_url": "https://wxpaylogo.qpic.cn/logo.png",
			"background_color": "Color020", "begin_time": wxTime(now), "end_time": wxTime(now.Add(7 * 24 * time.Hour)),
			"out_request_no": outRequestNo, "delivery_purpose": "OFF_LINE_PAY"},
		"award_send_rule": map[string]any{"transaction_amount_minimum": minimum, "send_content": content, "award_type": "BUSIFAVOR",
			"award_list": awards, "merchant_option": "MANUAL_INPUT_MERCHANT", "merchant_id_list": merchants},
		"advanced_setting": map[string]any{"delivery_user_category": "DELIVERY_ALL_PERSON", "goods_tags": []string{"GIFT"}},
	}
}

func TestPayGiftActivityLifecycle(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	expect(t, "set callback", f.call(t, "POST", bfBase+"/callbacks", mustJSON(t, map[string]any{"notify_url": rc.URL()}), nil), 200, "")
	now := f.sim.Now()
	stock := f.createStock(t, stockBody(f.m, "WECHATPAY_MODE", now, "PGSTOCK1"))

	raw := mustJSON(t, activityBody(now, "ACT0001", 10000, []string{f.m.MchID}, stock))
	c1 := f.call(t, "POST", pgBase+"/unique-threshold-activity", raw, nil)
	expect(t, "create", c1, 200, "")
	if c2 := f.call(t, "POST", pgBase+"/unique-threshold-activity", raw, nil); string(c2.Body) != string(c1.Body) {
		t.Fatalf("create replay = %s, want %s", c2.Body, c1.Body)
	}
	act := jsonOf(t, c1)["activity_id"].(string)
	for i := 2; i <= 3; i++ {
		b := activityBody(now, fmt.Sprintf("ACT000%d", i), 10000, []string{f.m.MchID}, stock)
		b["activity_base_info"].(map[string]any)["activity_name"] = fmt.Sprintf("活动%d", i)
		expect(t, "create more", f.call(t, "POST", pgBase+"/unique-threshold-activity", mustJSON(t, b), nil), 200, "")
	}

	// G2 detail: no merchant_id_list (only G3 has it).
	d := jsonOf(t, f.call(t, "GET", pgBase+"/activities/"+act, nil, nil))
	rule := d["award_send_rule"].(map[string]any)["full_send_rule"].(map[string]any)
	if d["activity_status"] != "ONGOING_ACT_STATUS" || d["activity_type"] != "FULL_SEND_ACT_TYPE" || rule["merchant_id_list"] != nil {
		t.Fatalf("detail = %v, want ONGOING FULL_SEND without merchant_id_list", d)
	}
	expect(t, "unknown activity", f.call(t, "GET", pgBase+"/activities/1000000000", nil, nil), 404, "RESOURCE_NOT_EXISTS")

	// G7 list: offset is a page number.
	var list struct {
		TotalCount int `json:"total_count"`
		Data       []struct {
			ActivityID string `json:"activity_id"`
		} `json:"data"`
	}
	r := f.call(t, "GET", pgBase+"/activities?offset=1&limit=2", nil, nil)
	if err := json.Unmarshal(r.Body, &list); err != nil || list.TotalCount != 3 || len(list.Data) != 1 {
		t.Fatalf("page 1 of size 2 = %s (%v), want the 3rd of 3", r.Body, err)
	}
	r = f.call(t, "GET", pgBase+"/activities?offset=0&limit=10&activity_name="+"%E6%B4%BB%E5%8A%A82", nil, nil)
	if err := json.Unmarshal(r.Body, &list); err != nil || list.TotalCount != 1 {
		t.Fatalf("name filter = %s (%v), want 1", r.Body, err)
	}
	expect(t, "list without limit", f.call(t, "GET", pgBase+"/activities?offset=0", nil, nil), 400, "PARAM_ERROR")
	expect(t, "limit 101", f.call(t, "GET", pgBase+"/activities?offset=0&limit=101", nil, nil), 400, "PARAM_ERROR")

	// G3/G4/G6/G8: merchants and goods.
	goods := jsonOf(t, f.call(t, "GET", pgBase+"/activities/"+act+"/goods", nil, nil))
	if goods["total_count"] != 1.0 {
		t.Fatalf("goods = %v, want the one goods tag", goods)
	}
	add := mustJSON(t, map[string]any{"merchant_id_list": []string{"1900000002", f.m.MchID, "12ab"}, "add_request_no": "ADD0001"})
	a1 := f.call(t, "POST", pgBase+"/activities/"+act+"/merchants/add", add, nil)
	if inv := jsonOf(t, a1)["invalid_merchant_id_list"].([]any); a1.Status != 200 || len(inv) != 2 {
		t.Fatalf("add = %d %s, want 2 invalid (already in, malformed)", a1.Status, a1.Body)
	}
	if a2 := f.call(t, "POST", pgBase+"/activities/"+act+"/merchants/add", add, nil); string(a2.Body) != string(a1.Body) {
		t.Fatalf("add replay = %s, want %s", a2.Body, a1.Body)
	}
	expect(t, "add_request_no reused", f.call(t, "POST", pgBase+"/activities/"+act+"/merchants/add",
		mustJSON(t, map[string]any{"merchant_id_list": []string{"1900000003"}, "add_request_no": "ADD0001"}), nil), 400, "INVALID_REQUEST")
	expect(t, "delete", f.call(t, "POST", pgBase+"/activities/"+act+"/merchants/delete",
		mustJSON(t, map[string]any{"merchant_id_list": []string{"1900000002"}, "delete_request_no": "DEL0001"}), nil), 200, "")
	ms := jsonOf(t, f.call(t, "GET", pgBase+"/activities/"+act+"/merchants?offset=0&limit=10", nil, nil))
	if ms["total_count"] != 1.0 || ms["data"].([]any)[0].(map[string]any)["mchid"] != f.m.MchID {
		t.Fatalf("merchants = %v, want only %s", ms, f.m.MchID)
	}

	// A qualifying payment sends the coupon; a small one does not.
	pay := func(no string, total int64, tag string) wxpaysim.PaymentResult {
		b := prepayBody(f.m, no, total, rc.URL())
		if tag != "" {
			b["goods_tag"] = tag
		}
		expect(t, "prepay", f.call(t, "POST", "/v3/pay/transactions/native", mustJSON(t, b), nil), 200, "")
		res, err := f.sim.PayOrder(t.Context(), wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: no, OpenID: "oPayGiftUser"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	pay("PGORDER0001", 9999, "GIFT")
	pay("PGORDER0002", 20000, "OTHER")
	paid := pay("PGORDER0003", 20000, "GIFT")
	sends := f.sim.PayGiftSends(f.m.MchID)
	// Three activities share the stock (per-user limit 2): the third gift fails.
	if len(sends) != 3 || sends[0].TransactionID != paid.TransactionID || sends[0].CouponCode == "" || sends[2].Error == "" {
		t.Fatalf("pay-gift sends = %+v, want 3 for %s (the third over the per-user limit)", sends, paid.TransactionID)
	}
	waitFor(t, "PAYGIFT COUPON.SEND", func() bool { return len(couponSends(t, rc)) == 2 })
	cs := couponSends(t, rc)[0]
	if cs.SendChannel != "BUSICOUPON_SEND_CHANNEL_PAYGIFT" || cs.AttachInfo["transaction_id"] != paid.TransactionID || cs.OpenID != "oPayGiftUser" {
		t.Fatalf("COUPON.SEND = %+v, want PAYGIFT with attach_info.transaction_id %s", cs, paid.TransactionID)
	}
	var again struct {
		Sends []wxpaysim.PayGiftSend `json:"sends"`
	}
	if code := f.admin(t, "POST", "/sim/users/paygift", map[string]any{"mchid": f.m.MchID, "transaction_id": paid.TransactionID}, &again); code != 200 || len(again.Sends) != 0 {
		t.Fatalf("checking the same order again = %d %+v, want no second gift", code, again)
	}

	// G5 terminate.
	expect(t, "terminate", f.call(t, "POST", pgBase+"/activities/"+act+"/terminate", nil, nil), 200, "")
	expect(t, "terminate twice", f.call(t, "POST", pgBase+"/activities/"+act+"/terminate", nil, nil), 400, "INVALID_REQUEST")
	if d := jsonOf(t, f.call(t, "GET", pgBase+"/activities/"+act, nil, nil)); d["activity_status"] != "TERMINATE_ACT_STATUS" {
		t.Fatalf("after terminate: %v", d["activity_status"])
	}
}

func TestPayGiftCreateRules(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	now := f.sim.Now()
	stock := f.createStock(t, stockBody(f.m, "WECHATPAY_MODE", now, "PGRULES1"))
	short := stockBody(f.m, "WECHATPAY_MODE", now, "PGRULES2")
	short["coupon_use_rule"].(map[string]any)["coupon_available_time"] = map[string]any{"available_begin_time": wxTime(now.Add(-time.Hour)), "available_end_time": wxTime(now.Add(24 * time.Hour))}
	shortStock := f.createStock(t, short)
	upload := f.createStock(t, stockBody(f.m, "MERCHANT_UPLOAD", now, "PGRULES3"))
	base := func(b map[string]any) map[string]any { return b["activity_base_info"].(map[string]any) }
	rule := func(b map[string]any) map[string]any { return b["award_send_rule"].(map[string]any) }
	tests := map[string]struct {
		stocks []string
		edit   func(b map[string]any)
		want   string // in the error message
	}{
		"gift package of 2":           {[]string{stock, shortStock}, func(map[string]any) {}, "3-5"},
		"single coupon with 2 awards": {[]string{stock, shortStock}, func(b map[string]any) { rule(b)["send_content"] = "SINGLE_COUPON" }, "须为1个"},
		"window of 365 days": {[]string{stock}, func(b map[string]any) {
			base(b)["begin_time"] = wxTime(now.Add(-335 * 24 * time.Hour))
			base(b)["end_time"] = wxTime(now.Add(30 * 24 * time.Hour))
		}, "31536000"},
		"JUMP_MINI_APP without appid": {[]string{stock}, func(b map[string]any) { base(b)["delivery_purpose"] = "JUMP_MINI_APP" }, "JUMP_MINI_APP"},
		"stock ends before activity":  {[]string{shortStock}, func(map[string]any) {}, "有效期"},
		"upload stock without codes":  {[]string{upload}, func(map[string]any) {}, "no uploaded code"},
		"unknown stock":               {[]string{"1200000000"}, func(map[string]any) {}, "does not exist"},
		"bad background_color":        {[]string{stock}, func(b map[string]any) { base(b)["background_color"] = "Color015" }, "background_color"},
		"in-service merchant option":  {[]string{stock}, func(b map[string]any) { rule(b)["merchant_option"] = "IN_SEVICE_COUPON_MERCHANT" }, "MANUAL_INPUT_MERCHANT"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := activityBody(now, "R"+testkeys.RandomString(10), 100, []string{f.m.MchID}, tc.stocks...)
			tc.edit(b)
			r := f.call(t, "POST", pgBase+"/unique-threshold-activity", mustJSON(t, b), nil)
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), tc.want) {
				t.Fatalf("%s: got %d %s, want 400 mentioning %q", name, r.Status, r.Body, tc.want)
			}
		})
	}
}
