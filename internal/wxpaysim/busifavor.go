package wxpaysim

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Merchant coupons (商家券, /v3/marketing/busifavor), wechatpay-apiv3.md
// section 3. This file holds the state and the stock endpoints (B1-B8);
// busifavor_coupons.go the user-coupon endpoints (B9-B18) and sending;
// busifavor_claim.go the user-side admin actions (plugin claim).
//
// Error codes: WeChat Pay documents PARAM_ERROR / INVALID_REQUEST / NO_AUTH /
// RESOURCE_NOT_EXISTS for these APIs but not one code per business rule, so
// the simulator answers those generic codes with a specific message
// (UNCONFIRMED: the real per-rule codes).

// Coupon states (coupon_state), stock states (stock_state) and uploaded
// code states (code_status), wechatpay-apiv3.md 3.3.
const (
	bfCouponSended      = "SENDED"
	bfCouponUsed        = "USED"
	bfCouponExpired     = "EXPIRED"
	bfCouponDeleted     = "DELETED"
	bfCouponDeactivated = "DEACTIVATED"

	bfStockRunning = "RUNNING"
	bfStockStopped = "STOPED" // spelling as WeChat Pay has it

	bfCodeAvailable  = "AVAILABLE"
	bfCodeDispatched = "DISPATCHED"
)

// Coupon code modes.
const (
	bfModeWechat = "WECHATPAY_MODE"
	bfModeAPI    = "MERCHANT_API"
	bfModeUpload = "MERCHANT_UPLOAD"
)

// busifavorState is one merchant's merchant-coupon state; merchant.mu
// guards it.
type busifavorState struct {
	apiv2Key    string // plugin sign key (SetAPIv2Key); survives Reset
	stocks      map[string]*bfStock
	stockOrder  []string
	createReqs  map[string]bfIdem    // out_request_no of B1
	requests    map[string]bfIdem    // kind|request number of B3-B16
	coupons     map[string]*bfCoupon // stock_id|coupon_code
	sends       map[string]*bfCoupon // stock_id|openid|out_request_no
	callbackURL string
	callbackAt  time.Time
	// lose counts, per route pattern, answers to replace with a 500 after
	// the request took effect (LoseAnswers).
	lose map[string]int
}

// bfIdem remembers a request number's body digest and its answer.
type bfIdem struct {
	digest string
	answer reply
	target string // the stock or coupon the number acted on
}

// reset returns the state after Sim.Reset: everything but the APIv2 key
// (merchant configuration) is forgotten. A nil receiver starts fresh.
func (st *busifavorState) reset() *busifavorState {
	n := &busifavorState{stocks: map[string]*bfStock{}, createReqs: map[string]bfIdem{}, requests: map[string]bfIdem{},
		coupons: map[string]*bfCoupon{}, sends: map[string]*bfCoupon{}, lose: map[string]int{}}
	if st != nil {
		n.apiv2Key = st.apiv2Key
	}
	return n
}

// idem checks a request number: a replay with the same digest returns the
// stored answer, a different digest is an error, an unknown number is
// (reply{}, false, nil).
func (st *busifavorState) idem(kind, no, digest string) (reply, bool, error) {
	prev, ok := st.requests[kind+"|"+no]
	if !ok {
		return reply{}, false, nil
	}
	if prev.digest != digest {
		return reply{}, false, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "请求单号%s已使用，且请求参数不一致 (%s request number reused with a different body)", no, kind)
	}
	return prev.answer, true, nil
}

func (st *busifavorState) remember(kind, no, digest, target string, r reply) reply {
	st.requests[kind+"|"+no] = bfIdem{digest: digest, answer: r, target: target}
	return r
}

// bfTimeWindow is coupon_available_time.
type bfTimeWindow struct {
	AvailableBeginTime       string          `json:"available_begin_time"`
	AvailableEndTime         string          `json:"available_end_time"`
	AvailableDayAfterReceive int             `json:"available_day_after_receive,omitempty"`
	AvailableWeek            json.RawMessage `json:"available_week,omitempty"`
	IrregularyAvaliableTime  json.RawMessage `json:"irregulary_avaliable_time,omitempty"`
	WaitDaysAfterReceive     int             `json:"wait_days_after_receive,omitempty"`
}

