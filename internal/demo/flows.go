package demo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

const (
	get            = http.MethodGet
	post           = http.MethodPost
	put            = http.MethodPut
	clockTolerance = 2 * time.Minute // functions' clock vs the simulator's
)

// setup finds the merchant, checks the functions answer and moves the
// simulator to 10:00 the next (Shanghai) day so the flows have a bill date
// of their own.
func setup(ctx context.Context, r *runner) error {
	r.begin("Find the simulated merchant and the simulator clock")
	var info simInfo
	if _, err := r.sim(ctx, get, "/sim/info", nil, &info); err != nil {
		return err
	}
	for _, m := range info.Merchants {
		if r.cfg.MchID == "" || m.MchID == r.cfg.MchID {
			r.res.MchID = m.MchID
			if len(m.AppIDs) > 0 {
				r.appID = m.AppIDs[0]
			}
			if len(m.ServiceIDs) > 0 {
				r.serviceID = m.ServiceIDs[0]
			}
			r.note("merchant %s (appid %s, Pay Score service %s, signature mode %s)", m.MchID, r.appID, r.serviceID, m.Mode)
			break
		}
	}
	if r.res.MchID == "" || r.appID == "" {
		return unexpected("the simulator has no merchant %q with an appid", r.cfg.MchID)
	}
	simNow, err := parseTime("simulator now", info.Now)
	if err != nil {
		return err
	}
	r.note("simulator clock %s", ledger.WechatTime(simNow))

	r.begin("Check that the functions answer (JWT accepted, credentials loaded, table reachable)")
	var handlerNow time.Time
	var fns []string
	for _, fn := range []string{"payscore", "coupons", "payments", "billing"} {
		var h struct {
			Status string `json:"status"`
			Time   string `json:"time"`
		}
		if _, err := r.app(ctx, get, "/"+fn+"/health", nil, &h); err != nil {
			return err
		}
		if h.Status != "ok" {
			return unexpected("%s health status %q, want ok", fn, h.Status)
		}
		fns = append(fns, fn+" ok")
		if handlerNow, err = parseTime(fn+" health time", h.Time); err != nil {
			return err
		}
	}
	r.note("%s; the functions' clock says %s", strings.Join(fns, ", "), ledger.WechatTime(handlerNow))
	if d := handlerNow.Sub(simNow); d > 4*time.Minute || d < -4*time.Minute {
		return unexpected("the simulator clock is %s away from the functions' clock: signed requests would fail the ±5 min window; restart the stack", -d.Round(time.Second))
	}

	r.begin("Move the simulator to 10:00 tomorrow (Asia/Shanghai): the flows get a bill date of their own")
	step := untilTomorrowAt(simNow, 10)
	moved, err := r.advance(ctx, step)
	if err != nil {
		return err
	}
	if handlerNow, err = r.handlerNow(ctx); err != nil {
		return err
	}
	if d := handlerNow.Sub(moved); d > clockTolerance || d < -clockTolerance {
		// The handlers keep their own clock: go back, run the flows
		// today; the reconciliation cannot run (today has no bill yet).
		if _, err := r.advance(ctx, -step); err != nil {
			return err
		}
		r.clockNote = fmt.Sprintf("the functions keep their own clock (%s while the simulator said %s)", ledger.WechatTime(handlerNow), ledger.WechatTime(moved))
		r.note("%s: moved the simulator back; the flows run today", r.clockNote)
	} else {
		r.clockShared = true
		r.note("simulator and functions now at %s (the functions follow the simulator clock)", ledger.WechatTime(moved))
	}
	now, err := r.simNow(ctx)
	if err != nil {
		return err
	}
	r.res.BillDate = ledger.Day(now)
	r.suffix = now.In(ledger.Shanghai).Format("0102150405") + randomSuffix(4)
	r.note("bill date %s; this run's numbers end in %s", r.res.BillDate, r.suffix)
	return nil
}

// psAuthorization is an authorization as the payscore routes answer it.
type psAuthorization struct {
	AuthorizationCode     string `json:"authorization_code"`
	State                 string `json:"state"`
	From                  string `json:"from"`
	ApplyPermissionsToken string `json:"apply_permissions_token"`
	TokenExpiresAt        string `json:"token_expires_at"`
}

