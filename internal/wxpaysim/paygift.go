package wxpaysim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Pay-gift activities (支付有礼, /v3/marketing/paygiftactivity),
// wechatpay-apiv3.md section 4. paygift_send.go sends the coupons when a
// qualifying payment happens.

// Activity statuses (activity_status).
const (
	pgCreated    = "CREATE_ACT_STATUS"
	pgOngoing    = "ONGOING_ACT_STATUS"
	pgTerminated = "TERMINATE_ACT_STATUS"
	pgOverTime   = "OVER_TIME_ACT_STATUS"
)

// pgMaxWindow: begin-to-end must be under 31,536,000 s (the pay-gift
// development guide FAQ; wechatpay-apiv3.md 4.2 notes the older 90-day
// wiki rule as UNCONFIRMED, so the simulator enforces only this bound).
const pgMaxWindow = 31_536_000 * time.Second

// paygiftState is one merchant's pay-gift activities; merchant.mu guards it.
type paygiftState struct {
	activities map[string]*pgActivity
	order      []string          // creation order
	createReqs map[string]bfIdem // out_request_no
	requests   map[string]bfIdem // add|no, delete|no
	gifted     map[string]bool   // activity_id|transaction_id
	sends      []PayGiftSend
}

func newPaygiftState() *paygiftState {
	return &paygiftState{activities: map[string]*pgActivity{}, createReqs: map[string]bfIdem{}, requests: map[string]bfIdem{},
		gifted: map[string]bool{}}
}

type pgBaseInfo struct {
	ActivityName        string          `json:"activity_name"`
	ActivitySecondTitle string          `json:"activity_second_title"`
	MerchantLogoURL     string          `json:"merchant_logo_url"`
	BackgroundColor     string          `json:"background_color,omitempty"`
	BeginTime           string          `json:"begin_time"`
	EndTime             string          `json:"end_time"`
	AvailablePeriods    json.RawMessage `json:"available_periods,omitempty"`
	OutRequestNo        string          `json:"out_request_no"`
	DeliveryPurpose     string          `json:"delivery_purpose"`
	MiniProgramsAppID   string          `json:"mini_programs_appid,omitempty"`
	MiniProgramsPath    string          `json:"mini_programs_path,omitempty"`
}

type pgAward struct {
	StockID          string `json:"stock_id"`
	OriginalImageURL string `json:"original_image_url"`
	ThumbnailURL     string `json:"thumbnail_url,omitempty"`
}

type pgFullSendRule struct {
	TransactionAmountMinimum int64     `json:"transaction_amount_minimum"`
	SendContent              string    `json:"send_content"`
	AwardType                string    `json:"award_type"`
	AwardList                []pgAward `json:"award_list"`
	MerchantOption           string    `json:"merchant_option"`
	MerchantIDList           []string  `json:"merchant_id_list,omitempty"`
}

type pgAdvanced struct {
	DeliveryUserCategory     string          `json:"delivery_user_category,omitempty"`
	MerchantMemberAppID      string          `json:"merchant_member_appid,omitempty"`
	PaymentMode              json.RawMessage `json:"payment_mode,omitempty"`
	PaymentMethodInformation json.RawMessage `json:"payment_method_information,omitempty"`
	GoodsTags                []string        `json:"goods_tags,omitempty"`
}

type pgCreateRequest struct {
	ActivityBaseInfo pgBaseInfo     `json:"activity_base_info"`
	AwardSendRule    pgFullSendRule `json:"award_send_rule"`
	AdvancedSetting  *pgAdvanced    `json:"advanced_setting,omitempty"`
}

// pgActivity is one activity.
type pgActivity struct {
	id         string
	req        pgCreateRequest
	creator    string
	belong     string // belong_merchant of the award stocks
	begin, end time.Time
	created    time.Time
	updated    time.Time
	terminated time.Time
	merchants  map[string]*pgMerchant
	mchOrder   []string
}

