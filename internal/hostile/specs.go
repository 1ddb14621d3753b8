package hostile

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// Spec says how to address one route with valid values, so that exactly one
// part of a request at a time is hostile.
type Spec struct {
	// Params are valid path parameters addressing a fixture.
	Params map[string]string
	// Query lists the query parameters the route reads.
	Query []string
	// QueryLenient: the route reads its query flags as "true/1 or anything
	// else is false" (payscore's refresh and live), so a hostile value is
	// harmless and answered like no value.
	QueryLenient bool
	// IgnoresBody: the route reads no body (GETs, and a few POST/DELETE
	// whose parameters are all in the path or query). A body-level input is
	// then harmless: the answer must be the same as without a body.
	IgnoresBody bool
	// Template is a valid body; Fields name its fields (dotted paths, array
	// indices as numbers) by kind.
	Template any
	Fields   map[string]Kind
	// Fresh are template fields (business numbers) given a unique suffix
	// per case, so that a hostile case a handler wrongly accepts cannot make
	// the later cases of the route conflict with it instead of meeting
	// their own hostile value.
	Fresh []string
	// Valid maps a parameter ("{name}", "?name", ".field") to the hostile
	// table inputs that are valid values of it (e.g. "-1" is a valid openid:
	// [0-9A-Za-z_-]). The route then does its documented thing for a valid
	// but unknown value: any answer but a 5xx, effects allowed.
	Valid map[string][]string
	// Extra are route-specific hostile bodies (e.g. amounts whose sum
	// overflows int64).
	Extra []Extra
	// Harmless maps an input name to the route's documented non-error
	// answer for it (e.g. JSON null where the body is optional).
	Harmless map[string]Harmless
	// Control is the status of the template itself, sent after every hostile
	// case: it proves the template was valid, so the rejections were the
	// hostile values' doing. 0 skips it (a harmless case already does it).
	Control int
}

// Extra is a route-specific hostile body.
type Extra struct {
	Name string
	Body any
	Why  string
}

// Harmless is the documented answer to an input that is not actually
// hostile for a route.
type Harmless struct {
	Status int
	// Statuses, when set, are the acceptable statuses instead of Status.
	Statuses []int
	Why      string
}

// Accepts reports whether status is the documented answer.
func (h Harmless) Accepts(status int) bool {
	if len(h.Statuses) == 0 {
		return status == h.Status
	}
	for _, s := range h.Statuses {
		if s == status {
			return true
		}
	}
	return false
}

// defaultParam is the value of a path parameter no spec names.
const defaultParam = "HOSTILE000001"

// SpecFor is the route's spec, or a default one: every path parameter set
// to defaultParam, GETs ignoring their body.
func (w *World) SpecFor(rt apigw.Route) Spec {
	if s, ok := w.Specs()[rt.Key()]; ok {
		if s.Params == nil {
			s.Params = map[string]string{}
		}
		return s
	}
	s := Spec{Params: map[string]string{}, IgnoresBody: rt.Method == http.MethodGet}
	for _, name := range PathParams(rt.Path) {
		s.Params[name] = defaultParam
	}
	return s
}

// PathParams lists a route template's {name} segments in order.
func PathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

// nullOptional is the harmless answer to JSON null where the body is
// optional: null decodes to the empty request.
func nullOptional(status int, what string) map[string]Harmless {
	return map[string]Harmless{"body/null": {Status: status, Why: "the body is optional and JSON null is the empty request: " + what}}
}

func valid(s Spec, param string, inputs []string) Spec {
	if s.Valid == nil {
		s.Valid = map[string][]string{}
	}
	s.Valid[param] = append(s.Valid[param], inputs...)
	return s
}