type bfNormal struct {
	DiscountAmount     int64 `json:"discount_amount"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

type bfDiscount struct {
	DiscountPercent    int64 `json:"discount_percent"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

type bfExchange struct {
	ExchangePrice      int64 `json:"exchange_price"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

type bfUseRule struct {
	CouponAvailableTime *bfTimeWindow `json:"coupon_available_time,omitempty"`
	FixedNormalCoupon   *bfNormal     `json:"fixed_normal_coupon,omitempty"`
	DiscountCoupon      *bfDiscount   `json:"discount_coupon,omitempty"`
	ExchangeCoupon      *bfExchange   `json:"exchange_coupon,omitempty"`
	UseMethod           string        `json:"use_method"`
	MiniProgramsAppID   string        `json:"mini_programs_appid,omitempty"`
	MiniProgramsPath    string        `json:"mini_programs_path,omitempty"`
}

type bfSendRule struct {
	MaxCoupons         int64 `json:"max_coupons"`
	MaxCouponsPerUser  int64 `json:"max_coupons_per_user"`
	MaxCouponsByDay    int64 `json:"max_coupons_by_day,omitempty"`
	NaturalPersonLimit bool  `json:"natural_person_limit"`
	PreventAPIAbuse    bool  `json:"prevent_api_abuse"`
	Transferable       bool  `json:"transferable"`
	Shareable          bool  `json:"shareable"`
}

type bfNotifyConfig struct {
	NotifyAppID string `json:"notify_appid,omitempty"`
}

// bfStockInfo is the B1 body as the stock keeps it (B2 answers it back).
type bfStockInfo struct {
	StockName          string          `json:"stock_name"`
	BelongMerchant     string          `json:"belong_merchant"`
	Comment            string          `json:"comment,omitempty"`
	GoodsName          string          `json:"goods_name"`
	StockType          string          `json:"stock_type"`
	CouponUseRule      bfUseRule       `json:"coupon_use_rule"`
	StockSendRule      bfSendRule      `json:"stock_send_rule"`
	OutRequestNo       string          `json:"out_request_no,omitempty"`
	CustomEntrance     json.RawMessage `json:"custom_entrance,omitempty"`
	DisplayPatternInfo json.RawMessage `json:"display_pattern_info,omitempty"`
	CouponCodeMode     string          `json:"coupon_code_mode"`
	NotifyConfig       *bfNotifyConfig `json:"notify_config,omitempty"`
	Subsidy            bool            `json:"subsidy,omitempty"`
}

// bfStock is one stock (批次).
type bfStock struct {
	id      string
	info    bfStockInfo
	created time.Time
	begin   time.Time
	end     time.Time
	// Code pool (MERCHANT_UPLOAD), in upload order.
	codes     map[string]*bfCode
	codeOrder []string
	// Send counters.
	sent       int64
	sentAmount int64
	sentByDay  map[string]int64
	sentByUser map[string]int64
}

// bfCode is one uploaded code.
type bfCode struct {
	code       string
	status     string
	uploaded   time.Time
	dispatched time.Time
	openid     string
	deleted    bool
}

func (sk *bfStock) state(now time.Time) string {
	if now.After(sk.end) {
		return bfStockStopped
	}
	return bfStockRunning
}

// discount is the face value a stock's coupon takes off (NORMAL only; the
// others depend on the order).
func (sk *bfStock) discount() int64 {
	if r := sk.info.CouponUseRule.FixedNormalCoupon; r != nil {
		return r.DiscountAmount
	}
	return 0
}

func (sk *bfStock) availableCodes() int64 {
	var n int64
	for _, c := range sk.codes {
		if !c.deleted && c.status == bfCodeAvailable {
			n++
		}
	}
	return n
}

func (sk *bfStock) uploadedCodes() int64 {
	var n int64
	for _, c := range sk.codes {
		if !c.deleted {
			n++
		}
	}
	return n
}

// busifavorRoutes are the /v3/ routes of merchant coupons.
func (s *Sim) busifavorRoutes() []route {
	get, post, patch, del := http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
	const p = "/v3/marketing/busifavor"
	routes := []route{
		{method: post, pattern: p + "/stocks", handle: s.bfCreateStock},
		{method: get, pattern: p + "/stocks/{stock_id}", handle: s.bfGetStock},
		{method: patch, pattern: p + "/stocks/{stock_id}", handle: s.bfModifyStock},
		{method: patch, pattern: p + "/stocks/{stock_id}/budget", handle: s.bfModifyBudget},
		{method: post, pattern: p + "/stocks/{stock_id}/couponcodes", handle: s.bfUploadCodes},
		{method: get, pattern: p + "/stocks/{stock_id}/couponcodes", handle: s.bfListCodes},
		{method: get, pattern: p + "/stocks/{stock_id}/couponcodes/{coupon_code}", handle: s.bfGetCode},
		{method: del, pattern: p + "/stocks/{stock_id}/couponcodes/{coupon_code}", handle: s.bfDeleteCode},
		{method: post, pattern: p + "/coupons/use", handle: s.bfUse},
		{method: post, pattern: p + "/coupons/send", handle: s.bfSendAPI},
		{method: post, pattern: p + "/coupons/associate", handle: s.bfAssociate(true)},
		{method: post, pattern: p + "/coupons/disassociate", handle: s.bfAssociate(false)},
		{method: post, pattern: p + "/coupons/return", handle: s.bfReturn},
		{method: post, pattern: p + "/coupons/deactivate", handle: s.bfDeactivate},
		{method: get, pattern: p + "/users/{openid}/coupons", handle: s.bfFilterUserCoupons},
		{method: get, pattern: p + "/users/{openid}/coupons/{coupon_code}/appids/{appid}", handle: s.bfGetUserCoupon},
		{method: post, pattern: p + "/callbacks", handle: s.bfSetCallback},
		{method: get, pattern: p + "/callbacks", handle: s.bfGetCallback},
	}
	for i := range routes {
		routes[i].handle = s.bfLossy(routes[i].pattern, routes[i].handle)
	}
	return routes
}

// bfLossy runs a route and, when LoseAnswers armed its pattern, replaces
// the successful answer with a 500: the request took effect but the
// merchant never learns it (a lost answer, which only the request number
// makes safe to retry).
func (s *Sim) bfLossy(pattern string, h handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (reply, error) {
		r, err := h(ctx, c)
		if err != nil {
			return r, err
		}
		c.m.mu.Lock()
		n := c.m.busifavor.lose[pattern]
		if n > 0 {
			c.m.busifavor.lose[pattern] = n - 1
		}
		c.m.mu.Unlock()
		if n > 0 {
			return reply{}, apiErr(http.StatusInternalServerError, "SYSTEM_ERROR", "系统错误 (injected after the request took effect)")
		}
		return r, nil
	}
}

// busifavorAdminRoutes are the user-side actions of merchant coupons.
func (s *Sim) busifavorAdminRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodPost, "/sim/busifavor/apiv2-key", "register a merchant's APIv2 key for plugin signs {mchid,apiv2_key}", s.adminBusifavorKey},
		{http.MethodPost, "/sim/busifavor/lose-answers", "answer 500 after the next count requests of a merchant-coupon route took effect {mchid,pattern,count}", s.adminBusifavorLose},
		{http.MethodPost, "/sim/users/busifavor/claim", "a user claims coupons in the mini-program plugin {openid,appid,send_coupon_merchant,send_coupon_params,sign}", s.adminBusifavorClaim},
		{http.MethodPost, "/sim/users/busifavor/delete", "a user deletes a coupon from the card bag {mchid,stock_id,coupon_code,openid}", s.adminBusifavorDelete},
	}
}

// bfStockNotFound is the answer for an unknown stock.
func bfStockNotFound(id string) error {
	return apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "批次不存在 (stock %s)", id)
}

// bfRunes checks a string's length in characters.
func bfRunes(field, v string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(v)
	if n < minLen || n > maxLen {
		return paramError("%s长度不合法 (%s has %d characters, want %d..%d)", field, field, n, minLen, maxLen)
	}
	return nil
}

// bfParseTime parses an RFC 3339 time.
func bfParseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, paramError("%s格式错误，应为RFC3339 (%s %q: %v)", field, field, v, err)
	}
	return t, nil
}

// bfRequestNo checks a request number: 1..maxLen of [0-9A-Za-z_|*-].
func bfRequestNo(field, v string, maxLen int) error {
	if v == "" || len(v) > maxLen {
		return paramError("%s必填且不超过%d个字符 (%s %q)", field, maxLen, field, v)
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("_|*-", r)) {
			return paramError("%s包含非法字符 (%s %q: only letters, digits and _|*-)", field, field, v)
		}
	}
	return nil
}

// validateStockInfo checks a B1 body the way WeChat Pay does (3.2).
func validateStockInfo(in *bfStockInfo, caller string, cfg MerchantConfig, now time.Time) (time.Time, time.Time, error) {
	var zero time.Time
	if err := bfRunes("stock_name", in.StockName, 1, 21); err != nil {
		return zero, zero, err
	}
	if err := bfRunes("goods_name", in.GoodsName, 1, 15); err != nil {
		return zero, zero, err
	}
	if err := bfRunes("comment", in.Comment, 0, 20); err != nil {
		return zero, zero, err
	}
	if in.BelongMerchant != caller {
		return zero, zero, apiErr(http.StatusForbidden, "NO_AUTH", "批次归属商户号与调用商户号不一致 (belong_merchant %s, caller %s)", in.BelongMerchant, caller)
	}
	if err := bfRequestNo("out_request_no", in.OutRequestNo, 128); err != nil {
		return zero, zero, err
	}
	r := in.CouponUseRule
	rules := 0
	for _, set := range []bool{r.FixedNormalCoupon != nil, r.DiscountCoupon != nil, r.ExchangeCoupon != nil} {
		if set {
			rules++
		}
	}
	fen := func(field string, v, lo int64) error {
		if v < lo || v > 10_000_000 {
			return paramError("%s取值范围错误 (%s %d, want %d..10000000)", field, field, v, lo)
		}
		return nil
	}
	var err error
	switch {
	case rules != 1:
		return zero, zero, paramError("fixed_normal_coupon、discount_coupon、exchange_coupon必须且只能填写一个 (%d given)", rules)
	case in.StockType == "NORMAL" && r.FixedNormalCoupon != nil:
		if err = fen("discount_amount", r.FixedNormalCoupon.DiscountAmount, 1); err == nil {
			err = fen("transaction_minimum", r.FixedNormalCoupon.TransactionMinimum, 1)
		}
	case in.StockType == "DISCOUNT" && r.DiscountCoupon != nil:
		if r.DiscountCoupon.DiscountPercent < 1 || r.DiscountCoupon.DiscountPercent > 99 {
			err = paramError("discount_percent取值范围错误 (%d, want 1..99)", r.DiscountCoupon.DiscountPercent)
		} else {
			err = fen("transaction_minimum", r.DiscountCoupon.TransactionMinimum, 1)
		}
	case in.StockType == "EXCHANGE" && r.ExchangeCoupon != nil:
		if err = fen("exchange_price", r.ExchangeCoupon.ExchangePrice, 0); err == nil {
			err = fen("transaction_minimum", r.ExchangeCoupon.TransactionMinimum, 1)
		}
	default:
		err = paramError("stock_type(%s)与券规则不匹配 (stock_type must be NORMAL, DISCOUNT or EXCHANGE with its rule object)", in.StockType)
	}
	if err != nil {
		return zero, zero, err
	}
	switch r.UseMethod {
	case "OFF_LINE", "PAYMENT_CODE", "SELF_CONSUME":
	case "MINI_PROGRAMS":
		if r.MiniProgramsAppID == "" || r.MiniProgramsPath == "" {
			return zero, zero, paramError("核销方式为MINI_PROGRAMS时mini_programs_appid和mini_programs_path必填")
		}
	default:
		return zero, zero, paramError("use_method取值错误 (%q)", r.UseMethod)
	}
	w := r.CouponAvailableTime
	if w == nil {
		return zero, zero, paramError("coupon_available_time必填")
	}
	begin, err := bfParseTime("available_begin_time", w.AvailableBeginTime)
	if err != nil {
		return zero, zero, err
	}
	end, err := bfParseTime("available_end_time", w.AvailableEndTime)
	if err != nil {
		return zero, zero, err
	}
	switch {
	case !begin.Before(end):
		return zero, zero, paramError("available_begin_time须早于available_end_time")
	case begin.After(now.AddDate(1, 0, 0)):
		return zero, zero, paramError("批次开始时间不能晚于一年后 (available_begin_time %s)", w.AvailableBeginTime)
	case !end.After(now):
		return zero, zero, paramError("available_end_time须晚于当前时间")
	case w.WaitDaysAfterReceive > 30 || w.WaitDaysAfterReceive < 0:
		return zero, zero, paramError("wait_days_after_receive取值范围0..30 (%d)", w.WaitDaysAfterReceive)
	case w.WaitDaysAfterReceive > 0 && w.AvailableDayAfterReceive == 0:
		return zero, zero, paramError("wait_days_after_receive须与available_day_after_receive同时填写")
	}
	sr := in.StockSendRule
	switch {
	case sr.MaxCoupons < 1 || sr.MaxCoupons > 1_000_000_000:
		return zero, zero, paramError("max_coupons取值范围1..1000000000 (%d)", sr.MaxCoupons)
	case sr.MaxCouponsPerUser < 1 || sr.MaxCouponsPerUser > 100:
		return zero, zero, paramError("max_coupons_per_user取值范围1..100 (%d)", sr.MaxCouponsPerUser)
	case sr.MaxCouponsByDay < 0 || sr.MaxCouponsByDay > 1_000_000_000:
		return zero, zero, paramError("max_coupons_by_day取值范围1..1000000000 (%d)", sr.MaxCouponsByDay)
	}
	switch in.CouponCodeMode {
	case bfModeWechat, bfModeAPI, bfModeUpload:
	default:
		return zero, zero, paramError("coupon_code_mode取值错误 (%q)", in.CouponCodeMode)
	}
	if in.NotifyConfig != nil && in.NotifyConfig.NotifyAppID != "" && !slices.Contains(cfg.AppIDs, in.NotifyConfig.NotifyAppID) {
		return zero, zero, apiErr(http.StatusBadRequest, "APPID_MCHID_NOT_MATCH", "notify_appid与商户号无绑定关系 (%s)", in.NotifyConfig.NotifyAppID)
	}
	return begin, end, nil
}

// newBusifavorStockID is a WeChat-shaped stock id: 10..11 digits.
func newBusifavorStockID() (string, error) {
	tail, err := randomString(9, digits)
	if err != nil {
		return "", err
	}
	return "12" + tail, nil
}

func (s *Sim) bfCreateStock(_ context.Context, c *call) (reply, error) {
	var in bfStockInfo
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	now := s.Now()
	begin, end, err := validateStockInfo(&in, c.mchID, c.m.config(), now)
	if err != nil {
		return reply{}, err
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	id, err := newBusifavorStockID()
	if err != nil {
		return reply{}, err
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if prev, ok := st.createReqs[in.OutRequestNo]; ok {
		if prev.digest != digest {
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "out_request_no已使用，且请求参数不一致 (%s)", in.OutRequestNo)
		}
		return prev.answer, nil
	}
	sk := &bfStock{id: id, info: in, created: now, begin: begin, end: end, codes: map[string]*bfCode{},
		sentByDay: map[string]int64{}, sentByUser: map[string]int64{}}
	st.stocks[id] = sk
	st.stockOrder = append(st.stockOrder, id)
	r := reply{status: http.StatusOK, body: map[string]string{"stock_id": id, "create_time": formatTime(now)}}
	st.createReqs[in.OutRequestNo] = bfIdem{digest: digest, answer: r, target: id}
	return r, nil
}

// bfStockView is the B2 answer.
type bfStockView struct {
	bfStockInfo
	StockID         string `json:"stock_id"`
	StockState      string `json:"stock_state"`
	CouponCodeCount *struct {
		TotalCount     int64 `json:"total_count"`
		AvailableCount int64 `json:"available_count"`
	} `json:"coupon_code_count,omitempty"`
	SendCountInformation struct {
		TotalSendNum    int64 `json:"total_send_num"`
		TotalSendAmount int64 `json:"total_send_amount"`
		TodaySendNum    int64 `json:"today_send_num"`
		TodaySendAmount int64 `json:"today_send_amount"`
	} `json:"send_count_information"`
}

// view renders a stock. merchant.mu must be held.
func (sk *bfStock) view(now time.Time) bfStockView {
	v := bfStockView{bfStockInfo: sk.info, StockID: sk.id, StockState: sk.state(now)}
	v.OutRequestNo = ""
	if sk.info.CouponCodeMode == bfModeUpload {
		v.CouponCodeCount = &struct {
			TotalCount     int64 `json:"total_count"`
			AvailableCount int64 `json:"available_count"`
		}{sk.uploadedCodes(), sk.availableCodes()}
	}
	today := sk.sentByDay[bfDay(now)]
	v.SendCountInformation.TotalSendNum = sk.sent
	v.SendCountInformation.TotalSendAmount = sk.sentAmount
	v.SendCountInformation.TodaySendNum = today
	v.SendCountInformation.TodaySendAmount = today * sk.discount()
	return v
}

// bfDay is the Shanghai date of t.
func bfDay(t time.Time) string { return t.In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly) }

// stock returns a stock of the caller. merchant.mu must be held.
func (c *call) bfStock(id string) (*bfStock, error) {
	sk, ok := c.m.busifavor.stocks[id]
	if !ok {
		return nil, bfStockNotFound(id)
	}
	return sk, nil
}

func (s *Sim) bfGetStock(_ context.Context, c *call) (reply, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	sk, err := c.bfStock(c.params["stock_id"])
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: sk.view(s.Now())}, nil
}

// bfModifyRequest is the B3 body.
type bfModifyRequest struct {
	OutRequestNo       string          `json:"out_request_no"`
	CustomEntrance     json.RawMessage `json:"custom_entrance,omitempty"`
	StockName          *string         `json:"stock_name,omitempty"`
	Comment            *string         `json:"comment,omitempty"`
	GoodsName          *string         `json:"goods_name,omitempty"`
	DisplayPatternInfo json.RawMessage `json:"display_pattern_info,omitempty"`
	CouponUseRule      *struct {
		UseMethod         string `json:"use_method"`
		MiniProgramsAppID string `json:"mini_programs_appid"`
		MiniProgramsPath  string `json:"mini_programs_path"`
	} `json:"coupon_use_rule,omitempty"`
	StockSendRule *struct {
		NaturalPersonLimit *bool `json:"natural_person_limit"`
		PreventAPIAbuse    *bool `json:"prevent_api_abuse"`
	} `json:"stock_send_rule,omitempty"`
	NotifyConfig *bfNotifyConfig `json:"notify_config,omitempty"`
}

func (s *Sim) bfModifyStock(_ context.Context, c *call) (reply, error) {
	var in bfModifyRequest
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if err := bfRequestNo("out_request_no", in.OutRequestNo, 128); err != nil {
		return reply{}, err
	}
	checks := []struct {
		field    string
		v        *string
		min, max int
	}{{"stock_name", in.StockName, 1, 21}, {"comment", in.Comment, 0, 20}, {"goods_name", in.GoodsName, 1, 15}}
	for _, ck := range checks {
		if ck.v != nil {
			if err := bfRunes(ck.field, *ck.v, ck.min, ck.max); err != nil {
				return reply{}, err
			}
		}
	}
	if u := in.CouponUseRule; u != nil {
		switch u.UseMethod {
		case "OFF_LINE", "PAYMENT_CODE", "SELF_CONSUME":
		case "MINI_PROGRAMS":
			if u.MiniProgramsAppID == "" || u.MiniProgramsPath == "" {
				return reply{}, paramError("核销方式为MINI_PROGRAMS时mini_programs_appid和mini_programs_path必填")
			}
		default:
			return reply{}, paramError("use_method取值错误 (%q)", u.UseMethod)
		}
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	digest = c.params["stock_id"] + " " + digest
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if r, ok, err := st.idem("modify", in.OutRequestNo, digest); ok || err != nil {
		return r, err
	}
	sk, err := c.bfStock(c.params["stock_id"])
	if err != nil {
		return reply{}, err
	}
	if in.StockName != nil {
		sk.info.StockName = *in.StockName
	}
	if in.Comment != nil {
		sk.info.Comment = *in.Comment
	}
	if in.GoodsName != nil {
		sk.info.GoodsName = *in.GoodsName
	}
	if len(in.CustomEntrance) > 0 {
		sk.info.CustomEntrance = in.CustomEntrance
	}
	if len(in.DisplayPatternInfo) > 0 {
		sk.info.DisplayPatternInfo = in.DisplayPatternInfo
	}
	if u := in.CouponUseRule; u != nil {
		sk.info.CouponUseRule.UseMethod = u.UseMethod
		sk.info.CouponUseRule.MiniProgramsAppID, sk.info.CouponUseRule.MiniProgramsPath = u.MiniProgramsAppID, u.MiniProgramsPath
	}
	if r := in.StockSendRule; r != nil {
		if r.NaturalPersonLimit != nil {
			sk.info.StockSendRule.NaturalPersonLimit = *r.NaturalPersonLimit
		}
		if r.PreventAPIAbuse != nil {
			sk.info.StockSendRule.PreventAPIAbuse = *r.PreventAPIAbuse
		}
	}
	if in.NotifyConfig != nil {
		sk.info.NotifyConfig = in.NotifyConfig
	}
	return st.remember("modify", in.OutRequestNo, digest, sk.id, reply{status: http.StatusNoContent}), nil
}

// bfBudgetRequest is the B4 body.
type bfBudgetRequest struct {
	TargetMaxCoupons       *int64 `json:"target_max_coupons"`
	CurrentMaxCoupons      *int64 `json:"current_max_coupons"`
	TargetMaxCouponsByDay  *int64 `json:"target_max_coupons_by_day"`
	CurrentMaxCouponsByDay *int64 `json:"current_max_coupons_by_day"`
	ModifyBudgetRequestNo  string `json:"modify_budget_request_no"`
}

func (s *Sim) bfModifyBudget(_ context.Context, c *call) (reply, error) {
	var in bfBudgetRequest
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if err := bfRequestNo("modify_budget_request_no", in.ModifyBudgetRequestNo, 128); err != nil {
		return reply{}, err
	}
	total := in.TargetMaxCoupons != nil || in.CurrentMaxCoupons != nil
	daily := in.TargetMaxCouponsByDay != nil || in.CurrentMaxCouponsByDay != nil
	switch {
	case total == daily:
		return reply{}, paramError("每次只能修改一组预算 (send exactly one of the max_coupons or max_coupons_by_day pairs)")
	case total && (in.TargetMaxCoupons == nil || in.CurrentMaxCoupons == nil),
		daily && (in.TargetMaxCouponsByDay == nil || in.CurrentMaxCouponsByDay == nil):
		return reply{}, paramError("target与current须同时填写")
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	digest = c.params["stock_id"] + " " + digest
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if r, ok, err := st.idem("budget", in.ModifyBudgetRequestNo, digest); ok || err != nil {
		return r, err
	}
	sk, err := c.bfStock(c.params["stock_id"])
	if err != nil {
		return reply{}, err
	}
	sr := &sk.info.StockSendRule
	if total {
		switch {
		case *in.CurrentMaxCoupons != sr.MaxCoupons:
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "current_max_coupons与批次当前预算不一致 (current is %d)", sr.MaxCoupons)
		case *in.TargetMaxCoupons < 1 || *in.TargetMaxCoupons > 1_000_000_000:
			return reply{}, paramError("target_max_coupons取值范围1..1000000000")
		case *in.TargetMaxCoupons < sk.sent:
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "修改后的预算不能小于已发放数量 (%d sent)", sk.sent)
		case sk.info.CouponCodeMode == bfModeUpload && *in.TargetMaxCoupons < sk.uploadedCodes():
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "修改后的预算不能小于已上传code数量 (%d uploaded)", sk.uploadedCodes())
		}
		sr.MaxCoupons = *in.TargetMaxCoupons
	} else {
		switch {
		case *in.CurrentMaxCouponsByDay != sr.MaxCouponsByDay:
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "current_max_coupons_by_day与批次当前预算不一致 (current is %d)", sr.MaxCouponsByDay)
		case *in.TargetMaxCouponsByDay < 1 || *in.TargetMaxCouponsByDay > sr.MaxCoupons:
			return reply{}, paramError("target_max_coupons_by_day取值范围1..max_coupons (%d)", sr.MaxCoupons)
		}
		sr.MaxCouponsByDay = *in.TargetMaxCouponsByDay
	}
	r := reply{status: http.StatusOK, body: map[string]int64{"max_coupons": sr.MaxCoupons, "max_coupons_by_day": sr.MaxCouponsByDay}}
	return st.remember("budget", in.ModifyBudgetRequestNo, digest, sk.id, r), nil
}

// bfValidCode: 1..32 characters of 0-9 a-z A-Z, space and - _ \ / = |
// (wechatpay-apiv3.md 3.2).
func bfValidCode(code string) bool {
	if code == "" || len(code) > 32 {
		return false
	}
	for _, r := range code {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(` -_\/=|`, r)) {
			return false
		}
	}
	return true
}

type bfFailCode struct {
	CouponCode string `json:"coupon_code"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

func (s *Sim) bfUploadCodes(_ context.Context, c *call) (reply, error) {
	var in struct {
		CouponCodeList  []string `json:"coupon_code_list"`
		UploadRequestNo string   `json:"upload_request_no"`
	}
	if err := c.decode(&in); err != nil {
		return reply{}, err
	}
	if err := bfRequestNo("upload_request_no", in.UploadRequestNo, 128); err != nil {
		return reply{}, err
	}
	if n := len(in.CouponCodeList); n < 1 || n > 200 {
		return reply{}, paramError("coupon_code_list数量须在1..200之间 (%d)", n)
	}
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	digest = c.params["stock_id"] + " " + digest
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if r, ok, err := st.idem("upload", in.UploadRequestNo, digest); ok || err != nil {
		return r, err
	}
	sk, err := c.bfStock(c.params["stock_id"])
	if err != nil {
		return reply{}, err
	}
	if sk.info.CouponCodeMode != bfModeUpload {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "批次不是MERCHANT_UPLOAD模式，不能上传code (%s)", sk.info.CouponCodeMode)
	}
	seen := map[string]bool{}
	success, exist, dup := []string{}, []string{}, []string{}
	fail := []bfFailCode{}
	var fresh []string
	for _, code := range in.CouponCodeList {
		switch {
		case seen[code]:
			dup = append(dup, code)
			continue
		case !bfValidCode(code):
			fail = append(fail, bfFailCode{CouponCode: code, Code: "PARAM_ERROR", Message: "code须为1..32位数字、字母、空格或-_\\/=|"})
		case sk.codes[code] != nil && !sk.codes[code].deleted:
			exist = append(exist, code)
		default:
			fresh = append(fresh, code)
		}
		seen[code] = true
	}
	if sk.uploadedCodes()+int64(len(fresh)) > sk.info.StockSendRule.MaxCoupons {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "上传code总数不能超过批次最大发放个数 (%d uploaded + %d > max_coupons %d)",
			sk.uploadedCodes(), len(fresh), sk.info.StockSendRule.MaxCoupons)
	}
	for _, code := range fresh {
		if _, had := sk.codes[code]; !had {
			sk.codeOrder = append(sk.codeOrder, code)
		}
		sk.codes[code] = &bfCode{code: code, status: bfCodeAvailable, uploaded: now}
		success = append(success, code)
	}
	r := reply{status: http.StatusOK, body: map[string]any{
		"stock_id": sk.id, "total_count": len(seen), "success_count": len(success), "success_codes": success,
		"success_time": formatTime(now), "fail_count": len(fail), "fail_codes": fail, "exist_codes": exist, "duplicate_codes": dup,
	}}
	return st.remember("upload", in.UploadRequestNo, digest, sk.id, r), nil
}