type pgMerchant struct {
	created, updated time.Time
	deleted          bool
}

func (a *pgActivity) status(now time.Time) string {
	switch {
	case !a.terminated.IsZero():
		return pgTerminated
	case now.Before(a.begin):
		return pgCreated
	case now.After(a.end):
		return pgOverTime
	}
	return pgOngoing
}

func (a *pgActivity) hasMerchant(mchID string) bool {
	m, ok := a.merchants[mchID]
	return ok && !m.deleted
}

// paygiftRoutes are the /v3/ routes of pay-gift activities.
func (s *Sim) paygiftRoutes() []route {
	const p = "/v3/marketing/paygiftactivity"
	get, post := http.MethodGet, http.MethodPost
	return []route{
		{method: post, pattern: p + "/unique-threshold-activity", handle: s.pgCreate},
		{method: get, pattern: p + "/activities/{activity_id}", handle: s.pgDetail},
		{method: get, pattern: p + "/activities/{activity_id}/merchants", handle: s.pgMerchants},
		{method: get, pattern: p + "/activities/{activity_id}/goods", handle: s.pgGoods},
		{method: post, pattern: p + "/activities/{activity_id}/terminate", handle: s.pgTerminate},
		{method: post, pattern: p + "/activities/{activity_id}/merchants/add", handle: s.pgChangeMerchants(true)},
		{method: get, pattern: p + "/activities", handle: s.pgList},
		{method: post, pattern: p + "/activities/{activity_id}/merchants/delete", handle: s.pgChangeMerchants(false)},
	}
}

// paygiftAdminRoutes are the user-side actions of pay-gift.
func (s *Sim) paygiftAdminRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodPost, "/sim/users/paygift", "check a paid order against pay-gift activities and send gifts {mchid,out_trade_no|transaction_id} (PayOrder does this itself)", s.adminPayGift},
		{http.MethodGet, "/sim/paygift/sends", "pay-gift coupon sends (?mchid= filters by activity creator)", s.adminPayGiftSends},
	}
}

// pgColor reports a background_color value: Color010, Color020 ... Color100.
func pgColor(c string) bool {
	for i := 1; i <= 10; i++ {
		if c == fmt.Sprintf("Color%03d", i*10) {
			return true
		}
	}
	return false
}