// Specs are the route specs over the world's fixtures (only the functions
// whose fixtures were prepared have meaningful ones).
func (w *World) Specs() map[string]Spec {
	f, m := w.F, w.Stack.Merchant
	now := time.Now()
	get := func(params map[string]string, query ...string) Spec {
		return Spec{Params: params, Query: query, IgnoresBody: true}
	}
	p := func(kv ...string) map[string]string {
		out := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	coupon := func(code string, extra ...any) map[string]any {
		out := map[string]any{"stock_id": f.CouponStock, "coupon_code": code}
		for i := 0; i+1 < len(extra); i += 2 {
			out[extra[i].(string)] = extra[i+1]
		}
		return out
	}
	couponFields := func(more map[string]Kind) map[string]Kind {
		out := map[string]Kind{"stock_id": KindID, "coupon_code": KindID}
		for k, v := range more {
			out[k] = v
		}
		return out
	}
	ps := PayScoreComplete(now)
	// Values of the hostile table that are valid for some parameters.
	// An openid is [0-9A-Za-z_-] (WeChat's own are 28 of them): "-1" and
	// 38 digits are well-formed, merely unknown.
	validOpenID := map[string][]string{"{openid}": {"path/negative", "path/overflow-digits"}}
	// A coupon code is 1..32 of 0-9 a-z A-Z, space and -_\/=| (B5): a
	// blank and "-1" are well-formed codes.
	validCode := []string{"path/space", "path/negative", "field/id-empty"}
	// Digit-string ids (merchant, stock) are 1..32 digits: 20 digits are
	// well-formed.
	validDigits := []string{"query/overflow"}
	// Request numbers are 1..128 of [0-9A-Za-z|_*-].
	validRequestNo := []string{"query/word", "query/negative", "query/overflow"}
	s := map[string]Spec{
		// notify: every body is unsigned, every answer a 4xx.
		"POST /notify/{channel}": {Params: p("channel", "payments")},

		// payments
		"GET /payments/health": get(nil),
		"POST /payments/orders": {
			Template: map[string]any{"trade_type": "JSAPI", "out_trade_no": "HOSTILENEW01", "description": "恶意输入测试", "amount": map[string]any{"total": 100},
				"payer": map[string]any{"openid": "oHostilePayer"}, "attach": "cart=42", "time_expire": ledger.WechatTime(now.Add(2 * time.Hour))},
			Fields: map[string]Kind{"out_trade_no": KindID, "description": KindText, "amount.total": KindAmount, "payer.openid": KindID,
				"attach": KindText, "time_expire": KindTime},
			Fresh:   []string{"out_trade_no"},
			Control: http.StatusOK,
		},
		"GET /payments/orders/{out_trade_no}": get(p("out_trade_no", f.UnpaidOrder), "live"),
		"POST /payments/orders/{out_trade_no}/close": {Params: p("out_trade_no", f.UnpaidOrder),
			Harmless: nullOptional(http.StatusOK, "the unpaid order is closed")},
		"POST /payments/refunds": {
			Template: map[string]any{"out_trade_no": f.PaidOrder, "out_refund_no": "HOSTILEREF02", "refund": 1, "reason": "退货"},
			Fields:   map[string]Kind{"out_trade_no": KindID, "out_refund_no": KindID, "refund": KindAmount, "reason": KindText},
			Fresh:    []string{"out_refund_no"},
			Extra: []Extra{{Name: "extra/refund-sum-overflows", Why: "refund + the 1 fen already refunded overflows int64",
				Body: map[string]any{"out_trade_no": f.PaidOrder, "out_refund_no": "HOSTILEREF03", "refund": int64(1<<63 - 1)}}},
			Control: http.StatusOK,
		},
		"GET /payments/refunds/{out_refund_no}": get(p("out_refund_no", f.Refund), "live"),

		// payscore
		"GET /payscore/health": get(nil),
		"POST /payscore/authorizations": {
			Template: map[string]any{"authorization_code": "HOSTILECODE9", "openid": "oHostileNewUser"},
			Fields:   map[string]Kind{"authorization_code": KindID, "openid": KindID},
			Fresh:    []string{"authorization_code"},
			Harmless: nullOptional(http.StatusCreated, "a generated code is pre-authorized"),
			Control:  http.StatusCreated,
		},
		"GET /payscore/authorizations/{authorization_code}": {Params: p("authorization_code", f.Code), Query: []string{"refresh"},
			QueryLenient: true, IgnoresBody: true},
		"DELETE /payscore/authorizations/{authorization_code}": {Params: p("authorization_code", f.ActiveCode),
			Template: map[string]any{"reason": "不再使用"}, Fields: map[string]Kind{"reason": KindText},
			Harmless: nullOptional(http.StatusOK, "the code's authorization is terminated with the default reason")},
		"GET /payscore/users/{openid}/authorization": {Params: p("openid", f.RevokedUser), Query: []string{"refresh"},
			QueryLenient: true, IgnoresBody: true, Valid: validOpenID},
		"DELETE /payscore/users/{openid}/authorization": {Params: p("openid", f.TerminateUser), Valid: validOpenID,
			Template: map[string]any{"reason": "不再使用"}, Fields: map[string]Kind{"reason": KindText},
			Harmless: nullOptional(http.StatusOK, "the user's authorization is terminated with the default reason")},
		"POST /payscore/orders": {
			Template: PayScoreCreate("HOSTILEPSNEW1", f.AuthorizedUser, now),
			Fields: map[string]Kind{"out_order_no": KindID, "openid": KindID, "service_introduction": KindText, "risk_fund.amount": KindAmount,
				"risk_fund.description": KindText, "time_range.start_time": KindTime, "location.start_location": KindText},
			Fresh:   []string{"out_order_no"},
			Control: http.StatusCreated,
		},
		"GET /payscore/orders/{out_order_no}": {Params: p("out_order_no", f.GetOrder), Query: []string{"live"}, QueryLenient: true, IgnoresBody: true},
		"POST /payscore/orders/{out_order_no}/complete": {Params: p("out_order_no", f.DoingOrders[0]),
			Template: ps,
			Fields: map[string]Kind{"post_payments.0.amount": KindAmount, "post_payments.0.count": KindAmount, "total_amount": KindAmount,
				"post_payments.0.name": KindText, "post_payments.0.description": KindText, "time_range.end_time": KindTime},
			Extra: []Extra{{Name: "extra/payments-sum-overflows", Why: "Σpost_payments wraps around int64 to the claimed total",
				Body: map[string]any{"post_payments": []any{map[string]any{"name": "租借费", "amount": int64(1<<63 - 1), "count": 1},
					map[string]any{"name": "超时费", "amount": 2, "count": 1}}, "total_amount": int64(-1<<63 + 1),
					"time_range": ps["time_range"]}},
				{Name: "extra/discount-overflows", Why: "payments − discounts wraps around int64 to the claimed total",
					Body: map[string]any{"post_payments": []any{map[string]any{"name": "租借费", "amount": 400, "count": 1}},
						"post_discounts": []any{map[string]any{"name": "立减", "amount": int64(1<<63 - 1)}}, "total_amount": int64(-1<<63 + 401),
						"time_range": ps["time_range"]}}},
			Control: http.StatusOK,
		},
		"POST /payscore/orders/{out_order_no}/modify": {Params: p("out_order_no", f.PayingOrders[0]),
			Template: map[string]any{"post_payments": []any{map[string]any{"name": "租借费", "amount": 300, "count": 1}}, "total_amount": 300, "reason": "价格调整"},
			Fields:   map[string]Kind{"post_payments.0.amount": KindAmount, "total_amount": KindAmount, "reason": KindText, "post_payments.0.name": KindText},
			Control:  http.StatusOK,
		},
		"POST /payscore/orders/{out_order_no}/cancel": {Params: p("out_order_no", f.DoingOrders[1]),
			Template: map[string]any{"reason": "用户取消"}, Fields: map[string]Kind{"reason": KindText}, Control: http.StatusOK},
		"POST /payscore/orders/{out_order_no}/sync": {Params: p("out_order_no", f.PayingOrders[1]),
			Template: map[string]any{"type": "Order_Paid", "detail": map[string]any{"paid_time": ledger.PayScoreTime(now.Add(-time.Minute))}},
			Fields:   map[string]Kind{"type": KindID, "detail.paid_time": KindTime}, Control: http.StatusOK},

		// coupons
		"GET /coupons/health": get(nil),
		"POST /coupons/stocks": {
			Template: func() map[string]any {
				b := CouponStock("WECHATPAY_MODE", m.AppID, now)
				b["out_request_no"] = "HOSTILESTOCK1"
				return b
			}(),
			Fields: map[string]Kind{"stock_name": KindText, "comment": KindText, "goods_name": KindText, "out_request_no": KindID,
				"coupon_use_rule.fixed_normal_coupon.discount_amount": KindAmount, "coupon_use_rule.fixed_normal_coupon.transaction_minimum": KindAmount,
				"stock_send_rule.max_coupons": KindAmount, "stock_send_rule.max_coupons_per_user": KindAmount,
				"coupon_use_rule.coupon_available_time.available_begin_time": KindTime, "coupon_use_rule.coupon_available_time.available_end_time": KindTime,
				"notify_config.notify_appid": KindID},
			Fresh:   []string{"out_request_no"},
			Control: http.StatusOK,
		},
		"GET /coupons/stocks/{stock_id}": get(p("stock_id", f.CouponStock)),
		"PATCH /coupons/stocks/{stock_id}": {Params: p("stock_id", f.CouponStock),
			Template: map[string]any{"stock_name": "改名测试券", "comment": "改名", "out_request_no": "HOSTILEMODIFY1"},
			Fields:   map[string]Kind{"stock_name": KindText, "comment": KindText, "out_request_no": KindID},
			Fresh:    []string{"out_request_no"}, Control: http.StatusOK},
		"POST /coupons/stocks/{stock_id}/budget": {Params: p("stock_id", f.CouponStock),
			Template: map[string]any{"target_max_coupons": 150, "current_max_coupons": 100, "modify_budget_request_no": "HOSTILEBUDGET1"},
			Fields:   map[string]Kind{"target_max_coupons": KindAmount, "current_max_coupons": KindAmount, "modify_budget_request_no": KindID},
			Fresh:    []string{"modify_budget_request_no"}, Control: http.StatusOK},
		"POST /coupons/stocks/{stock_id}/codes": {Params: p("stock_id", f.UploadStock),
			Template: map[string]any{"coupon_code_list": []any{"HOSTILECODE03"}, "upload_request_no": "HOSTILEUPLOAD1"},
			Fields:   map[string]Kind{"coupon_code_list.0": KindID, "upload_request_no": KindID},
			Fresh:    []string{"upload_request_no"}, Valid: map[string][]string{".coupon_code_list.0": validCode}, Control: http.StatusOK},
		"GET /coupons/stocks/{stock_id}/codes": get(p("stock_id", f.UploadStock), "offset", "limit", "status", "appid"),
		"GET /coupons/stocks/{stock_id}/codes/{coupon_code}": valid(get(p("stock_id", f.UploadStock, "coupon_code", f.UploadedCode), "appid"),
			"{coupon_code}", validCode),
		"DELETE /coupons/stocks/{stock_id}/codes/{coupon_code}": valid(valid(get(p("stock_id", f.UploadStock, "coupon_code", f.DeletableCode),
			"delete_request_no"), "{coupon_code}", validCode), "?delete_request_no", validRequestNo),
		"POST /coupons/use": {
			Template: coupon(f.UnusedCoupons[0], "openid", f.CouponUser, "use_request_no", "HOSTILEUSE1", "out_trade_no", "HOSTILETRADE02",
				"use_time", ledger.WechatTime(now.Add(-time.Minute))),
			Fields: couponFields(map[string]Kind{"openid": KindID, "use_request_no": KindID, "out_trade_no": KindID, "use_time": KindTime}),
			Fresh:  []string{"use_request_no"}, Valid: map[string][]string{".coupon_code": validCode},
			Control: http.StatusOK,
		},
		"POST /coupons/send": {
			Template: map[string]any{"stock_id": f.CouponStock, "openid": f.CouponUser, "out_request_no": "HOSTILESEND1"},
			Fields:   map[string]Kind{"stock_id": KindID, "openid": KindID, "out_request_no": KindID},
			Fresh:    []string{"out_request_no"}, Control: http.StatusOK},
		"POST /coupons/associate": {
			Template: coupon(f.UnusedCoupons[1], "out_trade_no", "HOSTILETRADE03", "out_request_no", "HOSTILEASSOC1"),
			Fields:   couponFields(map[string]Kind{"out_trade_no": KindID, "out_request_no": KindID}),
			Fresh:    []string{"out_request_no"}, Valid: map[string][]string{".coupon_code": validCode}, Control: http.StatusOK},
		"POST /coupons/disassociate": {
			Template: coupon(f.AssociatedCoupon, "out_trade_no", f.AssociatedTrade, "out_request_no", "HOSTILEDISASSOC1"),
			Fields:   couponFields(map[string]Kind{"out_trade_no": KindID, "out_request_no": KindID}),
			Fresh:    []string{"out_request_no"}, Valid: map[string][]string{".coupon_code": validCode}, Control: http.StatusOK},
		"POST /coupons/return": {
			Template: coupon(f.UsedCoupon, "return_request_no", "HOSTILERETURN1"),
			Fields:   couponFields(map[string]Kind{"return_request_no": KindID}),
			Fresh:    []string{"return_request_no"}, Valid: map[string][]string{".coupon_code": validCode}, Control: http.StatusOK},
		"POST /coupons/deactivate": {
			Template: coupon(f.UnusedCoupons[2], "deactivate_request_no", "HOSTILEDEACT1", "deactivate_reason", "活动取消"),
			Fields:   couponFields(map[string]Kind{"deactivate_request_no": KindID, "deactivate_reason": KindText}),
			Fresh:    []string{"deactivate_request_no"}, Valid: map[string][]string{".coupon_code": validCode}, Control: http.StatusOK},
		"GET /coupons/users/{openid}/coupons": {Params: p("openid", f.CouponUser), IgnoresBody: true, Query: []string{"offset", "limit",
			"coupon_state", "stock_id", "creator_merchant", "belong_merchant", "sender_merchant", "appid"},
			Valid: map[string][]string{"{openid}": validOpenID["{openid}"], "?stock_id": validDigits, "?creator_merchant": validDigits,
				"?belong_merchant": validDigits, "?sender_merchant": validDigits}},
		"GET /coupons/users/{openid}/coupons/{coupon_code}": {Params: p("openid", f.CouponUser, "coupon_code", f.UnusedCoupons[0]),
			Query: []string{"appid"}, IgnoresBody: true, Valid: map[string][]string{"{openid}": validOpenID["{openid}"], "{coupon_code}": validCode}},
		"PUT /coupons/callback": {Template: map[string]any{"mchid": m.MchID}, Fields: map[string]Kind{"mchid": KindID},
			Harmless: nullOptional(http.StatusOK, "the callback is set to the notify function's coupons channel"), Control: http.StatusOK},
		"GET /coupons/callback": valid(get(nil, "mchid"), "?mchid", validDigits),
		"POST /coupons/plugin-sign": {
			Template: map[string]any{"send_coupon_params": []any{map[string]any{"stock_id": f.CouponStock, "out_request_no": "HOSTILEPLUGIN1"}},
				"openid": f.CouponUser},
			Fields: map[string]Kind{"send_coupon_params.0.stock_id": KindID, "send_coupon_params.0.out_request_no": KindID, "openid": KindID},
			Fresh:  []string{"send_coupon_params.0.out_request_no"}, Control: http.StatusOK},
		"POST /paygift/activities": {
			Template: func() map[string]any {
				b := PayGiftActivity(f.CouponStock, m.MchID, now)
				b["activity_base_info"].(map[string]any)["out_request_no"] = "HOSTILEACT1"
				b["activity_base_info"].(map[string]any)["activity_second_title"] = "控制组"
				return b
			}(),
			Fields: map[string]Kind{"activity_base_info.activity_name": KindText, "activity_base_info.activity_second_title": KindText,
				"activity_base_info.merchant_logo_url": KindID, "activity_base_info.begin_time": KindTime, "activity_base_info.end_time": KindTime,
				"award_send_rule.transaction_amount_minimum": KindAmount, "award_send_rule.award_list.0.stock_id": KindID,
				"award_send_rule.merchant_id_list.0": KindID, "activity_base_info.out_request_no": KindID},
			Fresh:   []string{"activity_base_info.out_request_no"},
			Control: http.StatusOK,
		},
		"GET /paygift/activities": valid(get(nil, "offset", "limit", "activity_name", "activity_status", "award_type"),
			"?activity_name", []string{"query/word", "query/negative", "query/float", "query/sql", "query/nul"}),
		"GET /paygift/activities/{activity_id}":            get(p("activity_id", f.Activity)),
		"GET /paygift/activities/{activity_id}/goods":      get(p("activity_id", f.Activity), "offset", "limit"),
		"GET /paygift/activities/{activity_id}/merchants":  get(p("activity_id", f.Activity), "offset", "limit"),
		"POST /paygift/activities/{activity_id}/terminate": {Params: p("activity_id", f.TerminateActivity), IgnoresBody: true},
		"POST /paygift/activities/{activity_id}/merchants/add": {Params: p("activity_id", f.Activity),
			Template: map[string]any{"merchant_id_list": []any{"1900000002"}, "add_request_no": "HOSTILEADD1"},
			Fields:   map[string]Kind{"merchant_id_list.0": KindID, "add_request_no": KindID},
			Fresh:    []string{"add_request_no"}, Control: http.StatusOK},
		"POST /paygift/activities/{activity_id}/merchants/delete": {Params: p("activity_id", f.Activity),
			Template: map[string]any{"merchant_id_list": []any{"1900000002"}, "delete_request_no": "HOSTILEDEL1"},
			Fields:   map[string]Kind{"merchant_id_list.0": KindID, "delete_request_no": KindID},
			Fresh:    []string{"delete_request_no"}, Control: http.StatusOK},

		// billing
		"GET /billing/health": get(nil),
		"POST /billing/reconciliations/{bill_date}": {Params: p("bill_date", f.BillDate),
			Harmless: map[string]Harmless{"body/null": {Statuses: []int{http.StatusOK, http.StatusAccepted, http.StatusServiceUnavailable},
				Why: "the body is {} or nothing and JSON null is the empty request: a run of the date (200 done/empty, 202 bill not ready, 503 NOT_CONFIGURED without bill storage)"}}},
		"GET /billing/reconciliations/{bill_date}": get(p("bill_date", f.BillDate)),
	}
	return s
}

// getField reads the string at the dotted path of a JSON document.
func getField(doc []byte, path string) (string, error) {
	cur, err := decodeDoc(doc)
	if err != nil {
		return "", err
	}
	for _, part := range strings.Split(path, ".") {
		switch node := cur.(type) {
		case map[string]any:
			cur = node[part]
		case []any:
			idx := 0
			for _, c := range part {
				idx = idx*10 + int(c-'0')
			}
			if idx >= len(node) {
				return "", errBadPath(path)
			}
			cur = node[idx]
		default:
			return "", errBadPath(path)
		}
	}
	v, ok := cur.(string)
	if !ok {
		return "", errBadPath(path)
	}
	return v, nil
}

// setField returns the JSON document with the value at the dotted path
// replaced by the raw JSON value.
func setField(body []byte, path string, value json.RawMessage) ([]byte, error) {
	doc, err := decodeDoc(body)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(path, ".")
	cur := doc
	for i, part := range parts {
		last := i == len(parts)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				node[part] = value
			} else {
				cur = node[part]
			}
		case []any:
			idx := 0
			for _, c := range part {
				idx = idx*10 + int(c-'0')
			}
			if idx >= len(node) {
				return nil, errBadPath(path)
			}
			if last {
				node[idx] = value
			} else {
				cur = node[idx]
			}
		default:
			return nil, errBadPath(path)
		}
	}
	return json.Marshal(doc)
}

// decodeDoc decodes a JSON document keeping numbers exact.
func decodeDoc(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	err := dec.Decode(&doc)
	return doc, err
}

type errBadPath string

func (e errBadPath) Error() string { return "hostile: template has no field " + string(e) }
