package coupons_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Ledger rows the rules below read.
const (
	seedWechat   = "1210000001" // WECHATPAY_MODE, 100 coupons, 5 per user, 30 days
	seedUpload   = "1210000002" // MERCHANT_UPLOAD, 3 coupons, 2 codes uploaded
	seedAPI      = "1210000003" // MERCHANT_API
	seedNoCodes  = "1210000004" // MERCHANT_UPLOAD, no code uploaded
	seedShort    = "1210000005" // ends in a day
	seedOtherCap = "1210000006" // 50 coupons (a gift package partner that differs)
)

func seedLedger(t *testing.T, e *env, now time.Time) {
	t.Helper()
	ctx := context.Background()
	stock := func(id, mode string, max, uploaded int64, end time.Time) {
		row := ledger.Stock{StockID: id, StockName: "种子券", StockType: "NORMAL", CouponCodeMode: mode, BelongMerchant: e.Merchant.MchID,
			State: "RUNNING", MaxCoupons: max, MaxCouponsPerUser: 5, AvailableBeginTime: wxTime(now.Add(-time.Hour)),
			AvailableEndTime: wxTime(end), UploadedCodes: uploaded}
		if err := e.Store.Put(ctx, &store.Put{Key: ledger.StockKey(id), Value: row}); err != nil {
			t.Fatal(err)
		}
	}
	month := now.Add(30 * 24 * time.Hour)
	stock(seedWechat, "WECHATPAY_MODE", 100, 0, month)
	stock(seedUpload, "MERCHANT_UPLOAD", 3, 2, month)
	stock(seedAPI, "MERCHANT_API", 100, 0, month)
	stock(seedNoCodes, "MERCHANT_UPLOAD", 100, 0, month)
	stock(seedShort, "WECHATPAY_MODE", 100, 0, now.Add(24*time.Hour))
	stock(seedOtherCap, "WECHATPAY_MODE", 50, 0, month)
	for _, c := range []ledger.Coupon{
		{StockID: seedWechat, CouponCode: "USEDCODE", State: ledger.CouponUsed, OpenID: "oOwner", UseRequestNo: "U0001"},
		{StockID: seedWechat, CouponCode: "SENTCODE", State: ledger.CouponSended, OpenID: "oOwner", AssociateOutTradeNo: "ORDER00001"},
		{StockID: seedWechat, CouponCode: "DEACODE", State: ledger.CouponDeactivated, OpenID: "oOwner"},
	} {
		if err := e.Store.Put(ctx, &store.Put{Key: ledger.CouponKey(c.StockID, c.CouponCode), Value: c}); err != nil {
			t.Fatal(err)
		}
	}
}

// set returns a copy of b with the value at a dotted path replaced (nil
// deletes it).
func set(b map[string]any, path string, v any) map[string]any {
	out := clone(b).(map[string]any)
	cur := out
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		cur = cur[p].(map[string]any)
	}
	if v == nil {
		delete(cur, parts[len(parts)-1])
	} else {
		cur[parts[len(parts)-1]] = v
	}
	return out
}

func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = clone(val)
		}
		return m
	case []map[string]any:
		s := make([]any, len(x))
		for i, val := range x {
			s[i] = clone(val)
		}
		return s
	case []any:
		s := make([]any, len(x))
		for i, val := range x {
			s[i] = clone(val)
		}
		return s
	}
	return v
}

type ruleCase struct {
	name   string
	method string
	path   string
	query  map[string]string
	body   any
	status int
	code   string
	msg    string // in the message
}