// validatePayGift checks a G1 body the way WeChat Pay does (4.2, the dev
// guide FAQ). st is the creator's busifavor state; merchant.mu must be held.
func validatePayGift(in *pgCreateRequest, st *busifavorState, now time.Time) (begin, end time.Time, belong string, err error) {
	b := in.ActivityBaseInfo
	fail := func(e error) (time.Time, time.Time, string, error) { return time.Time{}, time.Time{}, "", e }
	for _, ck := range []struct {
		field    string
		v        string
		min, max int
	}{{"activity_name", b.ActivityName, 1, 10}, {"activity_second_title", b.ActivitySecondTitle, 1, 9}, {"merchant_logo_url", b.MerchantLogoURL, 10, 128}} {
		if e := bfRunes(ck.field, ck.v, ck.min, ck.max); e != nil {
			return fail(e)
		}
	}
	if b.BackgroundColor != "" && !pgColor(b.BackgroundColor) {
		return fail(paramError("background_color取值错误 (%q, want Color010..Color100)", b.BackgroundColor))
	}
	if e := bfRequestNo("out_request_no", b.OutRequestNo, 128); e != nil {
		return fail(e)
	}
	if begin, err = bfParseTime("begin_time", b.BeginTime); err != nil {
		return fail(err)
	}
	if end, err = bfParseTime("end_time", b.EndTime); err != nil {
		return fail(err)
	}
	switch {
	case !begin.Before(end):
		return fail(paramError("begin_time须早于end_time"))
	case end.Sub(begin) >= pgMaxWindow:
		return fail(paramError("活动时间间隔须小于31536000秒 (%s)", end.Sub(begin)))
	case !end.After(now):
		return fail(paramError("end_time须晚于当前时间"))
	}
	switch b.DeliveryPurpose {
	case "OFF_LINE_PAY":
	case "JUMP_MINI_APP":
		if b.MiniProgramsAppID == "" || b.MiniProgramsPath == "" {
			return fail(paramError("投放目的为JUMP_MINI_APP时mini_programs_appid和mini_programs_path必填"))
		}
	default:
		return fail(paramError("delivery_purpose取值错误 (%q)", b.DeliveryPurpose))
	}
	r := in.AwardSendRule
	switch {
	case r.TransactionAmountMinimum < 1:
		return fail(paramError("transaction_amount_minimum须大于0"))
	case r.AwardType != "BUSIFAVOR":
		return fail(paramError("award_type仅支持BUSIFAVOR (%q)", r.AwardType))
	case r.SendContent == "SINGLE_COUPON" && len(r.AwardList) != 1:
		return fail(paramError("单张券award_list须为1个 (%d)", len(r.AwardList)))
	case r.SendContent == "GIFT_PACKAGE" && (len(r.AwardList) < 3 || len(r.AwardList) > 5):
		return fail(paramError("礼包award_list须为3-5个 (%d)", len(r.AwardList)))
	case r.SendContent != "SINGLE_COUPON" && r.SendContent != "GIFT_PACKAGE":
		return fail(paramError("send_content取值错误 (%q)", r.SendContent))
	case r.MerchantOption != "MANUAL_INPUT_MERCHANT":
		return fail(paramError("商家券仅支持MANUAL_INPUT_MERCHANT (%q)", r.MerchantOption))
	case len(r.MerchantIDList) == 0:
		return fail(paramError("merchant_id_list必填"))
	}
	var first *bfStock
	for i, aw := range r.AwardList {
		sk, ok := st.stocks[aw.StockID]
		switch {
		case !ok:
			return fail(apiErr(http.StatusBadRequest, "INVALID_REQUEST", "商家券信息不满足活动规则 (stock %s does not exist)", aw.StockID))
		case aw.OriginalImageURL == "":
			return fail(paramError("original_image_url必填"))
		case len(r.AwardList) > 1 && aw.ThumbnailURL == "":
			return fail(paramError("多张券时thumbnail_url必填"))
		case sk.begin.After(begin) || sk.end.Before(end):
			return fail(apiErr(http.StatusBadRequest, "INVALID_REQUEST", "商家券信息不满足活动规则，请核实券有效期或code (stock %s %s..%s does not cover the activity)",
				sk.id, formatTime(sk.begin), formatTime(sk.end)))
		case sk.info.CouponCodeMode == bfModeUpload && sk.availableCodes() == 0:
			return fail(apiErr(http.StatusBadRequest, "INVALID_REQUEST", "商家券信息不满足活动规则，请核实券有效期或code (stock %s has no uploaded code)", sk.id))
		}
		if i == 0 {
			first = sk
			continue
		}
		if sk.info.StockSendRule.MaxCoupons != first.info.StockSendRule.MaxCoupons ||
			sk.info.StockSendRule.MaxCouponsPerUser != first.info.StockSendRule.MaxCouponsPerUser ||
			sk.info.BelongMerchant != first.info.BelongMerchant {
			return fail(apiErr(http.StatusBadRequest, "INVALID_REQUEST", "礼包中批次的库存、限领和归属商户号须一致 (stock %s)", sk.id))
		}
	}
	if a := in.AdvancedSetting; a != nil {
		switch {
		case a.DeliveryUserCategory != "" && a.DeliveryUserCategory != "DELIVERY_ALL_PERSON" && a.DeliveryUserCategory != "DELIVERY_MEMBER_PERSON":
			return fail(paramError("delivery_user_category取值错误 (%q)", a.DeliveryUserCategory))
		case a.DeliveryUserCategory == "DELIVERY_MEMBER_PERSON" && a.MerchantMemberAppID == "":
			return fail(paramError("会员活动merchant_member_appid必填"))
		case len(a.PaymentMode) > 0 || len(a.PaymentMethodInformation) > 0:
			return fail(paramError("商家券活动暂不支持payment_mode和payment_method_information"))
		case len(a.GoodsTags) > 500:
			return fail(paramError("goods_tags最多500个"))
		}
	}
	return begin, end, first.info.BelongMerchant, nil
}

