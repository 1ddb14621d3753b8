package wxpaysim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"time"
)

// Send channels of COUPON.SEND (wechatpay-apiv3.md 3.4).
const (
	bfChannelAPI     = "BUSICOUPON_SEND_CHANNEL_API"
	bfChannelMiniApp = "BUSICOUPON_SEND_CHANNEL_MINIAPP"
	bfChannelPayGift = "BUSICOUPON_SEND_CHANNEL_PAYGIFT"
)

// bfCoupon is one coupon in a user's card bag.
type bfCoupon struct {
	code          string
	stockID       string
	openid        string
	appid         string
	state         string // SENDED, USED, DEACTIVATED, DELETED (EXPIRED is computed)
	received      time.Time
	start, expire time.Time
	channel       string
	sender        string
	sendRequestNo string

	useRequestNo     string
	useTime          string
	wechatUseTime    time.Time
	associateTradeNo string
	returnRequestNo  string
	returnTime       time.Time
	deactRequestNo   string
	deactTime        time.Time
	deactReason      string
}

// effectiveState is the coupon state at now: a usable coupon past its
// expiry is EXPIRED.
func (cp *bfCoupon) effectiveState(now time.Time) string {
	if cp.state == bfCouponSended && now.After(cp.expire) {
		return bfCouponExpired
	}
	return cp.state
}

// bfCouponView is the coupon entity (wechatpay-apiv3.md 3.3).
type bfCouponView struct {
	BelongMerchant      string          `json:"belong_merchant"`
	StockName           string          `json:"stock_name"`
	Comment             string          `json:"comment,omitempty"`
	GoodsName           string          `json:"goods_name"`
	StockType           string          `json:"stock_type"`
	Transferable        bool            `json:"transferable"`
	Shareable           bool            `json:"shareable"`
	CouponState         string          `json:"coupon_state"`
	DisplayPatternInfo  json.RawMessage `json:"display_pattern_info,omitempty"`
	CouponUseRule       bfUseRule       `json:"coupon_use_rule"`
	CustomEntrance      json.RawMessage `json:"custom_entrance,omitempty"`
	CouponCode          string          `json:"coupon_code"`
	StockID             string          `json:"stock_id"`
	AvailableStartTime  string          `json:"available_start_time"`
	ExpireTime          string          `json:"expire_time"`
	ReceiveTime         string          `json:"receive_time"`
	SendRequestNo       string          `json:"send_request_no,omitempty"`
	UseRequestNo        string          `json:"use_request_no,omitempty"`
	UseTime             string          `json:"use_time,omitempty"`
	AssociateOutTradeNo string          `json:"associate_out_trade_no,omitempty"`
	ReturnRequestNo     string          `json:"return_request_no,omitempty"`
	ReturnTime          string          `json:"return_time,omitempty"`
	DeactivateRequestNo string          `json:"deactivate_request_no,omitempty"`
	DeactivateTime      string          `json:"deactivate_time,omitempty"`
	DeactivateReason    string          `json:"deactivate_reason,omitempty"`
}

func (cp *bfCoupon) view(sk *bfStock, now time.Time) bfCouponView {
	v := bfCouponView{BelongMerchant: sk.info.BelongMerchant, StockName: sk.info.StockName, Comment: sk.info.Comment,
		GoodsName: sk.info.GoodsName, StockType: sk.info.StockType, Transferable: sk.info.StockSendRule.Transferable,
		Shareable: sk.info.StockSendRule.Shareable, CouponState: cp.effectiveState(now), DisplayPatternInfo: sk.info.DisplayPatternInfo,
		CouponUseRule: sk.info.CouponUseRule, CustomEntrance: sk.info.CustomEntrance, CouponCode: cp.code, StockID: sk.id,
		AvailableStartTime: formatTime(cp.start), ExpireTime: formatTime(cp.expire), ReceiveTime: formatTime(cp.received),
		SendRequestNo: cp.sendRequestNo, UseRequestNo: cp.useRequestNo, UseTime: cp.useTime,
		AssociateOutTradeNo: cp.associateTradeNo, ReturnRequestNo: cp.returnRequestNo,
		DeactivateRequestNo: cp.deactRequestNo, DeactivateReason: cp.deactReason}
	if !cp.returnTime.IsZero() {
		v.ReturnTime = formatTime(cp.returnTime)
	}
	if !cp.deactTime.IsZero() {
		v.DeactivateTime = formatTime(cp.deactTime)
	}
	return v
}

