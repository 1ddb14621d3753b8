package wxpaysim_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
)

const bfBase = "/v3/marketing/busifavor"

var cst = time.FixedZone("CST", 8*3600)

func wxTime(t time.Time) string { return t.In(cst).Format(time.RFC3339) }

// stockBody is a valid create-stock body.
func stockBody(m *testkeys.Merchant, mode string, now time.Time, outRequestNo string) map[string]any {
	return map[string]any{
		"stock_name": "8月1日活动券", "belong_merchant": m.MchID, "comment": "活动使用", "goods_name": "全场可用",
		"stock_type": "NORMAL", "out_request_no": outRequestNo, "coupon_code_mode": mode,
		"coupon_use_rule": map[string]any{
			"coupon_available_time": map[string]any{"available_begin_time": wxTime(now.Add(-time.Hour)),
				"available_end_time": wxTime(now.Add(30 * 24 * time.Hour))},
			"fixed_normal_coupon": map[string]any{"discount_amount": 500, "transaction_minimum": 1000},
			"use_method":          "OFF_LINE",
		},
		"stock_send_rule": map[string]any{"max_coupons": 5, "max_coupons_per_user": 2},
		"notify_config":   map[string]any{"notify_appid": m.AppID},
	}
}

// jsonOf decodes an answer body into a generic map.
func jsonOf(t *testing.T, r result) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %d %s: %v", r.Status, r.Body, err)
	}
	return m
}

// expect checks status (and code for errors) of an answer.
func expect(t *testing.T, what string, r result, status int, code string) {
	t.Helper()
	if r.Status != status || (code != "" && r.code() != code) {
		t.Fatalf("%s: got %d %s, want %d %s", what, r.Status, r.Body, status, code)
	}
}

// createStock creates a stock and returns its id.
func (f *fixture) createStock(t *testing.T, body map[string]any) string {
	t.Helper()
	r := f.call(t, "POST", bfBase+"/stocks", mustJSON(t, body), nil)
	expect(t, "create stock", r, http.StatusOK, "")
	id, _ := jsonOf(t, r)["stock_id"].(string)
	if id == "" {
		t.Fatalf("create stock answered no stock_id: %s", r.Body)
	}
	return id
}