func (s *Sim) pgCreate(_ context.Context, c *call) (reply, error) {
	var in pgCreateRequest
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	id, err := randomString(9, digits)
	if err != nil {
		return reply{}, err
	}
	id = "1" + id
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	pg := c.m.paygift
	if prev, ok := pg.createReqs[in.ActivityBaseInfo.OutRequestNo]; ok && in.ActivityBaseInfo.OutRequestNo != "" {
		if prev.digest != digest {
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "out_request_no已使用，且请求参数不一致 (%s)", in.ActivityBaseInfo.OutRequestNo)
		}
		return prev.answer, nil
	}
	begin, end, belong, err := validatePayGift(&in, c.m.busifavor, now)
	if err != nil {
		return reply{}, err
	}
	a := &pgActivity{id: id, req: in, creator: c.mchID, belong: belong, begin: begin, end: end, created: now, updated: now,
		merchants: map[string]*pgMerchant{}}
	for _, mch := range in.AwardSendRule.MerchantIDList {
		if _, dup := a.merchants[mch]; !dup {
			a.merchants[mch] = &pgMerchant{created: now, updated: now}
			a.mchOrder = append(a.mchOrder, mch)
		}
	}
	pg.activities[id] = a
	pg.order = append(pg.order, id)
	r := reply{status: http.StatusOK, body: map[string]string{"activity_id": id, "create_time": formatTime(now)}}
	pg.createReqs[in.ActivityBaseInfo.OutRequestNo] = bfIdem{digest: digest, answer: r, target: id}
	return r, nil
}

// pgView is an activity as G2 and G7 answer it: merchant_id_list only
// comes from G3 (the dev guide FAQ).
type pgView struct {
	ActivityID      string      `json:"activity_id"`
	ActivityType    string      `json:"activity_type"`
	ActivityBase    pgBaseInfo  `json:"activity_base_info"`
	AwardSendRule   any         `json:"award_send_rule"`
	AdvancedSetting *pgAdvanced `json:"advanced_setting,omitempty"`
	ActivityStatus  string      `json:"activity_status"`
	CreatorMchID    string      `json:"creator_merchant_id"`
	BelongMchID     string      `json:"belong_merchant_id"`
	CreateTime      string      `json:"create_time"`
	UpdateTime      string      `json:"update_time"`
}

func (a *pgActivity) view(now time.Time) pgView {
	rule := a.req.AwardSendRule
	rule.MerchantIDList = nil
	return pgView{ActivityID: a.id, ActivityType: "FULL_SEND_ACT_TYPE", ActivityBase: a.req.ActivityBaseInfo,
		AwardSendRule: map[string]any{"full_send_rule": rule}, AdvancedSetting: a.req.AdvancedSetting,
		ActivityStatus: a.status(now), CreatorMchID: a.creator, BelongMchID: a.belong,
		CreateTime: formatTime(a.created), UpdateTime: formatTime(a.updated)}
}

func pgNotFound(id string) error {
	return apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "活动不存在 (activity %s)", id)
}

// activity returns one of the caller's activities. merchant.mu must be held.
func (c *call) pgActivity() (*pgActivity, error) {
	a, ok := c.m.paygift.activities[c.params["activity_id"]]
	if !ok {
		return nil, pgNotFound(c.params["activity_id"])
	}
	return a, nil
}