// bfSendSpec is one coupon to send from a stock.
type bfSendSpec struct {
	stockID      string
	openid       string
	appid        string
	outRequestNo string
	code         string // MERCHANT_API: the merchant's code
	channel      string
	sender       string          // send_merchant
	attach       map[string]any  // attach_info of COUPON.SEND
	sendTime     time.Time       // zero: now
	notes        *[]bfCouponSend // where the COUPON.SEND to queue is appended
}

// bfCouponSend is a COUPON.SEND to queue after merchant.mu is released.
type bfCouponSend struct {
	mchID string
	url   string
	plain []byte
}

// send issues one coupon from a stock of this state: budget, daily and
// per-user limits, the code pool, and out_request_no idempotency (per stock
// and user). A replay returns the coupon sent the first time (created
// false). merchant.mu must be held.
func (st *busifavorState) send(owner string, sp bfSendSpec, now time.Time) (*bfCoupon, bool, error) {
	sk, ok := st.stocks[sp.stockID]
	if !ok {
		return nil, false, bfStockNotFound(sp.stockID)
	}
	sendKey := sk.id + "|" + sp.openid + "|" + sp.outRequestNo
	if prev, ok := st.sends[sendKey]; ok {
		return prev, false, nil
	}
	rule := sk.info.StockSendRule
	switch {
	case sk.state(now) != bfStockRunning:
		return nil, false, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "批次已结束 (stock %s is %s)", sk.id, sk.state(now))
	case sk.sent >= rule.MaxCoupons:
		return nil, false, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "批次库存不足 (stock %s sent %d of %d)", sk.id, sk.sent, rule.MaxCoupons)
	case rule.MaxCouponsByDay > 0 && sk.sentByDay[bfDay(now)] >= rule.MaxCouponsByDay:
		return nil, false, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "批次今日发放已达上限 (%d)", rule.MaxCouponsByDay)
	case sk.sentByUser[sp.openid] >= rule.MaxCouponsPerUser:
		return nil, false, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "用户领取已达上限 (openid %s has %d of %d)", sp.openid, sk.sentByUser[sp.openid], rule.MaxCouponsPerUser)
	}
	code := ""
	switch sk.info.CouponCodeMode {
	case bfModeWechat:
		if sp.code != "" {
			return nil, false, paramError("WECHATPAY_MODE批次不能指定coupon_code")
		}
		c, err := randomString(22, digits)
		if err != nil {
			return nil, false, err
		}
		code = c
	case bfModeAPI:
		if !bfValidCode(sp.code) {
			return nil, false, paramError("MERCHANT_API批次须传入合法的coupon_code (%q)", sp.code)
		}
		if st.coupons[sk.id+"|"+sp.code] != nil {
			return nil, false, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "coupon_code已发放 (%s)", sp.code)
		}
		code = sp.code
	case bfModeUpload:
		if sp.code != "" {
			return nil, false, paramError("MERCHANT_UPLOAD批次不能指定coupon_code")
		}
		var avail []*bfCode
		for _, c := range sk.codeOrder {
			if cd := sk.codes[c]; !cd.deleted && cd.status == bfCodeAvailable {
				avail = append(avail, cd)
			}
		}
		if len(avail) == 0 {
			return nil, false, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "批次预存code不足 (stock %s has no AVAILABLE code)", sk.id)
		}
		i, err := randomIndex(len(avail)) // WeChat picks an uploaded code at random
		if err != nil {
			return nil, false, err
		}
		cd := avail[i]
		cd.status, cd.dispatched, cd.openid = bfCodeDispatched, now, sp.openid
		code = cd.code
	}
	received := now
	if !sp.sendTime.IsZero() {
		received = sp.sendTime
	}
	w := sk.info.CouponUseRule.CouponAvailableTime
	start, expire := sk.begin, sk.end
	if w.WaitDaysAfterReceive > 0 {
		if s := received.AddDate(0, 0, w.WaitDaysAfterReceive); s.After(start) {
			start = s
		}
	}
	if w.AvailableDayAfterReceive > 0 {
		base := received
		if start.After(base) {
			base = start
		}
		if e := base.AddDate(0, 0, w.AvailableDayAfterReceive); e.Before(expire) {
			expire = e
		}
	}
	cp := &bfCoupon{code: code, stockID: sk.id, openid: sp.openid, appid: sp.appid, state: bfCouponSended, received: received,
		start: start, expire: expire, channel: sp.channel, sender: sp.sender, sendRequestNo: sp.outRequestNo}
	st.coupons[sk.id+"|"+code] = cp
	st.sends[sendKey] = cp
	sk.sent++
	sk.sentAmount += sk.discount()
	sk.sentByDay[bfDay(now)]++
	sk.sentByUser[sp.openid]++

	if st.callbackURL != "" && sp.notes != nil {
		plain := map[string]any{"event_type": "EVENT_TYPE_BUSICOUPON_SEND", "coupon_code": code, "stock_id": sk.id,
			"send_time": formatTime(received), "send_channel": sp.channel, "send_merchant": sp.sender}
		// openid/unionid only when the stock names a notify_appid (3.4).
		if sk.info.NotifyConfig != nil && sk.info.NotifyConfig.NotifyAppID != "" {
			plain["openid"] = sp.openid
		}
		if len(sp.attach) > 0 {
			plain["attach_info"] = sp.attach
		}
		b, err := marshalJSON(plain)
		if err != nil {
			return nil, false, err
		}
		*sp.notes = append(*sp.notes, bfCouponSend{mchID: owner, url: st.callbackURL, plain: b})
	}
	return cp, true, nil
}