// TestLocalRulesRejectWithoutWeChatCall: every field rule of the coupons
// function answers its specific 4xx and sends nothing to WeChat Pay.
func TestLocalRulesRejectWithoutWeChatCall(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	seedLedger(t, e, now)
	app := e.Merchant.AppID
	post, get, patch, del := http.MethodPost, http.MethodGet, http.MethodPatch, http.MethodDelete
	const bad, param, tm, reqNo, state = http.StatusBadRequest, apigw.CodeParamError, coupons.CodeInvalidTime, coupons.CodeInvalidRequestNo, coupons.CodeCouponState

	sb := stockBody(now, "WECHATPAY_MODE", "")
	win := "coupon_use_rule.coupon_available_time"
	stockCases := []ruleCase{
		{"stock_name missing", post, "", nil, set(sb, "stock_name", nil), bad, param, "stock_name"},
		{"stock_name 22 characters", post, "", nil, set(sb, "stock_name", strings.Repeat("券", 22)), bad, param, "stock_name"},
		{"comment 21 characters", post, "", nil, set(sb, "comment", strings.Repeat("c", 21)), bad, param, "comment"},
		{"goods_name 16 characters", post, "", nil, set(sb, "goods_name", strings.Repeat("商", 16)), bad, param, "goods_name"},
		{"stock_type unknown", post, "", nil, set(sb, "stock_type", "FREE"), bad, param, "stock_type"},
		{"coupon_code_mode unknown", post, "", nil, set(sb, "coupon_code_mode", "RANDOM"), bad, param, "coupon_code_mode"},
		{"out_request_no with a space", post, "", nil, set(sb, "out_request_no", "REQ 1"), bad, reqNo, "out_request_no"},
		{"out_request_no 129 characters", post, "", nil, set(sb, "out_request_no", strings.Repeat("A", 129)), bad, reqNo, "out_request_no"},
		{"belong_merchant not digits", post, "", nil, set(sb, "belong_merchant", "19000A"), bad, param, "belong_merchant"},
		{"subsidy not open", post, "", nil, set(sb, "subsidy", true), bad, coupons.CodeNotOpen, "subsidy"},
		{"coupon_use_rule missing", post, "", nil, set(sb, "coupon_use_rule", nil), bad, param, "coupon_use_rule"},
		{"two rule objects", post, "", nil, set(sb, "coupon_use_rule.discount_coupon", map[string]any{"discount_percent": 88, "transaction_minimum": 100}), bad, coupons.CodeRuleMismatch, "exactly one"},
		{"rule object of another type", post, "", nil, set(sb, "stock_type", "EXCHANGE"), bad, coupons.CodeRuleMismatch, "exchange_coupon"},
		{"no rule object", post, "", nil, set(sb, "coupon_use_rule.fixed_normal_coupon", nil), bad, coupons.CodeRuleMismatch, "fixed_normal_coupon"},
		{"discount_amount 0", post, "", nil, set(sb, "coupon_use_rule.fixed_normal_coupon.discount_amount", 0), bad, param, "discount_amount"},
		{"discount_amount above 10,000,000 fen", post, "", nil, set(sb, "coupon_use_rule.fixed_normal_coupon.discount_amount", 10_000_001), bad, param, "discount_amount"},
		{"transaction_minimum missing", post, "", nil, set(sb, "coupon_use_rule.fixed_normal_coupon.transaction_minimum", nil), bad, param, "transaction_minimum"},
		{"discount_percent 100", post, "", nil, set(set(set(sb, "stock_type", "DISCOUNT"), "coupon_use_rule.fixed_normal_coupon", nil),
			"coupon_use_rule.discount_coupon", map[string]any{"discount_percent": 100, "transaction_minimum": 100}), bad, param, "discount_percent"},
		{"exchange_price negative", post, "", nil, set(set(set(sb, "stock_type", "EXCHANGE"), "coupon_use_rule.fixed_normal_coupon", nil),
			"coupon_use_rule.exchange_coupon", map[string]any{"exchange_price": -1, "transaction_minimum": 100}), bad, param, "exchange_price"},
		{"use_method unknown", post, "", nil, set(sb, "coupon_use_rule.use_method", "ONLINE"), bad, param, "use_method"},
		{"MINI_PROGRAMS without appid and path", post, "", nil, set(sb, "coupon_use_rule.use_method", "MINI_PROGRAMS"), bad, param, "MINI_PROGRAMS"},
		{"MINI_PROGRAMS without path", post, "", nil, set(set(sb, "coupon_use_rule.use_method", "MINI_PROGRAMS"), "coupon_use_rule.mini_programs_appid", app), bad, param, "mini_programs_path"},
		{"mini_programs_path 129 characters", post, "", nil, set(set(set(sb, "coupon_use_rule.use_method", "MINI_PROGRAMS"), "coupon_use_rule.mini_programs_appid", app),
			"coupon_use_rule.mini_programs_path", "/"+strings.Repeat("p", 128)), bad, param, "mini_programs_path"},
		{"available time missing", post, "", nil, set(sb, win, nil), bad, tm, "coupon_available_time"},
		{"begin not RFC 3339", post, "", nil, set(sb, win+".available_begin_time", "2026-01-01 10:00:00"), bad, tm, "available_begin_time"},
		{"begin after end", post, "", nil, set(sb, win+".available_begin_time", wxTime(now.Add(31*24*time.Hour))), bad, tm, "before"},
		{"begin more than a year ahead", post, "", nil, set(set(sb, win+".available_begin_time", wxTime(now.AddDate(1, 0, 2))),
			win+".available_end_time", wxTime(now.AddDate(1, 1, 0))), bad, tm, "1 year"},
		{"end already past", post, "", nil, set(set(sb, win+".available_begin_time", wxTime(now.Add(-48*time.Hour))),
			win+".available_end_time", wxTime(now.Add(-24*time.Hour))), bad, tm, "past"},
		{"wait_days_after_receive 31", post, "", nil, set(sb, win+".wait_days_after_receive", 31), bad, param, "wait_days_after_receive"},
		{"wait days without available days", post, "", nil, set(set(sb, win+".wait_days_after_receive", 2), win+".available_day_after_receive", nil), bad, param, "needs available_day_after_receive"},
		{"week_day 7", post, "", nil, set(sb, win+".available_week", map[string]any{"week_day": []int{1, 7}}), bad, param, "week_day"},
		{"three day windows", post, "", nil, set(sb, win+".available_week", map[string]any{"week_day": []int{1},
			"available_day_time": []map[string]any{{"begin_time": 3600, "end_time": 7200}, {"begin_time": 7300, "end_time": 8000}, {"begin_time": 9000, "end_time": 9999}}}), bad, param, "at most 2"},
		{"day window beyond the day", post, "", nil, set(sb, win+".available_week", map[string]any{"week_day": []int{1},
			"available_day_time": []map[string]any{{"begin_time": 3600, "end_time": 86400}}}), bad, param, "86399"},
		{"irregular window outside", post, "", nil, set(sb, win+".irregulary_avaliable_time", []map[string]any{{"begin_time": wxTime(now.Add(-48 * time.Hour)),
			"end_time": wxTime(now)}}), bad, tm, "irregulary_avaliable_time"},
		{"stock_send_rule missing", post, "", nil, set(sb, "stock_send_rule", nil), bad, param, "stock_send_rule"},
		{"max_coupons 0", post, "", nil, set(sb, "stock_send_rule.max_coupons", 0), bad, param, "max_coupons"},
		{"max_coupons above 1e9", post, "", nil, set(sb, "stock_send_rule.max_coupons", 1_000_000_001), bad, param, "max_coupons"},
		{"max_coupons_per_user missing", post, "", nil, set(sb, "stock_send_rule.max_coupons_per_user", nil), bad, param, "max_coupons_per_user"},
		{"max_coupons_per_user 101", post, "", nil, set(set(sb, "stock_send_rule.max_coupons", 1000), "stock_send_rule.max_coupons_per_user", 101), bad, param, "max_coupons_per_user"},
		{"per user above the budget", post, "", nil, set(set(sb, "stock_send_rule.max_coupons", 1), "stock_send_rule.max_coupons_per_user", 2), bad, param, "exceeds max_coupons"},
		{"max_coupons_by_day above the budget", post, "", nil, set(sb, "stock_send_rule.max_coupons_by_day", 11), bad, param, "max_coupons_by_day"},
		{"transferable not open", post, "", nil, set(sb, "stock_send_rule.transferable", true), bad, coupons.CodeNotOpen, "transferable"},
		{"entrance without path", post, "", nil, set(sb, "custom_entrance", map[string]any{"mini_programs_info": map[string]any{"mini_programs_appid": app, "entrance_words": "去看看"}}), bad, param, "mini_programs_info"},
		{"entrance_words 6 characters", post, "", nil, set(sb, "custom_entrance", map[string]any{"mini_programs_info": map[string]any{"mini_programs_appid": app,
			"mini_programs_path": "/p", "entrance_words": "六个字的入口"}}), bad, param, "entrance_words"},
		{"code_display_mode unknown", post, "", nil, set(sb, "custom_entrance", map[string]any{"code_display_mode": "TEXT"}), bad, param, "code_display_mode"},
		{"merchant_name 13 characters", post, "", nil, set(sb, "display_pattern_info.merchant_name", strings.Repeat("商", 13)), bad, param, "merchant_name"},
		{"background_color unknown", post, "", nil, set(sb, "display_pattern_info.background_color", "Color011"), bad, param, "background_color"},
		{"notify_appid not bound", post, "", nil, set(sb, "notify_config", map[string]any{"notify_appid": "wxnotours"}), bad, coupons.CodeAppIDNotBound, "notify_appid"},
		{"4-byte emoji", post, "", nil, set(sb, "stock_name", "券😀"), bad, coupons.CodeUnsupportedChar, "emoji"},
		{"unknown field", post, "", nil, set(sb, "max_amount", 100), bad, param, "max_amount"},
		{"malformed JSON", post, "", nil, `{"stock_name":`, bad, apigw.CodeInvalidRequest, "JSON"},
	}
	for i := range stockCases {
		stockCases[i].path = "/coupons/stocks"
	}

	uploadPath := func(id string) string { return "/coupons/stocks/" + id + "/codes" }
	codes := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("CODE%04d", i)
		}
		return out
	}
	ab := activityBody(now, []string{e.Merchant.MchID}, seedWechat)
	gift := activityBody(now, []string{e.Merchant.MchID}, seedWechat, seedAPI, seedOtherCap)
	acts := "/paygift/activities"
	use := map[string]any{"stock_id": seedWechat, "coupon_code": "SENTCODE"}
	other := []ruleCase{
		{"stock_id not digits", get, "/coupons/stocks/12ab", nil, nil, bad, param, "stock_id"},
		{"modify nothing", patch, "/coupons/stocks/" + seedWechat, nil, map[string]any{}, bad, param, "nothing to modify"},
		{"modify bad out_request_no", patch, "/coupons/stocks/" + seedWechat, nil, map[string]any{"out_request_no": "#1", "stock_name": "x"}, bad, reqNo, "out_request_no"},
		{"modify MINI_PROGRAMS without path", patch, "/coupons/stocks/" + seedWechat, nil, map[string]any{"coupon_use_rule": map[string]any{"use_method": "MINI_PROGRAMS", "mini_programs_appid": app}}, bad, param, "MINI_PROGRAMS"},
		{"modify stock_name too long", patch, "/coupons/stocks/" + seedWechat, nil, map[string]any{"stock_name": strings.Repeat("名", 22)}, bad, param, "stock_name"},
		{"modify subsidy", patch, "/coupons/stocks/" + seedWechat, nil, map[string]any{"stock_name": "x", "subsidy": true}, bad, coupons.CodeNotOpen, "subsidy"},
		{"modify notify_appid not bound", patch, "/coupons/stocks/" + seedWechat, nil, map[string]any{"notify_config": map[string]any{"notify_appid": "wxnope"}}, bad, coupons.CodeAppIDNotBound, "notify_appid"},
		{"budget with both pairs", post, "/coupons/stocks/" + seedWechat + "/budget", nil, map[string]any{"target_max_coupons": 200, "target_max_coupons_by_day": 20}, bad, param, "exactly one"},
		{"budget with no pair", post, "/coupons/stocks/" + seedWechat + "/budget", nil, map[string]any{}, bad, param, "exactly one"},
		{"budget target 0", post, "/coupons/stocks/" + seedWechat + "/budget", nil, map[string]any{"target_max_coupons": 0}, bad, param, "target_max_coupons"},
		{"budget target above 1e9", post, "/coupons/stocks/" + seedWechat + "/budget", nil, map[string]any{"target_max_coupons": 1_000_000_001}, bad, param, "target_max_coupons"},
		{"budget current unknown", post, "/coupons/stocks/1219999999/budget", nil, map[string]any{"target_max_coupons": 10}, bad, param, "current_max_coupons"},
		{"budget below uploaded codes", post, "/coupons/stocks/" + seedUpload + "/budget", nil, map[string]any{"target_max_coupons": 1}, bad, coupons.CodeStockRule, "uploaded"},
		{"daily budget above the stock", post, "/coupons/stocks/" + seedWechat + "/budget", nil, map[string]any{"target_max_coupons_by_day": 101}, bad, coupons.CodeStockRule, "max_coupons"},
		{"budget bad request number", post, "/coupons/stocks/" + seedWechat + "/budget", nil, map[string]any{"target_max_coupons": 200, "modify_budget_request_no": "a b"}, bad, reqNo, "modify_budget_request_no"},
		{"upload 0 codes", post, uploadPath(seedUpload), nil, map[string]any{"coupon_code_list": []string{}}, bad, param, "1..200"},
		{"upload 201 codes", post, uploadPath(seedNoCodes), nil, map[string]any{"coupon_code_list": codes(201)}, bad, param, "1..200"},
		{"upload a code with #", post, uploadPath(seedUpload), nil, map[string]any{"coupon_code_list": []string{"AB#1"}}, bad, param, "coupon_code_list[0]"},
		{"upload a 33-character code", post, uploadPath(seedUpload), nil, map[string]any{"coupon_code_list": []string{strings.Repeat("A", 33)}}, bad, param, "1..32"},
		{"upload duplicates", post, uploadPath(seedUpload), nil, map[string]any{"coupon_code_list": []string{"A1", "A1"}}, bad, param, "duplicate"},
		{"upload to a WECHATPAY_MODE stock", post, uploadPath(seedWechat), nil, map[string]any{"coupon_code_list": []string{"A1"}}, bad, coupons.CodeStockRule, "MERCHANT_UPLOAD"},
		{"upload beyond the stock size", post, uploadPath(seedUpload), nil, map[string]any{"coupon_code_list": []string{"A1", "A2"}}, bad, coupons.CodeStockRule, "stock size"},
		{"upload bad request number", post, uploadPath(seedUpload), nil, map[string]any{"coupon_code_list": []string{"A1"}, "upload_request_no": "x/y"}, bad, reqNo, "upload_request_no"},
		{"list codes limit 0", get, uploadPath(seedUpload), map[string]string{"limit": "0"}, nil, bad, param, "limit"},
		{"list codes limit 51", get, uploadPath(seedUpload), map[string]string{"limit": "51"}, nil, bad, param, "limit"},
		{"list codes offset -1", get, uploadPath(seedUpload), map[string]string{"offset": "-1"}, nil, bad, param, "offset"},
		{"list codes bad status", get, uploadPath(seedUpload), map[string]string{"status": "USED"}, nil, bad, param, "status"},
		{"list codes unbound appid", get, uploadPath(seedUpload), map[string]string{"appid": "wxnope"}, nil, bad, coupons.CodeAppIDNotBound, "appid"},
		{"code detail bad code", get, uploadPath(seedUpload) + "/A%231", nil, nil, bad, param, "coupon_code"},
		{"delete code bad request number", del, uploadPath(seedUpload) + "/A1", map[string]string{"delete_request_no": "a b"}, nil, bad, reqNo, "delete_request_no"},

		{"use without stock_id", post, "/coupons/use", nil, map[string]any{"coupon_code": "SENTCODE"}, bad, param, "stock_id"},
		{"use bad coupon_code", post, "/coupons/use", nil, set(use, "coupon_code", "A#B"), bad, param, "coupon_code"},
		{"use_request_no 33 characters", post, "/coupons/use", nil, set(use, "use_request_no", strings.Repeat("1", 33)), bad, reqNo, "use_request_no"},
		{"use_time not RFC 3339", post, "/coupons/use", nil, set(use, "use_time", "2026/01/01"), bad, tm, "use_time"},
		{"use_time in the future", post, "/coupons/use", nil, set(use, "use_time", wxTime(now.Add(time.Hour))), bad, tm, "future"},
		{"use with an unbound appid", post, "/coupons/use", nil, set(use, "appid", "wxnope"), bad, coupons.CodeAppIDNotBound, "appid"},
		{"use with a short out_trade_no", post, "/coupons/use", nil, set(use, "out_trade_no", "A1"), bad, param, "out_trade_no"},
		{"use with a non-digit transaction_id", post, "/coupons/use", nil, set(use, "transaction_id", "42x"), bad, param, "transaction_id"},
		{"use a used coupon", post, "/coupons/use", nil, set(use, "coupon_code", "USEDCODE"), http.StatusConflict, state, "USED"},
		{"use another user's coupon", post, "/coupons/use", nil, set(use, "openid", "oSomeoneElse"), http.StatusConflict, state, "another user"},
		{"send without openid", post, "/coupons/send", nil, map[string]any{"stock_id": seedWechat}, bad, param, "openid"},
		{"send MERCHANT_API without code", post, "/coupons/send", nil, map[string]any{"stock_id": seedAPI, "openid": "oA"}, bad, coupons.CodeStockRule, "coupon_code is required"},
		{"send WECHATPAY_MODE with a code", post, "/coupons/send", nil, map[string]any{"stock_id": seedWechat, "openid": "oA", "coupon_code": "MINE1"}, bad, coupons.CodeStockRule, "must be empty"},
		{"send with an unbound appid", post, "/coupons/send", nil, map[string]any{"stock_id": seedWechat, "openid": "oA", "appid": "wxnope"}, bad, coupons.CodeAppIDNotBound, "appid"},
		{"associate bad out_trade_no", post, "/coupons/associate", nil, set(use, "out_trade_no", "ORDER 1"), bad, param, "out_trade_no"},
		{"associate a deactivated coupon", post, "/coupons/associate", nil, map[string]any{"stock_id": seedWechat, "coupon_code": "DEACODE", "out_trade_no": "ORDER00002"}, http.StatusConflict, state, "DEACTIVATED"},
		{"associate a coupon linked elsewhere", post, "/coupons/associate", nil, map[string]any{"stock_id": seedWechat, "coupon_code": "SENTCODE", "out_trade_no": "ORDER00002"}, http.StatusConflict, state, "ORDER00001"},
		{"disassociate another order", post, "/coupons/disassociate", nil, map[string]any{"stock_id": seedWechat, "coupon_code": "SENTCODE", "out_trade_no": "ORDER00002"}, http.StatusConflict, state, "not associated"},
		{"return an unused coupon", post, "/coupons/return", nil, use, http.StatusConflict, state, "needs USED"},
		{"return bad request number", post, "/coupons/return", nil, set(use, "return_request_no", "a|b c"), bad, reqNo, "return_request_no"},
		{"deactivate a used coupon", post, "/coupons/deactivate", nil, set(use, "coupon_code", "USEDCODE"), http.StatusConflict, state, "needs SENDED"},
		{"deactivate_reason 65 characters", post, "/coupons/deactivate", nil, set(use, "deactivate_reason", strings.Repeat("因", 65)), bad, param, "deactivate_reason"},
		{"filter limit 51", get, "/coupons/users/oOwner/coupons", map[string]string{"limit": "51"}, nil, bad, param, "limit"},
		{"filter bad coupon_state", get, "/coupons/users/oOwner/coupons", map[string]string{"coupon_state": "GONE"}, nil, bad, param, "coupon_state"},
		{"filter creator_merchant not digits", get, "/coupons/users/oOwner/coupons", map[string]string{"creator_merchant": "me"}, nil, bad, param, "creator_merchant"},
		{"filter unbound appid", get, "/coupons/users/oOwner/coupons", map[string]string{"appid": "wxnope"}, nil, bad, coupons.CodeAppIDNotBound, "appid"},
		{"filter bad openid", get, "/coupons/users/o%25x/coupons", nil, nil, bad, param, "openid"},
		{"user coupon unbound appid", get, "/coupons/users/oOwner/coupons/SENTCODE", map[string]string{"appid": "wxnope"}, nil, bad, coupons.CodeAppIDNotBound, "appid"},
		{"callback over http", http.MethodPut, "/coupons/callback", nil, map[string]any{"notify_url": "http://merchant.example.com/notify"}, bad, param, "https"},
		{"callback with a query", http.MethodPut, "/coupons/callback", nil, map[string]any{"notify_url": "https://merchant.example.com/notify?x=1"}, bad, param, "query"},
		{"callback mchid not digits", http.MethodPut, "/coupons/callback", nil, map[string]any{"mchid": "mch-1"}, bad, param, "mchid"},
		{"get callback mchid not digits", get, "/coupons/callback", map[string]string{"mchid": "x"}, nil, bad, param, "mchid"},
		{"plugin sign without coupons", post, "/coupons/plugin-sign", nil, map[string]any{"send_coupon_params": []any{}}, bad, param, "1..10"},
		{"plugin sign 11 coupons", post, "/coupons/plugin-sign", nil, map[string]any{"send_coupon_params": func() []map[string]any {
			var p []map[string]any
			for i := 0; i < 11; i++ {
				p = append(p, map[string]any{"stock_id": seedWechat})
			}
			return p
		}()}, bad, param, "1..10"},
		{"plugin sign bad stock_id", post, "/coupons/plugin-sign", nil, map[string]any{"send_coupon_params": []map[string]any{{"stock_id": "x1"}}}, bad, param, "stock_id"},
		{"plugin sign bad out_request_no", post, "/coupons/plugin-sign", nil, map[string]any{"send_coupon_params": []map[string]any{{"stock_id": seedWechat, "out_request_no": "a b"}}}, bad, reqNo, "out_request_no"},
		{"plugin sign bad customize_send_time", post, "/coupons/plugin-sign", nil, map[string]any{"send_coupon_params": []map[string]any{{"stock_id": seedWechat, "customize_send_time": "tomorrow"}}}, bad, tm, "customize_send_time"},
		{"plugin sign bad coupon_code", post, "/coupons/plugin-sign", nil, map[string]any{"send_coupon_params": []map[string]any{{"stock_id": seedAPI, "coupon_code": "A#"}}}, bad, param, "coupon_code"},
		{"plugin sign bad create_coupon_merchant", post, "/coupons/plugin-sign", nil, map[string]any{"send_coupon_params": []map[string]any{{"stock_id": seedWechat, "create_coupon_merchant": "m1"}}}, bad, param, "create_coupon_merchant"},

		{"activity_name 11 characters", post, acts, nil, set(ab, "activity_base_info.activity_name", strings.Repeat("活", 11)), bad, param, "activity_name"},
		{"activity_second_title 10 characters", post, acts, nil, set(ab, "activity_base_info.activity_second_title", strings.Repeat("副", 10)), bad, param, "activity_second_title"},
		{"merchant_logo_url 9 characters", post, acts, nil, set(ab, "activity_base_info.merchant_logo_url", "https://x"), bad, param, "merchant_logo_url"},
		{"activity background_color unknown", post, acts, nil, set(ab, "activity_base_info.background_color", "COLOR999"), bad, param, "background_color"},
		{"activity out_request_no bad", post, acts, nil, set(ab, "activity_base_info.out_request_no", "a b"), bad, reqNo, "out_request_no"},
		{"activity begin after end", post, acts, nil, set(ab, "activity_base_info.begin_time", wxTime(now.Add(8*24*time.Hour))), bad, tm, "before"},
		{"activity window of 31536000 s", post, acts, nil, set(set(ab, "activity_base_info.begin_time", wxTime(now)),
			"activity_base_info.end_time", wxTime(now.Add(31_536_000*time.Second))), bad, tm, "31536000"},
		{"activity already over", post, acts, nil, set(set(ab, "activity_base_info.begin_time", wxTime(now.Add(-48*time.Hour))),
			"activity_base_info.end_time", wxTime(now.Add(-time.Hour))), bad, tm, "past"},
		{"activity end not RFC 3339", post, acts, nil, set(ab, "activity_base_info.end_time", "next week"), bad, tm, "end_time"},
		{"available_time outside the activity", post, acts, nil, set(ab, "activity_base_info.available_periods", map[string]any{"available_time": []map[string]any{{
			"begin_time": wxTime(now.Add(-48 * time.Hour)), "end_time": wxTime(now.Add(time.Hour))}}}), bad, tm, "available_time"},
		{"available_day_time not HHmmss", post, acts, nil, set(ab, "activity_base_info.available_periods", map[string]any{"available_day_time": []map[string]any{{
			"begin_day_time": "9:00", "end_day_time": "180000"}}}), bad, tm, "HHmmss"},
		{"delivery_purpose unknown", post, acts, nil, set(ab, "activity_base_info.delivery_purpose", "ONLINE"), bad, param, "delivery_purpose"},
		{"JUMP_MINI_APP without path", post, acts, nil, set(set(ab, "activity_base_info.delivery_purpose", "JUMP_MINI_APP"),
			"activity_base_info.mini_programs_appid", app), bad, param, "JUMP_MINI_APP"},
		{"threshold 0 fen", post, acts, nil, set(ab, "award_send_rule.transaction_amount_minimum", 0), bad, param, "transaction_amount_minimum"},
		{"send_content unknown", post, acts, nil, set(ab, "award_send_rule.send_content", "BAG"), bad, param, "send_content"},
		{"single coupon with two awards", post, acts, nil, set(activityBody(now, []string{e.Merchant.MchID}, seedWechat, seedAPI), "award_send_rule.send_content", "SINGLE_COUPON"), bad, coupons.CodeRuleMismatch, "exactly 1"},
		{"gift package of 2", post, acts, nil, activityBody(now, []string{e.Merchant.MchID}, seedWechat, seedAPI), bad, coupons.CodeRuleMismatch, "3-5"},
		{"gift package of 6", post, acts, nil, activityBody(now, []string{e.Merchant.MchID}, "1220000001", "1220000002", "1220000003", "1220000004", "1220000005", "1220000006"), bad, coupons.CodeRuleMismatch, "3-5"},
		{"award_type not BUSIFAVOR", post, acts, nil, set(ab, "award_send_rule.award_type", "CASH"), bad, param, "award_type"},
		{"award without original image", post, acts, nil, set(ab, "award_send_rule.award_list", []map[string]any{{"stock_id": seedWechat}}), bad, param, "original_image_url"},
		{"gift award without thumbnail", post, acts, nil, set(gift, "award_send_rule.award_list", []map[string]any{{"stock_id": seedWechat, "original_image_url": "https://x/a.png"},
			{"stock_id": seedAPI, "original_image_url": "https://x/b.png", "thumbnail_url": "t"}, {"stock_id": seedOtherCap, "original_image_url": "https://x/c.png", "thumbnail_url": "t"}}), bad, param, "thumbnail_url"},
		{"duplicate award stock", post, acts, nil, activityBody(now, []string{e.Merchant.MchID}, seedWechat, seedWechat, seedAPI), bad, param, "duplicate"},
		{"merchant_option in-service", post, acts, nil, set(ab, "award_send_rule.merchant_option", "IN_SEVICE_COUPON_MERCHANT"), bad, param, "MANUAL_INPUT_MERCHANT"},
		{"no issuing merchant", post, acts, nil, set(ab, "award_send_rule.merchant_id_list", []string{}), bad, param, "merchant_id_list"},
		{"issuing merchant not digits", post, acts, nil, set(ab, "award_send_rule.merchant_id_list", []string{"mch1"}), bad, param, "merchant_id_list[0]"},
		{"issuing merchant twice", post, acts, nil, set(ab, "award_send_rule.merchant_id_list", []string{"1900000001", "1900000001"}), bad, param, "duplicate"},
		{"members without appid", post, acts, nil, set(ab, "advanced_setting.delivery_user_category", "DELIVERY_MEMBER_PERSON"), bad, param, "merchant_member_appid"},
		{"payment_mode not open", post, acts, nil, set(ab, "advanced_setting.payment_mode", map[string]any{"payment_scene_list": []string{"APP_SCENE"}}), bad, coupons.CodeNotOpen, "payment_mode"},
		{"501 goods tags", post, acts, nil, set(ab, "advanced_setting.goods_tags", codes(501)), bad, param, "500"},
		{"award stock ends before the activity", post, acts, nil, activityBody(now, []string{e.Merchant.MchID}, seedShort), bad, coupons.CodeAwardStock, "does not cover"},
		{"award stock without uploaded codes", post, acts, nil, activityBody(now, []string{e.Merchant.MchID}, seedNoCodes), bad, coupons.CodeAwardStock, "upload its codes"},
		{"gift package stocks differ", post, acts, nil, gift, bad, coupons.CodeAwardStock, "share max_coupons"},
		{"list limit 0", get, acts, map[string]string{"limit": "0"}, nil, bad, param, "limit"},
		{"list limit 101", get, acts, map[string]string{"limit": "101"}, nil, bad, param, "limit"},
		{"list offset -1", get, acts, map[string]string{"offset": "-1"}, nil, bad, param, "offset"},
		{"list bad status", get, acts, map[string]string{"activity_status": "RUNNING"}, nil, bad, param, "activity_status"},
		{"list bad award_type", get, acts, map[string]string{"award_type": "CASH"}, nil, bad, param, "award_type"},
		{"list activity_name 11 characters", get, acts, map[string]string{"activity_name": strings.Repeat("活", 11)}, nil, bad, param, "activity_name"},
		{"activity id not digits", get, acts + "/act1", nil, nil, bad, param, "activity_id"},
		{"goods limit 101", get, acts + "/1000000001/goods", map[string]string{"limit": "101"}, nil, bad, param, "limit"},
		{"merchants limit 101", get, acts + "/1000000001/merchants", map[string]string{"limit": "101"}, nil, bad, param, "limit"},
		{"terminate bad id", post, acts + "/x/terminate", nil, nil, bad, param, "activity_id"},
		{"add no merchants", post, acts + "/1000000001/merchants/add", nil, map[string]any{"merchant_id_list": []string{}}, bad, param, "merchant_id_list"},
		{"add merchant twice", post, acts + "/1000000001/merchants/add", nil, map[string]any{"merchant_id_list": []string{"1900000001", "1900000001"}}, bad, param, "duplicate"},
		{"add bad add_request_no", post, acts + "/1000000001/merchants/add", nil, map[string]any{"merchant_id_list": []string{"1900000001"}, "add_request_no": "a b"}, bad, reqNo, "add_request_no"},
		{"add with delete_request_no", post, acts + "/1000000001/merchants/add", nil, map[string]any{"merchant_id_list": []string{"1900000001"}, "delete_request_no": "D1"}, bad, param, "delete_request_no"},
		{"delete bad delete_request_no", post, acts + "/1000000001/merchants/delete", nil, map[string]any{"merchant_id_list": []string{"1900000001"}, "delete_request_no": "a b"}, bad, reqNo, "delete_request_no"},
		{"delete merchant not digits", post, acts + "/1000000001/merchants/delete", nil, map[string]any{"merchant_id_list": []string{"x"}}, bad, param, "merchant_id_list[0]"},
	}
	for _, tc := range append(stockCases, other...) {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.sim.Requests())
			a := e.do(t, tc.method, tc.path, tc.query, tc.body)
			var body apigw.ErrorBody
			_ = lambdatest.DecodeStrict(a.body, &body)
			if a.status != tc.status || body.Code != tc.code || !strings.Contains(body.Message, tc.msg) {
				t.Fatalf("%s %s %v: got %d %s, want %d %s mentioning %q", tc.method, tc.path, tc.body, a.status, a.body, tc.status, tc.code, tc.msg)
			}
			if n := len(e.sim.Requests()) - before; n != 0 {
				t.Fatalf("%s: %d WeChat Pay requests for input rejected locally, want 0", tc.name, n)
			}
		})
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Fatalf("the simulator saw %d requests in total, want 0", n)
	}
}