func (s *Sim) pgDetail(_ context.Context, c *call) (reply, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	a, err := c.pgActivity()
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: a.view(s.Now())}, nil
}

// pgPage reads offset (a 0-based page number, the dev guide: "分页页码，
// 页面从0开始") and limit (1..100, default 10).
func pgPage(c *call, required bool) (int, int, error) {
	if required && (c.query.Get("offset") == "" || c.query.Get("limit") == "") {
		return 0, 0, paramError("offset和limit必填")
	}
	return bfPage(c, 10, 100)
}

func pgSlice[T any](all []T, page, limit int) []T {
	from := page * limit
	if from >= len(all) {
		return []T{}
	}
	return all[from:min(len(all), from+limit)]
}

func (s *Sim) pgMerchants(_ context.Context, c *call) (reply, error) {
	page, limit, err := pgPage(c, false)
	if err != nil {
		return reply{}, err
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	a, err := c.pgActivity()
	if err != nil {
		return reply{}, err
	}
	type item struct {
		MchID        string `json:"mchid"`
		MerchantName string `json:"merchant_name"`
		CreateTime   string `json:"create_time"`
		UpdateTime   string `json:"update_time"`
	}
	all := []item{}
	for _, mch := range a.mchOrder {
		if pm := a.merchants[mch]; !pm.deleted {
			all = append(all, item{MchID: mch, MerchantName: "模拟商户" + mch, CreateTime: formatTime(pm.created), UpdateTime: formatTime(pm.updated)})
		}
	}
	return reply{status: http.StatusOK, body: map[string]any{"data": pgSlice(all, page, limit), "total_count": len(all),
		"offset": page, "limit": limit, "activity_id": a.id}}, nil
}

func (s *Sim) pgGoods(_ context.Context, c *call) (reply, error) {
	page, limit, err := pgPage(c, false)
	if err != nil {
		return reply{}, err
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	a, err := c.pgActivity()
	if err != nil {
		return reply{}, err
	}
	type item struct {
		GoodsID    string `json:"goods_id"`
		CreateTime string `json:"create_time"`
		UpdateTime string `json:"update_time"`
	}
	all := []item{}
	if a.req.AdvancedSetting != nil {
		for _, g := range a.req.AdvancedSetting.GoodsTags {
			all = append(all, item{GoodsID: g, CreateTime: formatTime(a.created), UpdateTime: formatTime(a.created)})
		}
	}
	return reply{status: http.StatusOK, body: map[string]any{"data": pgSlice(all, page, limit), "total_count": len(all),
		"offset": page, "limit": limit, "activity_id": a.id}}, nil
}

func (s *Sim) pgTerminate(_ context.Context, c *call) (reply, error) {
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	a, err := c.pgActivity()
	if err != nil {
		return reply{}, err
	}
	if st := a.status(now); st != pgCreated && st != pgOngoing {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "活动状态不允许终止 (activity %s is %s)", a.id, st)
	}
	a.terminated, a.updated = now, now
	return reply{status: http.StatusOK, body: map[string]string{"activity_id": a.id, "terminate_time": formatTime(now)}}, nil
}

func (s *Sim) pgChangeMerchants(add bool) handlerFunc {
	kind, noField, timeField := "add", "add_request_no", "add_time"
	if !add {
		kind, noField, timeField = "delete", "delete_request_no", "delete_time"
	}
	return func(_ context.Context, c *call) (reply, error) {
		var in struct {
			MerchantIDList  []string `json:"merchant_id_list"`
			AddRequestNo    string   `json:"add_request_no"`
			DeleteRequestNo string   `json:"delete_request_no"`
		}
		if err := c.decode(&in); err != nil {
			return reply{}, err
		}
		no := in.AddRequestNo
		if !add {
			no = in.DeleteRequestNo
		}
		if err := bfRequestNo(noField, no, 128); err != nil {
			return reply{}, err
		}
		if len(in.MerchantIDList) == 0 {
			return reply{}, paramError("merchant_id_list必填")
		}
		digest, err := canonicalJSON(c.body)
		if err != nil {
			return reply{}, paramError("请求体格式错误 (%v)", err)
		}
		digest = c.params["activity_id"] + " " + digest
		now := s.Now()
		c.m.mu.Lock()
		defer c.m.mu.Unlock()
		pg := c.m.paygift
		if prev, ok := pg.requests[kind+"|"+no]; ok {
			if prev.digest != digest {
				return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "%s已使用，且请求参数不一致 (%s)", noField, no)
			}
			return prev.answer, nil
		}
		a, err := c.pgActivity()
		if err != nil {
			return reply{}, err
		}
		if st := a.status(now); st != pgCreated && st != pgOngoing {
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "活动状态不允许修改发券商户号 (activity %s is %s)", a.id, st)
		}
		type invalid struct {
			MchID         string `json:"mchid"`
			InvalidReason string `json:"invalid_reason"`
		}
		bad := []invalid{}
		for _, mch := range in.MerchantIDList {
			valid := mch != "" && strings.Trim(mch, digits) == ""
			switch {
			case !valid:
				bad = append(bad, invalid{mch, "商户号格式错误"})
			case add && a.hasMerchant(mch):
				bad = append(bad, invalid{mch, "商户号已存在"})
			case add:
				if _, had := a.merchants[mch]; !had {
					a.mchOrder = append(a.mchOrder, mch)
				}
				a.merchants[mch] = &pgMerchant{created: now, updated: now}
			case !a.hasMerchant(mch):
				bad = append(bad, invalid{mch, "商户号不在活动中"})
			default:
				a.merchants[mch].deleted, a.merchants[mch].updated = true, now
			}
		}
		a.updated = now
		body := map[string]any{"activity_id": a.id, timeField: formatTime(now)}
		if add {
			body["invalid_merchant_id_list"] = bad
		}
		r := reply{status: http.StatusOK, body: body}
		pg.requests[kind+"|"+no] = bfIdem{digest: digest, answer: r, target: a.id}
		return r, nil
	}
}