// randomIndex is a uniform index in [0, n), n > 0.
func randomIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("wxpaysim: random: %w", err)
	}
	return int(v.Int64()), nil
}

// queueCouponSends pushes COUPON.SEND notifications; merchant.mu must NOT
// be held. Failures are logged: the coupon was sent either way.
func (s *Sim) queueCouponSends(ctx context.Context, sends []bfCouponSend) []string {
	var ids []string
	for _, n := range sends {
		id, err := s.Notify(ctx, Notification{MchID: n.mchID, URL: n.url, EventType: "COUPON.SEND", OriginalType: "coupon",
			Summary: "商家券领券通知", Plaintext: n.plain})
		if err != nil {
			s.logf("wxpaysim: COUPON.SEND not queued: %v", err)
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// bfFindCoupon finds a coupon by stock (optional) and code. merchant.mu
// must be held.
func (st *busifavorState) bfFindCoupon(stockID, code string) (*bfCoupon, *bfStock, error) {
	if stockID != "" {
		cp := st.coupons[stockID+"|"+code]
		if cp == nil {
			return nil, nil, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "券不存在 (stock %s coupon %s)", stockID, code)
		}
		return cp, st.stocks[stockID], nil
	}
	for _, id := range st.stockOrder {
		if cp := st.coupons[id+"|"+code]; cp != nil {
			sk := st.stocks[id]
			if sk.info.CouponCodeMode != bfModeWechat {
				return nil, nil, paramError("商户自定义code模式的批次核销时stock_id必填")
			}
			return cp, sk, nil
		}
	}
	return nil, nil, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "券不存在 (coupon %s)", code)
}

// bfBoundAppID checks an appid against the merchant's bound appids.
func bfBoundAppID(cfg MerchantConfig, appid string) error {
	if appid == "" {
		return paramError("appid必填")
	}
	if !slices.Contains(cfg.AppIDs, appid) {
		return apiErr(http.StatusBadRequest, "APPID_MCHID_NOT_MATCH", "appid与商户号无绑定关系 (%s)", appid)
	}
	return nil
}

func (s *Sim) bfUse(_ context.Context, c *call) (reply, error) {
	var in struct {
		CouponCode    string `json:"coupon_code"`
		StockID       string `json:"stock_id"`
		AppID         string `json:"appid"`
		UseTime       string `json:"use_time"`
		UseRequestNo  string `json:"use_request_no"`
		OpenID        string `json:"openid"`
		OutTradeNo    string `json:"out_trade_no"`
		TransactionID string `json:"transaction_id"`
	}
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if in.CouponCode == "" {
		return reply{}, paramError("coupon_code必填")
	}
	if err := bfRequestNo("use_request_no", in.UseRequestNo, 32); err != nil {
		return reply{}, err
	}
	if err := bfBoundAppID(c.m.config(), in.AppID); err != nil {
		return reply{}, err
	}
	useTime, err := bfParseTime("use_time", in.UseTime)
	if err != nil {
		return reply{}, err
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if r, ok, err := st.idem("use", in.UseRequestNo, digest); ok || err != nil {
		return r, err
	}
	cp, _, err := st.bfFindCoupon(in.StockID, in.CouponCode)
	if err != nil {
		return reply{}, err
	}
	if in.OpenID != "" && in.OpenID != cp.openid {
		return reply{}, apiErr(http.StatusForbidden, "NO_AUTH", "券不属于该用户 (openid %s)", in.OpenID)
	}
	switch state := cp.effectiveState(now); {
	case state == bfCouponUsed:
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "券已核销 (coupon %s is USED by %s)", cp.code, cp.useRequestNo)
	case state != bfCouponSended:
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "券状态不可核销 (coupon %s is %s)", cp.code, state)
	case useTime.Before(cp.start) || now.Before(cp.start):
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "券未到可用时间 (available from %s)", formatTime(cp.start))
	}
	cp.state, cp.useRequestNo, cp.useTime, cp.wechatUseTime = bfCouponUsed, in.UseRequestNo, in.UseTime, now
	r := reply{status: http.StatusOK, body: map[string]string{"stock_id": cp.stockID, "openid": cp.openid, "wechatpay_use_time": formatTime(now)}}
	return st.remember("use", in.UseRequestNo, digest, cp.stockID+"|"+cp.code, r), nil
}