type bfCodeView struct {
	Code           string `json:"code"`
	CodeStatus     string `json:"code_status"`
	UploadTime     string `json:"upload_time"`
	DispatchedTime string `json:"dispatched_time,omitempty"`
	OpenID         string `json:"openid,omitempty"`
	UnionID        string `json:"unionid,omitempty"`
	CouponCode     string `json:"coupon_code,omitempty"`
}

func (cd *bfCode) view() bfCodeView {
	v := bfCodeView{Code: cd.code, CodeStatus: cd.status, UploadTime: formatTime(cd.uploaded), OpenID: cd.openid}
	if cd.status == bfCodeDispatched {
		v.DispatchedTime = formatTime(cd.dispatched)
		v.CouponCode = cd.code
	}
	return v
}

// bfPage reads offset (>= 0, default 0) and limit (1..maxLimit, default
// def) from the query.
func bfPage(c *call, def, maxLimit int) (int, int, error) {
	offset, limit := 0, def
	if v := c.query.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, paramError("offset须为非负整数 (%q)", v)
		}
		offset = n
	}
	if v := c.query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, paramError("limit取值范围1..%d (%q)", maxLimit, v)
		}
		limit = n
	}
	return offset, limit, nil
}

// bfMaxPage is the simulator's page-size bound for B6/B10 (UNCONFIRMED in
// wechatpay-apiv3.md 8.4; the coupons function uses the same bound).
const bfMaxPage = 50