func (s *Sim) pgList(_ context.Context, c *call) (reply, error) {
	page, limit, err := pgPage(c, true)
	if err != nil {
		return reply{}, err
	}
	q := c.query
	name, status, award := q.Get("activity_name"), q.Get("activity_status"), q.Get("award_type")
	if err := bfRunes("activity_name", name, 0, 10); err != nil {
		return reply{}, err
	}
	if award != "" && award != "BUSIFAVOR" {
		return reply{}, paramError("award_type仅支持BUSIFAVOR (%q)", award)
	}
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	all := []pgView{}
	for _, id := range c.m.paygift.order {
		a := c.m.paygift.activities[id]
		if (name != "" && !strings.Contains(a.req.ActivityBaseInfo.ActivityName, name)) || (status != "" && a.status(now) != status) {
			continue
		}
		all = append(all, a.view(now))
	}
	return reply{status: http.StatusOK, body: map[string]any{"data": pgSlice(all, page, limit), "total_count": len(all),
		"offset": page, "limit": limit}}, nil
}

// qualifies reports whether a payment earns an activity's gift.
// merchant.mu (the creator's) must be held.
func (a *pgActivity) qualifies(payMchID string, total int64, goodsTag string, now time.Time) bool {
	if a.status(now) != pgOngoing || !a.hasMerchant(payMchID) || total < a.req.AwardSendRule.TransactionAmountMinimum {
		return false
	}
	if adv := a.req.AdvancedSetting; adv != nil {
		// The simulator knows no memberships: member-only activities never fire.
		if adv.DeliveryUserCategory == "DELIVERY_MEMBER_PERSON" {
			return false
		}
		if len(adv.GoodsTags) > 0 && !slices.Contains(adv.GoodsTags, goodsTag) {
			return false
		}
	}
	return true
}