func (s *Sim) bfReturn(_ context.Context, c *call) (reply, error) {
	var in struct {
		CouponCode      string `json:"coupon_code"`
		StockID         string `json:"stock_id"`
		ReturnRequestNo string `json:"return_request_no"`
	}
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if in.CouponCode == "" || in.StockID == "" {
		return reply{}, paramError("coupon_code和stock_id必填")
	}
	if err := bfRequestNo("return_request_no", in.ReturnRequestNo, 128); err != nil {
		return reply{}, err
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if r, ok, err := st.idem("return", in.ReturnRequestNo, digest); ok || err != nil {
		return r, err
	}
	cp, _, err := st.bfFindCoupon(in.StockID, in.CouponCode)
	if err != nil {
		return reply{}, err
	}
	if cp.state != bfCouponUsed {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "券未核销，不能退券 (coupon %s is %s)", cp.code, cp.effectiveState(now))
	}
	cp.state, cp.returnRequestNo, cp.returnTime = bfCouponSended, in.ReturnRequestNo, now
	r := reply{status: http.StatusOK, body: map[string]string{"wechatpay_return_time": formatTime(now)}}
	return st.remember("return", in.ReturnRequestNo, digest, cp.stockID+"|"+cp.code, r), nil
}

func (s *Sim) bfDeactivate(_ context.Context, c *call) (reply, error) {
	var in struct {
		CouponCode          string `json:"coupon_code"`
		StockID             string `json:"stock_id"`
		DeactivateRequestNo string `json:"deactivate_request_no"`
		DeactivateReason    string `json:"deactivate_reason"`
	}
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if in.CouponCode == "" || in.StockID == "" {
		return reply{}, paramError("coupon_code和stock_id必填")
	}
	if err := bfRequestNo("deactivate_request_no", in.DeactivateRequestNo, 128); err != nil {
		return reply{}, err
	}
	if err := bfRunes("deactivate_reason", in.DeactivateReason, 0, 64); err != nil {
		return reply{}, err
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if r, ok, err := st.idem("deactivate", in.DeactivateRequestNo, digest); ok || err != nil {
		return r, err
	}
	cp, _, err := st.bfFindCoupon(in.StockID, in.CouponCode)
	if err != nil {
		return reply{}, err
	}
	if state := cp.effectiveState(now); state != bfCouponSended {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "只有可用状态的券才能失效 (coupon %s is %s)", cp.code, state)
	}
	cp.state, cp.deactRequestNo, cp.deactTime, cp.deactReason = bfCouponDeactivated, in.DeactivateRequestNo, now, in.DeactivateReason
	r := reply{status: http.StatusOK, body: map[string]string{"wechatpay_deactivate_time": formatTime(now)}}
	return st.remember("deactivate", in.DeactivateRequestNo, digest, cp.stockID+"|"+cp.code, r), nil
}