func TestBusifavorStockLifecycle(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	now := f.sim.Now()
	body := stockBody(f.m, "MERCHANT_UPLOAD", now, "STOCKREQ0001")
	raw := mustJSON(t, body)
	r1 := f.call(t, "POST", bfBase+"/stocks", raw, nil)
	r2 := f.call(t, "POST", bfBase+"/stocks", raw, nil)
	expect(t, "create", r1, 200, "")
	if string(r1.Body) != string(r2.Body) {
		t.Fatalf("same out_request_no and body: got %s then %s, want the same answer", r1.Body, r2.Body)
	}
	if err := f.verify(r1); err != nil {
		t.Fatalf("create answer signature: %v", err)
	}
	body["stock_name"] = "另一个名字"
	expect(t, "same out_request_no, other body", f.call(t, "POST", bfBase+"/stocks", mustJSON(t, body), nil), 400, "INVALID_REQUEST")
	id := jsonOf(t, r1)["stock_id"].(string)

	get := func() map[string]any {
		r := f.call(t, "GET", bfBase+"/stocks/"+id, nil, nil)
		expect(t, "get stock", r, 200, "")
		return jsonOf(t, r)
	}
	st := get()
	if st["stock_state"] != "RUNNING" || st["stock_id"] != id || st["coupon_code_mode"] != "MERCHANT_UPLOAD" {
		t.Fatalf("stock = %v, want RUNNING MERCHANT_UPLOAD %s", st, id)
	}
	expect(t, "unknown stock", f.call(t, "GET", bfBase+"/stocks/1299999999", nil, nil), 404, "RESOURCE_NOT_EXISTS")

	// B3: modify, idempotent on out_request_no.
	patch := mustJSON(t, map[string]any{"out_request_no": "MOD0001", "stock_name": "改名券", "comment": "新说明"})
	expect(t, "modify", f.call(t, "PATCH", bfBase+"/stocks/"+id, patch, nil), 204, "")
	expect(t, "modify replay", f.call(t, "PATCH", bfBase+"/stocks/"+id, patch, nil), 204, "")
	if st := get(); st["stock_name"] != "改名券" || st["comment"] != "新说明" {
		t.Fatalf("after modify: %v", st)
	}
	expect(t, "modify MINI_PROGRAMS without path", f.call(t, "PATCH", bfBase+"/stocks/"+id,
		mustJSON(t, map[string]any{"out_request_no": "MOD0002", "coupon_use_rule": map[string]any{"use_method": "MINI_PROGRAMS", "mini_programs_appid": f.m.AppID}}), nil), 400, "PARAM_ERROR")

	// B5: upload codes.
	up := func(no string, codes ...string) result {
		return f.call(t, "POST", bfBase+"/stocks/"+id+"/couponcodes", mustJSON(t, map[string]any{"coupon_code_list": codes, "upload_request_no": no}), nil)
	}
	r := up("UP0001", "ABC001", "ABC002", "ABC002", "bad#code")
	expect(t, "upload", r, 200, "")
	var ans struct {
		TotalCount     int      `json:"total_count"`
		SuccessCount   int      `json:"success_count"`
		SuccessCodes   []string `json:"success_codes"`
		FailCount      int      `json:"fail_count"`
		DuplicateCodes []string `json:"duplicate_codes"`
		ExistCodes     []string `json:"exist_codes"`
	}
	if err := json.Unmarshal(r.Body, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.SuccessCount != 2 || ans.FailCount != 1 || len(ans.DuplicateCodes) != 1 || ans.TotalCount != 3 {
		t.Fatalf("upload answer = %s, want 2 successes, 1 failure, 1 duplicate of 3 distinct", r.Body)
	}
	if again := up("UP0001", "ABC001", "ABC002", "ABC002", "bad#code"); string(again.Body) != string(r.Body) {
		t.Fatalf("upload replay = %s, want %s", again.Body, r.Body)
	}
	r = up("UP0002", "ABC001", "ABC003")
	if err := json.Unmarshal(r.Body, &ans); err != nil || ans.SuccessCount != 1 || len(ans.ExistCodes) != 1 {
		t.Fatalf("second upload = %s (%v), want ABC003 new and ABC001 existing", r.Body, err)
	}
	expect(t, "upload beyond the stock size", up("UP0003", "X1", "X2", "X3"), 400, "INVALID_REQUEST")
	expect(t, "upload 0 codes", up("UP0004"), 400, "PARAM_ERROR")
	expect(t, "same upload_request_no, other codes", up("UP0002", "Z9"), 400, "INVALID_REQUEST")
	if c := get()["coupon_code_count"].(map[string]any); c["total_count"] != 3.0 || c["available_count"] != 3.0 {
		t.Fatalf("coupon_code_count = %v, want 3/3", c)
	}

	// B6/B7: list and detail.
	r = f.call(t, "GET", bfBase+"/stocks/"+id+"/couponcodes?limit=2&offset=1", nil, nil)
	var list struct {
		TotalCount int `json:"total_count"`
		Data       []struct {
			Code       string `json:"code"`
			CodeStatus string `json:"code_status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || list.TotalCount != 3 || len(list.Data) != 2 || list.Data[0].Code != "ABC002" {
		t.Fatalf("list codes offset 1 limit 2 = %s (%v), want ABC002, ABC003 of 3", r.Body, err)
	}
	expect(t, "limit above the page bound", f.call(t, "GET", bfBase+"/stocks/"+id+"/couponcodes?limit=51", nil, nil), 400, "PARAM_ERROR")
	expect(t, "bad status filter", f.call(t, "GET", bfBase+"/stocks/"+id+"/couponcodes?status=USED", nil, nil), 400, "PARAM_ERROR")
	r = f.call(t, "GET", bfBase+"/stocks/"+id+"/couponcodes/ABC003", nil, nil)
	if info := jsonOf(t, r)["code_information"].(map[string]any); info["code_status"] != "AVAILABLE" {
		t.Fatalf("code detail = %s", r.Body)
	}

	// B8: delete, idempotent on delete_request_no.
	del := func(code, no string) result {
		return f.call(t, "DELETE", bfBase+"/stocks/"+id+"/couponcodes/"+code+"?delete_request_no="+url.QueryEscape(no), nil, nil)
	}
	d1 := del("ABC003", "DEL0001")
	expect(t, "delete", d1, 200, "")
	if d2 := del("ABC003", "DEL0001"); string(d2.Body) != string(d1.Body) {
		t.Fatalf("delete replay = %s, want %s", d2.Body, d1.Body)
	}
	expect(t, "delete again with a new number", del("ABC003", "DEL0002"), 404, "RESOURCE_NOT_EXISTS")
	expect(t, "delete without a number", f.call(t, "DELETE", bfBase+"/stocks/"+id+"/couponcodes/ABC001", nil, nil), 400, "PARAM_ERROR")

	// B4: budget.
	budget := func(v map[string]any) result {
		return f.call(t, "PATCH", bfBase+"/stocks/"+id+"/budget", mustJSON(t, v), nil)
	}
	expect(t, "both pairs", budget(map[string]any{"target_max_coupons": 10, "current_max_coupons": 5, "target_max_coupons_by_day": 2,
		"current_max_coupons_by_day": 0, "modify_budget_request_no": "B1"}), 400, "PARAM_ERROR")
	expect(t, "stale current", budget(map[string]any{"target_max_coupons": 10, "current_max_coupons": 4, "modify_budget_request_no": "B2"}), 400, "INVALID_REQUEST")
	expect(t, "below uploaded codes", budget(map[string]any{"target_max_coupons": 1, "current_max_coupons": 5, "modify_budget_request_no": "B3"}), 400, "INVALID_REQUEST")
	r = budget(map[string]any{"target_max_coupons": 10, "current_max_coupons": 5, "modify_budget_request_no": "B4"})
	if a := jsonOf(t, r); r.Status != 200 || a["max_coupons"] != 10.0 {
		t.Fatalf("budget = %d %s, want max_coupons 10", r.Status, r.Body)
	}
	if again := budget(map[string]any{"target_max_coupons": 10, "current_max_coupons": 5, "modify_budget_request_no": "B4"}); string(again.Body) != string(r.Body) {
		t.Fatalf("budget replay = %s, want %s (the stored answer, although current is now 10)", again.Body, r.Body)
	}
}

func TestBusifavorCreateRules(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	now := f.sim.Now()
	type edit func(b map[string]any)
	rule := func(b map[string]any) map[string]any { return b["coupon_use_rule"].(map[string]any) }
	tests := map[string]struct {
		edit   edit
		status int
		code   string
	}{
		"stock_name too long":   {func(b map[string]any) { b["stock_name"] = strings.Repeat("券", 22) }, 400, "PARAM_ERROR"},
		"other belong_merchant": {func(b map[string]any) { b["belong_merchant"] = "1900000001" }, 403, "NO_AUTH"},
		"two rule objects": {func(b map[string]any) {
			rule(b)["discount_coupon"] = map[string]any{"discount_percent": 88, "transaction_minimum": 100}
		}, 400, "PARAM_ERROR"},
		"rule object of another type": {func(b map[string]any) { b["stock_type"] = "DISCOUNT" }, 400, "PARAM_ERROR"},
		"discount above 10,000,000 fen": {func(b map[string]any) {
			rule(b)["fixed_normal_coupon"] = map[string]any{"discount_amount": 10_000_001, "transaction_minimum": 100}
		}, 400, "PARAM_ERROR"},
		"MINI_PROGRAMS without path": {func(b map[string]any) { rule(b)["use_method"] = "MINI_PROGRAMS" }, 400, "PARAM_ERROR"},
		"begin more than a year ahead": {func(b map[string]any) {
			rule(b)["coupon_available_time"] = map[string]any{"available_begin_time": wxTime(now.AddDate(1, 0, 2)), "available_end_time": wxTime(now.AddDate(1, 1, 0))}
		}, 400, "PARAM_ERROR"},
		"not RFC 3339": {func(b map[string]any) {
			rule(b)["coupon_available_time"] = map[string]any{"available_begin_time": "2025-01-01 10:00:00", "available_end_time": wxTime(now.Add(time.Hour))}
		}, 400, "PARAM_ERROR"},
		"max_coupons 0": {func(b map[string]any) {
			b["stock_send_rule"] = map[string]any{"max_coupons": 0, "max_coupons_per_user": 1}
		}, 400, "PARAM_ERROR"},
		"max_coupons_per_user 101": {func(b map[string]any) {
			b["stock_send_rule"] = map[string]any{"max_coupons": 1000, "max_coupons_per_user": 101}
		}, 400, "PARAM_ERROR"},
		"unknown code mode":          {func(b map[string]any) { b["coupon_code_mode"] = "RANDOM" }, 400, "PARAM_ERROR"},
		"notify_appid not bound":     {func(b map[string]any) { b["notify_config"] = map[string]any{"notify_appid": "wxnotmine"} }, 400, "APPID_MCHID_NOT_MATCH"},
		"out_request_no with spaces": {func(b map[string]any) { b["out_request_no"] = "A B" }, 400, "PARAM_ERROR"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := stockBody(f.m, "WECHATPAY_MODE", now, "RULE"+testkeys.RandomString(8))
			tc.edit(b)
			expect(t, name, f.call(t, "POST", bfBase+"/stocks", mustJSON(t, b), nil), tc.status, tc.code)
		})
	}
}

// couponSend is a decrypted COUPON.SEND resource.
type couponSend struct {
	EventType    string         `json:"event_type"`
	CouponCode   string         `json:"coupon_code"`
	StockID      string         `json:"stock_id"`
	OpenID       string         `json:"openid"`
	SendChannel  string         `json:"send_channel"`
	SendMerchant string         `json:"send_merchant"`
	AttachInfo   map[string]any `json:"attach_info"`
}

// couponSends decodes the COUPON.SEND deliveries a receiver verified.
func couponSends(t *testing.T, rc *receiver) []couponSend {
	t.Helper()
	var out []couponSend
	seen := map[string]bool{}
	for _, d := range rc.deliveries() {
		if d.VerifyErr != nil || seen[d.ID] {
			continue
		}
		seen[d.ID] = true
		var env struct {
			EventType string `json:"event_type"`
		}
		_ = json.Unmarshal(d.Body, &env)
		if env.EventType != "COUPON.SEND" {
			continue
		}
		var cs couponSend
		if err := json.Unmarshal(d.Plain, &cs); err != nil {
			t.Fatalf("COUPON.SEND resource %s: %v", d.Plain, err)
		}
		out = append(out, cs)
	}
	return out
}

func TestBusifavorCouponTransitions(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	expect(t, "get callback before set", f.call(t, "GET", bfBase+"/callbacks?mchid="+f.m.MchID, nil, nil), 404, "RESOURCE_NOT_EXISTS")
	expect(t, "callback with a query", f.call(t, "POST", bfBase+"/callbacks", mustJSON(t, map[string]any{"mchid": f.m.MchID, "notify_url": rc.URL() + "?a=1"}), nil), 400, "PARAM_ERROR")
	expect(t, "set callback", f.call(t, "POST", bfBase+"/callbacks", mustJSON(t, map[string]any{"mchid": f.m.MchID, "notify_url": rc.URL()}), nil), 200, "")
	if cb := jsonOf(t, f.call(t, "GET", bfBase+"/callbacks?mchid="+f.m.MchID, nil, nil)); cb["notify_url"] != rc.URL() {
		t.Fatalf("callback = %v, want %s", cb, rc.URL())
	}
	id := f.createStock(t, stockBody(f.m, "WECHATPAY_MODE", f.sim.Now(), "TRANS0001"))
	const openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

	send := func(no string) result {
		return f.call(t, "POST", bfBase+"/coupons/send", mustJSON(t, map[string]any{"stock_id": id, "openid": openid,
			"out_request_no": no, "appid": f.m.AppID}), nil)
	}
	s1 := send("SEND0001")
	expect(t, "send", s1, 200, "")
	code := jsonOf(t, s1)["coupon_code"].(string)
	if s := send("SEND0001"); jsonOf(t, s)["coupon_code"] != code {
		t.Fatalf("send replay gave %s, want coupon %s", s.Body, code)
	}
	expect(t, "second coupon", send("SEND0002"), 200, "")
	expect(t, "per-user limit (2)", send("SEND0003"), 400, "INVALID_REQUEST")
	waitFor(t, "2 COUPON.SEND", func() bool { return len(couponSends(t, rc)) >= 2 })
	cs := couponSends(t, rc)[0]
	if cs.EventType != "EVENT_TYPE_BUSICOUPON_SEND" || cs.CouponCode != code || cs.StockID != id || cs.OpenID != openid ||
		cs.SendChannel != "BUSICOUPON_SEND_CHANNEL_API" || cs.SendMerchant != f.m.MchID {
		t.Fatalf("COUPON.SEND = %+v, want API send of %s/%s to %s", cs, id, code, openid)
	}

	post := func(path string, v map[string]any) result {
		return f.call(t, "POST", bfBase+path, mustJSON(t, v), nil)
	}
	state := func() string {
		r := f.call(t, "GET", bfBase+"/users/"+openid+"/coupons/"+code+"/appids/"+f.m.AppID, nil, nil)
		expect(t, "get user coupon", r, 200, "")
		return jsonOf(t, r)["coupon_state"].(string)
	}
	use := map[string]any{"coupon_code": code, "stock_id": id, "appid": f.m.AppID, "use_time": wxTime(f.sim.Now()), "use_request_no": "USE0001", "openid": openid}
	assoc := map[string]any{"coupon_code": code, "stock_id": id, "out_trade_no": "ORDER0001", "out_request_no": "ASSOC0001"}
	expect(t, "associate", post("/coupons/associate", assoc), 200, "")
	expect(t, "disassociate another order", post("/coupons/disassociate", map[string]any{"coupon_code": code, "stock_id": id,
		"out_trade_no": "ORDER0002", "out_request_no": "DIS0001"}), 400, "INVALID_REQUEST")
	expect(t, "disassociate", post("/coupons/disassociate", map[string]any{"coupon_code": code, "stock_id": id,
		"out_trade_no": "ORDER0001", "out_request_no": "DIS0002"}), 200, "")
	expect(t, "return an unused coupon", post("/coupons/return", map[string]any{"coupon_code": code, "stock_id": id, "return_request_no": "RET0000"}), 400, "INVALID_REQUEST")
	expect(t, "use with another user's openid", post("/coupons/use", map[string]any{"coupon_code": code, "stock_id": id, "appid": f.m.AppID,
		"use_time": wxTime(f.sim.Now()), "use_request_no": "USE0000", "openid": "oSomeoneElse"}), 403, "NO_AUTH")
	u1 := post("/coupons/use", use)
	expect(t, "use", u1, 200, "")
	if u2 := post("/coupons/use", use); string(u2.Body) != string(u1.Body) {
		t.Fatalf("use replay = %s, want %s", u2.Body, u1.Body)
	}
	if st := state(); st != "USED" {
		t.Fatalf("after use: %s, want USED", st)
	}
	use["use_request_no"] = "USE0002"
	expect(t, "use twice", post("/coupons/use", use), 400, "INVALID_REQUEST")
	expect(t, "deactivate a used coupon", post("/coupons/deactivate", map[string]any{"coupon_code": code, "stock_id": id, "deactivate_request_no": "DEA0000"}), 400, "INVALID_REQUEST")
	expect(t, "return", post("/coupons/return", map[string]any{"coupon_code": code, "stock_id": id, "return_request_no": "RET0001"}), 200, "")
	if st := state(); st != "SENDED" {
		t.Fatalf("after return: %s, want SENDED", st)
	}
	expect(t, "deactivate", post("/coupons/deactivate", map[string]any{"coupon_code": code, "stock_id": id, "deactivate_request_no": "DEA0001", "deactivate_reason": "设置错误"}), 200, "")
	if st := state(); st != "DEACTIVATED" {
		t.Fatalf("after deactivate: %s, want DEACTIVATED", st)
	}
	use["use_request_no"] = "USE0003"
	expect(t, "use a deactivated coupon", post("/coupons/use", use), 400, "INVALID_REQUEST")
	expect(t, "use with an unbound appid", post("/coupons/use", map[string]any{"coupon_code": code, "stock_id": id, "appid": "wxnotmine",
		"use_time": wxTime(f.sim.Now()), "use_request_no": "USE0004"}), 400, "APPID_MCHID_NOT_MATCH")
	expect(t, "unknown coupon", post("/coupons/use", map[string]any{"coupon_code": "999", "stock_id": id, "appid": f.m.AppID,
		"use_time": wxTime(f.sim.Now()), "use_request_no": "USE0005"}), 404, "RESOURCE_NOT_EXISTS")

	// B10: filter; the second coupon expires with the stock.
	r := f.call(t, "GET", bfBase+"/users/"+openid+"/coupons?appid="+f.m.AppID+"&creator_merchant="+f.m.MchID, nil, nil)
	var list struct {
		TotalCount int `json:"total_count"`
		Data       []struct {
			CouponCode  string `json:"coupon_code"`
			CouponState string `json:"coupon_state"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || list.TotalCount != 2 {
		t.Fatalf("filter = %s (%v), want 2 coupons", r.Body, err)
	}
	expect(t, "filter without a merchant role", f.call(t, "GET", bfBase+"/users/"+openid+"/coupons?appid="+f.m.AppID, nil, nil), 400, "PARAM_ERROR")
	f.sim.Advance(31 * 24 * time.Hour)
	r = f.call(t, "GET", bfBase+"/users/"+openid+"/coupons?appid="+f.m.AppID+"&creator_merchant="+f.m.MchID+"&coupon_state=EXPIRED", nil, nil)
	if err := json.Unmarshal(r.Body, &list); err != nil || list.TotalCount != 1 || list.Data[0].CouponCode == code {
		t.Fatalf("EXPIRED filter after the stock ended = %s (%v), want the unused second coupon", r.Body, err)
	}
}

func TestBusifavorPluginClaim(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	expect(t, "set callback", f.call(t, "POST", bfBase+"/callbacks", mustJSON(t, map[string]any{"notify_url": rc.URL()}), nil), 200, "")
	id := f.createStock(t, stockBody(f.m, "MERCHANT_UPLOAD", f.sim.Now(), "PLUG0001"))
	expect(t, "upload", f.call(t, "POST", bfBase+"/stocks/"+id+"/couponcodes", mustJSON(t, map[string]any{
		"coupon_code_list": []string{"PLUGCODE1"}, "upload_request_no": "PUP1"}), nil), 200, "")
	params := []wxpaysim.PluginCouponParam{{StockID: id, OutRequestNo: "PLUGREQ0001"}}
	claim := wxpaysim.CouponClaim{OpenID: "oClaimUser", AppID: f.m.AppID, SendCouponMerchant: f.m.MchID, SendCouponParams: params,
		Sign: wxpaysim.PluginSign(f.m.APIv2Key, f.m.MchID, params)}

	if _, err := f.sim.ClaimCoupons(t.Context(), claim); !errors.Is(err, wxpaysim.ErrInvalid) {
		t.Fatalf("claim before the APIv2 key is registered: %v, want ErrInvalid", err)
	}
	if code := f.admin(t, "POST", "/sim/busifavor/apiv2-key", map[string]any{"mchid": f.m.MchID, "apiv2_key": f.m.APIv2Key}, nil); code != 200 {
		t.Fatalf("register APIv2 key: %d", code)
	}
	bad := claim
	bad.Sign = wxpaysim.PluginSign("X"+f.m.APIv2Key[1:], f.m.MchID, params)
	if _, err := f.sim.ClaimCoupons(t.Context(), bad); !errors.Is(err, wxpaysim.ErrInvalid) {
		t.Fatalf("claim with a sign made with another key: %v, want ErrInvalid", err)
	}
	var res wxpaysim.ClaimResult
	if code := f.admin(t, "POST", "/sim/users/busifavor/claim", claim, &res); code != 200 || len(res.Results) != 1 ||
		res.Results[0].Code != "SUCCESS" || res.Results[0].CouponCode != "PLUGCODE1" {
		t.Fatalf("claim = %d %+v, want SUCCESS with the uploaded code", code, res)
	}
	again, err := f.sim.ClaimCoupons(t.Context(), claim)
	if err != nil || again.Results[0].CouponCode != "PLUGCODE1" || len(again.NotificationIDs) != 0 {
		t.Fatalf("claim replay = %+v (%v), want the same coupon and no second COUPON.SEND", again, err)
	}
	other := claim
	other.SendCouponParams = []wxpaysim.PluginCouponParam{{StockID: id, OutRequestNo: "PLUGREQ0002"}}
	other.Sign = wxpaysim.PluginSign(f.m.APIv2Key, f.m.MchID, other.SendCouponParams)
	if res, err := f.sim.ClaimCoupons(t.Context(), other); err != nil || res.Results[0].Code != "INVALID_REQUEST" {
		t.Fatalf("claim with the code pool empty = %+v (%v), want a per-coupon INVALID_REQUEST", res, err)
	}
	waitFor(t, "COUPON.SEND", func() bool { return len(couponSends(t, rc)) == 1 })
	if cs := couponSends(t, rc)[0]; cs.SendChannel != "BUSICOUPON_SEND_CHANNEL_MINIAPP" || cs.CouponCode != "PLUGCODE1" || cs.OpenID != "oClaimUser" {
		t.Fatalf("COUPON.SEND = %+v", cs)
	}
	if code := f.admin(t, "POST", "/sim/users/busifavor/delete", map[string]any{"mchid": f.m.MchID, "stock_id": id, "coupon_code": "PLUGCODE1", "openid": "oClaimUser"}, nil); code != 200 {
		t.Fatalf("user deletes the coupon: %d", code)
	}
	r := f.call(t, "GET", bfBase+"/users/oClaimUser/coupons/PLUGCODE1/appids/"+f.m.AppID, nil, nil)
	if st := jsonOf(t, r)["coupon_state"]; st != "DELETED" {
		t.Fatalf("after the user deleted it: %v, want DELETED", st)
	}
}

// signVector is one known-answer vector of testdata/plugin-sign.txt.
type signVector struct {
	key, merchant, signString, sign string
	params                          []wxpaysim.PluginCouponParam
}

func readSignVectors(t *testing.T, path string) []signVector {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []signVector
	var cur signVector
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "key":
			cur = signVector{key: v}
		case "merchant":
			cur.merchant = v
		case "coupon":
			p := strings.Split(v, ";")
			cur.params = append(cur.params, wxpaysim.PluginCouponParam{StockID: p[0], OutRequestNo: p[1], CouponCode: p[2],
				CustomizeSendTime: p[3], CreateCouponMerchant: p[4]})
		case "string":
			cur.signString = v
		case "sign":
			cur.sign = v
			out = append(out, cur)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no vector", path)
	}
	return out
}

// TestPluginSignKnownAnswer checks the simulator's plugin sign against
// vectors computed with openssl (testdata/plugin-sign.txt has the recipe).
func TestPluginSignKnownAnswer(t *testing.T) {
	for i, v := range readSignVectors(t, "testdata/plugin-sign.txt") {
		if got := wxpaysim.PluginSign(v.key, v.merchant, v.params); got != v.sign {
			t.Errorf("vector %d: PluginSign(%s, %+v) = %s, want %s", i, v.merchant, v.params, got, v.sign)
		}
	}
}

// TestBusifavorLostAnswer: a use whose answer is lost (500 after it took
// effect) is answered with the original success when retried with the same
// use_request_no, and refused with another number.
func TestBusifavorLostAnswer(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	id := f.createStock(t, stockBody(f.m, "WECHATPAY_MODE", f.sim.Now(), "LOST0001"))
	r := f.call(t, "POST", bfBase+"/coupons/send", mustJSON(t, map[string]any{"stock_id": id, "openid": "oLost", "out_request_no": "LS1", "appid": f.m.AppID}), nil)
	code := jsonOf(t, r)["coupon_code"].(string)
	if err := f.sim.LoseAnswers(f.m.MchID, "/v3/marketing/busifavor/coupons/nope", 1); !errors.Is(err, wxpaysim.ErrInvalid) {
		t.Fatalf("LoseAnswers on an unknown route: %v, want ErrInvalid", err)
	}
	if c := f.admin(t, "POST", "/sim/busifavor/lose-answers", map[string]any{"mchid": f.m.MchID, "pattern": bfBase + "/coupons/use", "count": 1}, nil); c != 200 {
		t.Fatalf("arm lose-answers: %d", c)
	}
	use := map[string]any{"coupon_code": code, "stock_id": id, "appid": f.m.AppID, "use_time": wxTime(f.sim.Now()), "use_request_no": "LOSTUSE1"}
	expect(t, "use with the answer lost", f.call(t, "POST", bfBase+"/coupons/use", mustJSON(t, use), nil), 500, "SYSTEM_ERROR")
	expect(t, "retry with the same number", f.call(t, "POST", bfBase+"/coupons/use", mustJSON(t, use), nil), 200, "")
	use["use_request_no"] = "LOSTUSE2"
	expect(t, "retry with a new number", f.call(t, "POST", bfBase+"/coupons/use", mustJSON(t, use), nil), 400, "INVALID_REQUEST")
}