// psOrder is a service order as the payscore routes answer it.
type psOrder struct {
	OutOrderNo       string `json:"out_order_no"`
	OrderID          string `json:"order_id"`
	State            string `json:"state"`
	StateDescription string `json:"state_description"`
	CollectionState  string `json:"collection_state"`
	TotalAmount      int64  `json:"total_amount"`
	PaidAmount       int64  `json:"paid_amount"`
	TransactionID    string `json:"transaction_id"`
	PaidType         string `json:"paid_type"`
}

func (o psOrder) describe() string {
	s := o.State + "/" + o.StateDescription
	if o.CollectionState != "" {
		s += ", collection " + o.CollectionState
	}
	return s
}

// payScoreFlow is the no-confirm guide's five steps.
func payScoreFlow(ctx context.Context, r *runner) error {
	ids := &r.res.IDs
	ids.PayScoreOpenID, ids.PayScoreOrder = "oDemoPS_"+r.suffix, "PSDEMO"+r.suffix
	openid, no := ids.PayScoreOpenID, ids.PayScoreOrder
	authPath := "/payscore/users/" + openid + "/authorization"

	r.begin("Is the user authorized? (guide step 1)")
	var a psAuthorization
	if _, err := r.app(ctx, get, authPath, nil, &a); err != nil {
		return err
	}
	if a.State != "UNAVAILABLE" {
		return unexpected("a new user's authorization is %q, want UNAVAILABLE", a.State)
	}
	r.note("ledger: authorization of %s = %s (asked WeChat Pay: from %s; now cached)", openid, a.State, a.From)

	r.begin("Pre-authorize: the app gets the token that opens the Pay Score page (guide step 2)")
	var pre psAuthorization
	if _, err := r.app(ctx, post, "/payscore/authorizations", map[string]any{"openid": openid}, &pre, http.StatusCreated); err != nil {
		return err
	}
	if pre.AuthorizationCode == "" || pre.ApplyPermissionsToken == "" || pre.State != "UNBINDUSER" {
		return unexpected("pre-authorization = code %q state %q token set %v, want a code in UNBINDUSER with a token",
			pre.AuthorizationCode, pre.State, pre.ApplyPermissionsToken != "")
	}
	ids.PayScoreCode = pre.AuthorizationCode
	r.note("ledger: authorization code %s = %s, apply_permissions_token issued (valid until %s)", pre.AuthorizationCode, pre.State, pre.TokenExpiresAt)

	r.begin("The user opens Pay Score in WeChat (simulator); PAYSCORE.USER_OPEN_SERVICE arrives")
	var opened struct {
		NotificationID string `json:"notification_id"`
	}
	if _, err := r.sim(ctx, post, "/sim/payscore/users/authorize",
		map[string]any{"mchid": r.res.MchID, "openid": openid, "authorization_code": pre.AuthorizationCode}, &opened); err != nil {
		return err
	}
	if err := r.waitDelivered(ctx, opened.NotificationID); err != nil {
		return err
	}
	if _, err := r.app(ctx, get, authPath, nil, &a); err != nil {
		return err
	}
	if a.State != "AVAILABLE" || a.From != "cache" {
		return unexpected("authorization after the callback = %s from %s, want AVAILABLE from cache", a.State, a.From)
	}
	r.note("ledger: authorization of %s = %s (from %s: the callback changed it, no WeChat Pay query)", openid, a.State, a.From)

	r.begin("Create the service order, no user confirmation needed (guide step 3)")
	now, err := r.simNow(ctx)
	if err != nil {
		return err
	}
	create := map[string]any{"out_order_no": no, "openid": openid, "service_introduction": "充电宝租借",
		"time_range": map[string]any{"start_time": ledger.PayScoreTime(now)}, "location": map[string]any{"start_location": "深圳腾大"},
		"risk_fund": map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": 9900, "description": "充电宝押金"}}
	var o psOrder
	if _, err := r.app(ctx, post, "/payscore/orders", create, &o, http.StatusCreated); err != nil {
		return err
	}
	if o.State != "DOING" || o.StateDescription != "USER_CONFIRM" || o.OrderID == "" {
		return unexpected("created order = %s (order_id %q), want DOING/USER_CONFIRM with an order_id", o.describe(), o.OrderID)
	}
	r.note("ledger: order %s = %s, WeChat Pay order_id %s, risk fund %s yuan", no, o.describe(), o.OrderID, yuan(9900))

	r.begin("The service ends: complete the order with the amount to deduct (guide step 4)")
	if now, err = r.simNow(ctx); err != nil {
		return err
	}
	const total = 300
	complete := map[string]any{"post_payments": []map[string]any{{"name": "租借费", "amount": total, "description": "每小时1元", "count": 3}},
		"total_amount": total, "time_range": map[string]any{"end_time": ledger.PayScoreTime(now)}, "location": map[string]any{"end_location": "深圳腾大"}}
	if _, err := r.app(ctx, post, "/payscore/orders/"+no+"/complete", complete, &o); err != nil {
		return err
	}
	if o.StateDescription != "MCH_COMPLETE" || o.CollectionState != "USER_PAYING" || o.TotalAmount != total {
		return unexpected("completed order = %s total %d, want DOING/MCH_COMPLETE, collection USER_PAYING, total %d", o.describe(), o.TotalAmount, total)
	}
	r.note("ledger: order %s = %s, total_amount %s yuan", no, o.describe(), yuan(o.TotalAmount))

	r.begin("WeChat Pay deducts the user (simulator); PAYSCORE.USER_PAID arrives (guide step 5)")
	var paid struct {
		State          string `json:"state"`
		TransactionID  string `json:"transaction_id"`
		NotificationID string `json:"notification_id"`
	}
	if _, err := r.sim(ctx, post, "/sim/payscore/orders/deduct", map[string]any{"mchid": r.res.MchID, "out_order_no": no}, &paid); err != nil {
		return err
	}
	if paid.State != "DONE" || paid.TransactionID == "" {
		return unexpected("deduction = state %q transaction %q, want DONE with a transaction_id", paid.State, paid.TransactionID)
	}
	if err := r.waitDelivered(ctx, paid.NotificationID); err != nil {
		return err
	}
	if _, err := r.app(ctx, get, "/payscore/orders/"+no, nil, &o); err != nil {
		return err
	}
	if o.State != "DONE" || o.CollectionState != "USER_PAID" || o.TransactionID != paid.TransactionID || o.PaidAmount != total {
		return unexpected("order after PAYSCORE.USER_PAID = %s, transaction %q, paid %d; want DONE, collection USER_PAID, transaction %s, paid %d",
			o.describe(), o.TransactionID, o.PaidAmount, paid.TransactionID, total)
	}
	ids.PayScoreTransaction = o.TransactionID
	r.note("ledger: order %s = %s, paid %s yuan, transaction_id %s", no, o.describe(), yuan(o.PaidAmount), o.TransactionID)
	return nil
}

// stockBody is a create-stock body valid for 30 days from now.
func (r *runner) stockBody(now time.Time, mode, name string) map[string]any {
	return map[string]any{
		"stock_name": name, "comment": "demo", "goods_name": "全场可用", "stock_type": "NORMAL", "coupon_code_mode": mode,
		"coupon_use_rule": map[string]any{
			"coupon_available_time": map[string]any{"available_begin_time": ledger.WechatTime(now.Add(-time.Hour)),
				"available_end_time": ledger.WechatTime(now.Add(30 * 24 * time.Hour))},
			"fixed_normal_coupon": map[string]any{"discount_amount": 500, "transaction_minimum": 1000},
			"use_method":          "OFF_LINE",
		},
		"stock_send_rule": map[string]any{"max_coupons": 10, "max_coupons_per_user": 2},
		"notify_config":   map[string]any{"notify_appid": r.appID},
	}
}

// couponFlow: a merchant coupon stock from creation to redemption.
func couponFlow(ctx context.Context, r *runner) error {
	ids := &r.res.IDs
	ids.CouponOpenID = "oDemoCP_" + r.suffix
	openid := ids.CouponOpenID

	r.begin("Point WeChat Pay's coupon callbacks (COUPON.SEND) at the notify function")
	var cb struct {
		NotifyURL string `json:"notify_url"`
	}
	if _, err := r.app(ctx, put, "/coupons/callback", nil, &cb); err != nil {
		return err
	}
	if !strings.HasSuffix(cb.NotifyURL, "/notify/coupons") {
		return unexpected("callback notify_url = %q, want the notify function's coupons channel", cb.NotifyURL)
	}
	r.note("ledger: coupon callback = %s", cb.NotifyURL)

	r.begin("Create a stock: 5 yuan off 10 yuan, codes uploaded by the merchant")
	now, err := r.simNow(ctx)
	if err != nil {
		return err
	}
	var st struct {
		StockID string `json:"stock_id"`
	}
	if _, err := r.app(ctx, post, "/coupons/stocks", r.stockBody(now, "MERCHANT_UPLOAD", "演示券"), &st); err != nil {
		return err
	}
	if st.StockID == "" {
		return unexpected("the created stock has no stock_id")
	}
	ids.CouponStock = st.StockID
	r.note("ledger: stock %s created (MERCHANT_UPLOAD, 10 coupons, 2 per user)", st.StockID)

	r.begin("Upload two coupon codes")
	codes := []string{"DEMO" + r.suffix + "A", "DEMO" + r.suffix + "B"}
	var up struct {
		SuccessCount int `json:"success_count"`
	}
	if _, err := r.app(ctx, post, "/coupons/stocks/"+st.StockID+"/codes", map[string]any{"coupon_code_list": codes}, &up); err != nil {
		return err
	}
	if up.SuccessCount != len(codes) {
		return unexpected("upload success_count %d, want %d", up.SuccessCount, len(codes))
	}
	var stock struct {
		StockState string `json:"stock_state"`
	}
	if _, err := r.app(ctx, get, "/coupons/stocks/"+st.StockID, nil, &stock); err != nil {
		return err
	}
	r.note("ledger: stock %s holds %d uploaded codes; WeChat Pay says %s", st.StockID, up.SuccessCount, stock.StockState)

	r.begin("Send a coupon to the user; COUPON.SEND arrives")
	before, err := r.ackedIDs(ctx, "COUPON.SEND")
	if err != nil {
		return err
	}
	var sent struct {
		CouponCode   string `json:"coupon_code"`
		OutRequestNo string `json:"out_request_no"`
	}
	if _, err := r.app(ctx, post, "/coupons/send", map[string]any{"stock_id": st.StockID, "openid": openid}, &sent); err != nil {
		return err
	}
	if sent.CouponCode == "" {
		return unexpected("send answered no coupon_code")
	}
	ids.CouponCode = sent.CouponCode
	r.note("ledger: coupon %s of %s = SENDED (out_request_no %s stored before the call)", sent.CouponCode, openid, sent.OutRequestNo)
	if err := r.waitNewDelivery(ctx, "COUPON.SEND", before); err != nil {
		return err
	}
	userCoupon := "/coupons/users/" + openid + "/coupons/" + sent.CouponCode
	var uc struct {
		CouponState string `json:"coupon_state"`
	}
	if _, err := r.app(ctx, get, userCoupon, nil, &uc); err != nil {
		return err
	}
	if uc.CouponState != "SENDED" {
		return unexpected("WeChat Pay's coupon state %q, want SENDED", uc.CouponState)
	}
	r.note("WeChat Pay: the user's coupon %s is %s", sent.CouponCode, uc.CouponState)

	r.begin("Redeem the coupon at the till (核销)")
	use := map[string]any{"stock_id": st.StockID, "coupon_code": sent.CouponCode, "openid": openid, "out_trade_no": "CPDEMO" + r.suffix}
	var used struct {
		State        string `json:"state"`
		UseRequestNo string `json:"use_request_no"`
		UseTime      string `json:"use_time"`
	}
	if _, err := r.app(ctx, post, "/coupons/use", use, &used); err != nil {
		return err
	}
	if used.State != "USED" {
		return unexpected("coupon after use = %q, want USED", used.State)
	}
	r.note("ledger: coupon %s = %s at %s (use_request_no %s)", sent.CouponCode, used.State, used.UseTime, used.UseRequestNo)

	r.begin("The till repeats the request (its answer was lost): replayed; another order's redemption: refused from the ledger")
	calls, err := r.wechatCalls(ctx)
	if err != nil {
		return err
	}
	var again struct {
		UseRequestNo string `json:"use_request_no"`
	}
	if _, err := r.app(ctx, post, "/coupons/use", use, &again); err != nil {
		return err
	}
	other := map[string]any{"stock_id": st.StockID, "coupon_code": sent.CouponCode, "openid": openid, "out_trade_no": "CPDEMOB" + r.suffix}
	var e errorBody
	if _, err := r.app(ctx, post, "/coupons/use", other, &e, http.StatusConflict); err != nil {
		return err
	}
	after, err := r.wechatCalls(ctx)
	if err != nil {
		return err
	}
	if again.UseRequestNo != used.UseRequestNo || e.Code != "COUPON_STATE" || after != calls {
		return unexpected("the repeated redemption answered use_request_no %s (want %s), the other one %s, with %d WeChat Pay calls (want COUPON_STATE and none)",
			again.UseRequestNo, used.UseRequestNo, e.Code, after-calls)
	}
	if _, err := r.app(ctx, get, userCoupon, nil, &uc); err != nil {
		return err
	}
	if uc.CouponState != "USED" {
		return unexpected("WeChat Pay's coupon state %q after redemption, want USED", uc.CouponState)
	}
	r.note("the same request: replayed (use_request_no %s); another order: 409 %s from the ledger; no WeChat Pay call; WeChat Pay: the coupon is %s",
		again.UseRequestNo, e.Code, uc.CouponState)
	return nil
}

// wechatCalls counts the merchant's /v3/ requests the simulator has seen.
func (r *runner) wechatCalls(ctx context.Context) (int, error) {
	var rs struct {
		Requests []struct {
			Path string `json:"path"`
		} `json:"requests"`
	}
	if err := r.quietGet(ctx, "sim", "/sim/requests?mchid="+r.res.MchID, &rs); err != nil {
		return 0, err
	}
	return len(rs.Requests), nil
}

// payOrder is an order as the payments routes answer it.
type payOrder struct {
	OutTradeNo    string `json:"out_trade_no"`
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"`
	TradeType     string `json:"trade_type"`
	Amount        struct {
		Total      int64 `json:"total"`
		PayerTotal int64 `json:"payer_total"`
	} `json:"amount"`
	SettlementTotal int64  `json:"settlement_total"`
	CouponTotal     int64  `json:"coupon_total"`
	NoCashTotal     int64  `json:"nocash_total"`
	PrepayID        string `json:"prepay_id"`
	CodeURL         string `json:"code_url"`
	Refunds         *struct {
		State     string `json:"state"`
		Succeeded int64  `json:"succeeded"`
		Payer     int64  `json:"payer_refunded"`
	} `json:"refunds"`
}

// payGiftFlow: an activity awards a coupon to a payment above a threshold.
func payGiftFlow(ctx context.Context, r *runner) error {
	ids := &r.res.IDs
	ids.GiftOpenID, ids.GiftOrder = "oDemoPG_"+r.suffix, "PGDEMO"+r.suffix
	openid, no := ids.GiftOpenID, ids.GiftOrder
	const threshold, total = 10000, 12000

	r.begin("Create the award stock (WeChat Pay picks the codes)")
	now, err := r.simNow(ctx)
	if err != nil {
		return err
	}
	var st struct {
		StockID string `json:"stock_id"`
	}
	if _, err := r.app(ctx, post, "/coupons/stocks", r.stockBody(now, "WECHATPAY_MODE", "支付有礼券"), &st); err != nil {
		return err
	}
	if st.StockID == "" {
		return unexpected("the created stock has no stock_id")
	}
	ids.GiftStock = st.StockID
	r.note("ledger: award stock %s created", st.StockID)

	r.begin("Create the pay-gift activity: pay 100 yuan or more, get the coupon")
	act := map[string]any{
		"activity_base_info": map[string]any{"activity_name": "满100送券", "activity_second_title": "下单即送",
			"merchant_logo_url": "https://wxpaylogo.qpic.cn/logo.png", "begin_time": ledger.WechatTime(now),
			"end_time": ledger.WechatTime(now.Add(7 * 24 * time.Hour)), "delivery_purpose": "OFF_LINE_PAY"},
		"award_send_rule": map[string]any{"transaction_amount_minimum": threshold, "send_content": "SINGLE_COUPON",
			"award_list":       []map[string]any{{"stock_id": st.StockID, "original_image_url": "https://wxpaylogo.qpic.cn/award.png"}},
			"merchant_id_list": []string{r.res.MchID}},
	}
	var created struct {
		ActivityID string `json:"activity_id"`
	}
	if _, err := r.app(ctx, post, "/paygift/activities", act, &created); err != nil {
		return err
	}
	ids.GiftActivity = created.ActivityID
	var detail struct {
		ActivityStatus string `json:"activity_status"`
	}
	if _, err := r.app(ctx, get, "/paygift/activities/"+created.ActivityID, nil, &detail); err != nil {
		return err
	}
	if detail.ActivityStatus != "ONGOING_ACT_STATUS" {
		return unexpected("activity status %q, want ONGOING_ACT_STATUS", detail.ActivityStatus)
	}
	r.note("ledger: activity %s = %s (threshold %s yuan, award stock %s)", created.ActivityID, detail.ActivityStatus, yuan(threshold), st.StockID)

	r.begin("The user orders 120 yuan (JSAPI)")
	body := map[string]any{"trade_type": "JSAPI", "out_trade_no": no, "description": "演示门店-支付有礼",
		"amount": map[string]any{"total": total, "currency": "CNY"}, "payer": map[string]any{"openid": openid}}
	var o payOrder
	if _, err := r.app(ctx, post, "/payments/orders", body, &o); err != nil {
		return err
	}
	if o.Status != "NOTPAY" || o.PrepayID == "" {
		return unexpected("order = %s prepay_id set %v, want NOTPAY with a prepay_id", o.Status, o.PrepayID != "")
	}
	r.note("ledger: order %s = %s, %s yuan, prepay_id issued (the app calls wx.requestPayment with the signed parameters)", no, o.Status, yuan(total))

	r.begin("The user pays (simulator): TRANSACTION.SUCCESS and the gift's COUPON.SEND arrive")
	before, err := r.ackedIDs(ctx, "COUPON.SEND")
	if err != nil {
		return err
	}
	var paid struct {
		TransactionID  string `json:"transaction_id"`
		NotificationID string `json:"notification_id"`
	}
	if _, err := r.sim(ctx, post, "/sim/users/pay", map[string]any{"mchid": r.res.MchID, "out_trade_no": no}, &paid); err != nil {
		return err
	}
	ids.GiftTransaction = paid.TransactionID
	if err := r.waitDelivered(ctx, paid.NotificationID); err != nil {
		return err
	}
	if err := r.waitNewDelivery(ctx, "COUPON.SEND", before); err != nil {
		return err
	}
	if _, err := r.app(ctx, get, "/payments/orders/"+no, nil, &o); err != nil {
		return err
	}
	if o.Status != "SUCCESS" || o.TransactionID != paid.TransactionID || o.Amount.PayerTotal != total {
		return unexpected("order after TRANSACTION.SUCCESS = %s, transaction %q, payer_total %d; want SUCCESS, %s, %d",
			o.Status, o.TransactionID, o.Amount.PayerTotal, paid.TransactionID, total)
	}
	r.note("ledger: order %s = %s, payer_total %s yuan, transaction_id %s", no, o.Status, yuan(o.Amount.PayerTotal), o.TransactionID)

	r.begin("The user finds the gift coupon in the WeChat card bag")
	var sends struct {
		Sends []struct {
			ActivityID    string `json:"activity_id"`
			TransactionID string `json:"transaction_id"`
			StockID       string `json:"stock_id"`
			CouponCode    string `json:"coupon_code"`
		} `json:"sends"`
	}
	if _, err := r.sim(ctx, get, "/sim/paygift/sends?mchid="+r.res.MchID, nil, &sends); err != nil {
		return err
	}
	for _, s := range sends.Sends {
		if s.ActivityID == created.ActivityID && s.TransactionID == paid.TransactionID && s.CouponCode != "" {
			ids.GiftCoupon = s.CouponCode
		}
	}
	if ids.GiftCoupon == "" {
		return unexpected("the activity sent no coupon for transaction %s", paid.TransactionID)
	}
	var uc struct {
		CouponState string `json:"coupon_state"`
		StockID     string `json:"stock_id"`
	}
	if _, err := r.app(ctx, get, "/coupons/users/"+openid+"/coupons/"+ids.GiftCoupon, nil, &uc); err != nil {
		return err
	}
	if uc.CouponState != "SENDED" || uc.StockID != st.StockID {
		return unexpected("gift coupon = %s of stock %s, want SENDED of %s", uc.CouponState, uc.StockID, st.StockID)
	}
	r.note("ledger: coupon %s of %s = SENDED via BUSICOUPON_SEND_CHANNEL_PAYGIFT for transaction %s (written by the notify function)",
		ids.GiftCoupon, openid, paid.TransactionID)

	r.begin("End the activity")
	if _, err := r.app(ctx, post, "/paygift/activities/"+created.ActivityID+"/terminate", nil, nil); err != nil {
		return err
	}
	if _, err := r.app(ctx, get, "/paygift/activities/"+created.ActivityID, nil, &detail); err != nil {
		return err
	}
	if detail.ActivityStatus != "TERMINATE_ACT_STATUS" {
		return unexpected("activity status after terminate %q, want TERMINATE_ACT_STATUS", detail.ActivityStatus)
	}
	r.note("ledger: activity %s = %s", created.ActivityID, detail.ActivityStatus)
	return nil
}

// payRefund is a refund as the payments routes answer it.
type payRefund struct {
	OutRefundNo string `json:"out_refund_no"`
	RefundID    string `json:"refund_id"`
	Status      string `json:"status"`
	Amount      struct {
		Refund           int64 `json:"refund"`
		PayerRefund      int64 `json:"payer_refund"`
		DiscountRefund   int64 `json:"discount_refund"`
		SettlementRefund int64 `json:"settlement_refund"`
	} `json:"amount"`
	Prediction struct {
		PayerRefund      int64 `json:"payer_refund"`
		DiscountRefund   int64 `json:"discount_refund"`
		SettlementRefund int64 `json:"settlement_refund"`
		Checked          bool  `json:"checked"`
		Matches          bool  `json:"matches"`
	} `json:"prediction"`
}

// noCashFlow: acceptance cases 1003/1004 — 5.51 yuan with a 0.01 yuan
// no-prepaid coupon, then a 3.00 yuan refund.
func noCashFlow(ctx context.Context, r *runner) error {
	ids := &r.res.IDs
	ids.NoCashOrder, ids.NoCashRefund = "NCDEMO"+r.suffix, "NCDEMO"+r.suffix+"R1"
	no, rno := ids.NoCashOrder, ids.NoCashRefund
	const total, coupon, refund = 551, 1, 300
	const wantPayer, wantSettlement = 299, 299 // 300 × 550/551 = 299.46 → 299; the coupon gets 1

	r.begin("Order 5.51 yuan, paid by QR code (Native)")
	body := map[string]any{"trade_type": "NATIVE", "out_trade_no": no, "description": "演示门店-免充值券",
		"amount": map[string]any{"total": total, "currency": "CNY"}}
	var o payOrder
	if _, err := r.app(ctx, post, "/payments/orders", body, &o); err != nil {
		return err
	}
	if o.Status != "NOTPAY" || o.CodeURL == "" {
		return unexpected("order = %s code_url set %v, want NOTPAY with a code_url", o.Status, o.CodeURL != "")
	}
	r.note("ledger: order %s = %s, %s yuan, code_url issued (shown as a QR code)", no, o.Status, yuan(total))

	r.begin("The user scans and pays with a 0.01 yuan no-prepaid (NOCASH) coupon (simulator)")
	promo := map[string]any{"coupon_id": "DEMONC" + r.suffix, "type": "NOCASH", "amount": coupon, "stock_id": "931386", "merchant_contribute": coupon}
	var paid struct {
		TransactionID  string `json:"transaction_id"`
		NotificationID string `json:"notification_id"`
	}
	if _, err := r.sim(ctx, post, "/sim/users/pay", map[string]any{"mchid": r.res.MchID, "out_trade_no": no, "promotions": []any{promo}}, &paid); err != nil {
		return err
	}
	ids.NoCashTransaction = paid.TransactionID
	if err := r.waitDelivered(ctx, paid.NotificationID); err != nil {
		return err
	}
	if _, err := r.app(ctx, get, "/payments/orders/"+no, nil, &o); err != nil {
		return err
	}
	if o.Status != "SUCCESS" || o.Amount.Total != total || o.Amount.PayerTotal != total-coupon || o.SettlementTotal != total-coupon ||
		o.NoCashTotal != coupon || o.CouponTotal != coupon {
		return unexpected("order = %s total %d payer_total %d settlement_total %d nocash %d coupon %d; want SUCCESS %d %d %d %d %d",
			o.Status, o.Amount.Total, o.Amount.PayerTotal, o.SettlementTotal, o.NoCashTotal, o.CouponTotal, total, total-coupon, total-coupon, coupon, coupon)
	}
	r.note("ledger: order %s = %s: total %s, the user paid %s, NOCASH coupon %s, settlement_total %s (total − NOCASH)",
		no, o.Status, yuan(o.Amount.Total), yuan(o.Amount.PayerTotal), yuan(o.NoCashTotal), yuan(o.SettlementTotal))

	r.begin("Refund 3.00 yuan of it")
	var rf payRefund
	req := map[string]any{"out_trade_no": no, "out_refund_no": rno, "refund": refund, "reason": "退货一件"}
	if _, err := r.app(ctx, post, "/payments/refunds", req, &rf); err != nil {
		return err
	}
	p := rf.Prediction
	if p.PayerRefund != wantPayer || p.DiscountRefund != refund-wantPayer || p.SettlementRefund != wantSettlement {
		return unexpected("predicted split payer %d discount %d settlement %d, want %d %d %d",
			p.PayerRefund, p.DiscountRefund, p.SettlementRefund, wantPayer, refund-wantPayer, wantSettlement)
	}
	r.note("ledger: refund %s = %s; predicted before asking WeChat Pay: %s back to the user, %s to the coupon, settlement_refund %s",
		rno, rf.Status, yuan(p.PayerRefund), yuan(p.DiscountRefund), yuan(p.SettlementRefund))

	r.begin("WeChat Pay settles the refund; REFUND.SUCCESS arrives")
	n, err := r.poll(ctx, "refund "+rno+" SUCCESS", func(ctx context.Context) (bool, error) {
		if err := r.quietGet(ctx, "app", "/payments/refunds/"+rno, &rf); err != nil {
			return false, err
		}
		return rf.Status == "SUCCESS", nil
	})
	if err != nil {
		return err
	}
	r.note("REFUND.SUCCESS applied by the notify function (%s of GET /payments/refunds/%s)", plural(n, "poll"), rno)
	if _, err := r.app(ctx, get, "/payments/refunds/"+rno, nil, &rf); err != nil {
		return err
	}
	if rf.Status != "SUCCESS" || rf.Amount.PayerRefund != wantPayer || !rf.Prediction.Checked || !rf.Prediction.Matches {
		return unexpected("refund = %s payer_refund %d checked %v matches %v, want SUCCESS %d matching the prediction",
			rf.Status, rf.Amount.PayerRefund, rf.Prediction.Checked, rf.Prediction.Matches, wantPayer)
	}
	r.note("ledger: refund %s = %s, payer_refund %s, settlement_refund %s: WeChat Pay's split matches the prediction",
		rno, rf.Status, yuan(rf.Amount.PayerRefund), yuan(rf.Amount.SettlementRefund))
	if _, err := r.app(ctx, get, "/payments/orders/"+no, nil, &o); err != nil {
		return err
	}
	if o.Status != "REFUND" || o.Refunds == nil || o.Refunds.State != "PARTIAL" || o.Refunds.Succeeded != refund {
		return unexpected("order after the refund = %s refunds %+v, want REFUND with a PARTIAL refund of %d", o.Status, o.Refunds, refund)
	}
	r.note("ledger: order %s = %s, refunds %s: %s of %s refunded, %s back to the user",
		no, o.Status, o.Refunds.State, yuan(o.Refunds.Succeeded), yuan(total), yuan(o.Refunds.Payer))
	return nil
}