func (s *Sim) bfAssociate(associate bool) handlerFunc {
	kind, timeField := "associate", "wechatpay_associate_time"
	if !associate {
		kind, timeField = "disassociate", "wechatpay_disassociate_time"
	}
	return func(_ context.Context, c *call) (reply, error) {
		var in struct {
			CouponCode   string `json:"coupon_code"`
			OutTradeNo   string `json:"out_trade_no"`
			StockID      string `json:"stock_id"`
			OutRequestNo string `json:"out_request_no"`
		}
		if err := c.decode(&in); err != nil {
			return reply{}, err
		}
		if in.CouponCode == "" || in.StockID == "" || in.OutTradeNo == "" {
			return reply{}, paramError("coupon_code、stock_id和out_trade_no必填")
		}
		if err := bfRequestNo("out_request_no", in.OutRequestNo, 128); err != nil {
			return reply{}, err
		}
		digest, err := canonicalJSON(c.body)
		if err != nil {
			return reply{}, paramError("请求体格式错误 (%v)", err)
		}
		now := s.Now()
		c.m.mu.Lock()
		defer c.m.mu.Unlock()
		st := c.m.busifavor
		if r, ok, err := st.idem(kind, in.OutRequestNo, digest); ok || err != nil {
			return r, err
		}
		cp, _, err := st.bfFindCoupon(in.StockID, in.CouponCode)
		if err != nil {
			return reply{}, err
		}
		switch {
		case associate && cp.effectiveState(now) != bfCouponSended:
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "只有未核销的券才能关联订单 (coupon %s is %s)", cp.code, cp.effectiveState(now))
		case associate && cp.associateTradeNo != "" && cp.associateTradeNo != in.OutTradeNo:
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "券已关联其他订单 (%s)", cp.associateTradeNo)
		case !associate && cp.associateTradeNo != in.OutTradeNo:
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "券未关联该订单 (associated with %q)", cp.associateTradeNo)
		}
		if associate {
			cp.associateTradeNo = in.OutTradeNo
		} else {
			cp.associateTradeNo = ""
		}
		r := reply{status: http.StatusOK, body: map[string]string{timeField: formatTime(now)}}
		return st.remember(kind, in.OutRequestNo, digest, cp.stockID+"|"+cp.code, r), nil
	}
}

func (s *Sim) bfSendAPI(ctx context.Context, c *call) (reply, error) {
	var in struct {
		StockID           string `json:"stock_id"`
		OpenID            string `json:"openid"`
		OutRequestNo      string `json:"out_request_no"`
		AppID             string `json:"appid"`
		StockCreatorMchID string `json:"stock_creator_mchid"`
		CouponCode        string `json:"coupon_code"`
	}
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if in.StockID == "" || in.OpenID == "" {
		return reply{}, paramError("stock_id和openid必填")
	}
	if err := bfRequestNo("out_request_no", in.OutRequestNo, 128); err != nil {
		return reply{}, err
	}
	if err := bfBoundAppID(c.m.config(), in.AppID); err != nil {
		return reply{}, err
	}
	if in.StockCreatorMchID != "" && in.StockCreatorMchID != c.mchID {
		return reply{}, apiErr(http.StatusForbidden, "NO_AUTH", "stock_creator_mchid须为调用商户 (%s)", in.StockCreatorMchID)
	}
	now := s.Now()
	var notes []bfCouponSend
	c.m.mu.Lock()
	cp, _, err := c.m.busifavor.send(c.mchID, bfSendSpec{stockID: in.StockID, openid: in.OpenID, appid: in.AppID,
		outRequestNo: in.OutRequestNo, code: in.CouponCode, channel: bfChannelAPI, sender: c.mchID, notes: &notes}, now)
	c.m.mu.Unlock()
	if err != nil {
		return reply{}, err
	}
	s.queueCouponSends(ctx, notes)
	// S6 shows the answer flat; the SDK wraps it in send_coupon_result
	// (UNCONFIRMED which is current): the simulator answers flat.
	return reply{status: http.StatusOK, body: map[string]string{"stock_id": cp.stockID, "coupon_code": cp.code, "out_request_no": in.OutRequestNo}}, nil
}