func (s *Sim) bfListCodes(_ context.Context, c *call) (reply, error) {
	offset, limit, err := bfPage(c, 20, bfMaxPage)
	if err != nil {
		return reply{}, err
	}
	status := c.query.Get("status")
	if status != "" && status != bfCodeAvailable && status != bfCodeDispatched {
		return reply{}, paramError("status取值错误 (%q, want AVAILABLE or DISPATCHED)", status)
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	sk, err := c.bfStock(c.params["stock_id"])
	if err != nil {
		return reply{}, err
	}
	all := []bfCodeView{}
	for _, code := range sk.codeOrder {
		cd := sk.codes[code]
		if cd.deleted || (status != "" && cd.status != status) {
			continue
		}
		all = append(all, cd.view())
	}
	data := []bfCodeView{}
	if offset < len(all) {
		data = all[offset:min(len(all), offset+limit)]
	}
	return reply{status: http.StatusOK, body: map[string]any{"stock_id": sk.id, "total_count": len(all), "limit": limit, "offset": offset, "data": data}}, nil
}

func (s *Sim) bfGetCode(_ context.Context, c *call) (reply, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	sk, err := c.bfStock(c.params["stock_id"])
	if err != nil {
		return reply{}, err
	}
	cd := sk.codes[c.params["coupon_code"]]
	if cd == nil || cd.deleted {
		return reply{}, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "code不存在 (%s)", c.params["coupon_code"])
	}
	body := map[string]any{"code_information": cd.view()}
	if cp := c.m.busifavor.coupons[sk.id+"|"+cd.code]; cp != nil {
		body["coupon_information"] = cp.view(sk, s.Now())
	}
	return reply{status: http.StatusOK, body: body}, nil
}

func (s *Sim) bfDeleteCode(_ context.Context, c *call) (reply, error) {
	no := c.query.Get("delete_request_no")
	if err := bfRequestNo("delete_request_no", no, 128); err != nil {
		return reply{}, err
	}
	digest := c.params["stock_id"] + " " + c.params["coupon_code"]
	now := s.Now()
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.busifavor
	if r, ok, err := st.idem("delete", no, digest); ok || err != nil {
		return r, err
	}
	sk, err := c.bfStock(c.params["stock_id"])
	if err != nil {
		return reply{}, err
	}
	cd := sk.codes[c.params["coupon_code"]]
	switch {
	case cd == nil || cd.deleted:
		return reply{}, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "code不存在 (%s)", c.params["coupon_code"])
	case cd.status != bfCodeAvailable:
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "code已发放，不能删除 (%s is %s)", cd.code, cd.status)
	}
	cd.deleted = true
	r := reply{status: http.StatusOK, body: map[string]string{"stock_id": sk.id, "delete_time": formatTime(now)}}
	return st.remember("delete", no, digest, sk.id, r), nil
}