func (s *Sim) bfFilterUserCoupons(_ context.Context, c *call) (reply, error) {
	if err := bfBoundAppID(c.m.config(), c.query.Get("appid")); err != nil {
		return reply{}, err
	}
	offset, limit, err := bfPage(c, 20, bfMaxPage)
	if err != nil {
		return reply{}, err
	}
	q := c.query
	state := q.Get("coupon_state")
	switch state {
	case "", bfCouponSended, bfCouponUsed, bfCouponExpired, bfCouponDeleted, bfCouponDeactivated:
	default:
		return reply{}, paramError("coupon_state取值错误 (%q)", state)
	}
	for _, f := range []string{"creator_merchant", "belong_merchant", "sender_merchant"} {
		if v := q.Get(f); v != "" && v != c.mchID {
			return reply{}, apiErr(http.StatusForbidden, "NO_AUTH", "%s须为调用商户号 (%s)", f, v)
		}
	}
	if q.Get("creator_merchant") == "" && q.Get("belong_merchant") == "" && q.Get("sender_merchant") == "" {
		return reply{}, paramError("creator_merchant、belong_merchant、sender_merchant至少填写一个")
	}
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	all := []bfCouponView{}
	for _, id := range st.stockOrder {
		if sid := q.Get("stock_id"); sid != "" && sid != id {
			continue
		}
		sk := st.stocks[id]
		var list []*bfCoupon
		for _, cp := range st.coupons {
			if cp.stockID == id && cp.openid == c.params["openid"] && (state == "" || cp.effectiveState(now) == state) {
				if sender := q.Get("sender_merchant"); sender != "" && cp.sender != sender {
					continue
				}
				list = append(list, cp)
			}
		}
		slices.SortFunc(list, func(a, b *bfCoupon) int { return a.received.Compare(b.received) })
		for _, cp := range list {
			all = append(all, cp.view(sk, now))
		}
	}
	data := []bfCouponView{}
	if offset < len(all) {
		data = all[offset:min(len(all), offset+limit)]
	}
	return reply{status: http.StatusOK, body: map[string]any{"data": data, "total_count": len(all), "limit": limit, "offset": offset}}, nil
}

func (s *Sim) bfGetUserCoupon(_ context.Context, c *call) (reply, error) {
	if err := bfBoundAppID(c.m.config(), c.params["appid"]); err != nil {
		return reply{}, err
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	for _, id := range st.stockOrder {
		if cp := st.coupons[id+"|"+c.params["coupon_code"]]; cp != nil && cp.openid == c.params["openid"] {
			return reply{status: http.StatusOK, body: cp.view(st.stocks[id], s.Now())}, nil
		}
	}
	return reply{}, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "用户券不存在 (openid %s coupon %s)", c.params["openid"], c.params["coupon_code"])
}

func (s *Sim) bfSetCallback(_ context.Context, c *call) (reply, error) {
	var in struct {
		MchID     string `json:"mchid"`
		NotifyURL string `json:"notify_url"`
	}
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if in.MchID != "" && in.MchID != c.mchID {
		return reply{}, apiErr(http.StatusForbidden, "NO_AUTH", "mchid须为调用商户号 (%s)", in.MchID)
	}
	if in.NotifyURL == "" {
		return reply{}, paramError("notify_url必填")
	}
	if err := checkNotifyURL(in.NotifyURL); err != nil {
		return reply{}, err
	}
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.m.busifavor.callbackURL, c.m.busifavor.callbackAt = in.NotifyURL, now
	return reply{status: http.StatusOK, body: map[string]string{"update_time": formatTime(now), "notify_url": in.NotifyURL, "mchid": c.mchID}}, nil
}

func (s *Sim) bfGetCallback(_ context.Context, c *call) (reply, error) {
	if m := c.query.Get("mchid"); m != "" && m != c.mchID {
		return reply{}, apiErr(http.StatusForbidden, "NO_AUTH", "mchid须为调用商户号 (%s)", m)
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.busifavor.callbackURL == "" {
		return reply{}, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "未设置商家券事件通知地址")
	}
	return reply{status: http.StatusOK, body: map[string]string{"notify_url": c.m.busifavor.callbackURL, "mchid": c.mchID}}, nil
}

// bfDescribe is a short description of a coupon for admin answers.
func bfDescribe(cp *bfCoupon) string {
	return fmt.Sprintf("stock %s coupon %s (%s)", cp.stockID, cp.code, cp.state)
}
