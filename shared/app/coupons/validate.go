package coupons

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// Field rules of merchant coupons, wechatpay-apiv3.md 3.2. Each failed rule
// is a 400 with a specific code and a message naming the field; nothing is
// sent to WeChat Pay.

// Bounds from wechatpay-apiv3.md 3.2 (and 3.1 for request numbers).
const (
	maxFen            = 10_000_000    // discount_amount, transaction_minimum, exchange_price
	maxStockCoupons   = 1_000_000_000 // max_coupons, max_coupons_by_day
	maxCouponsPerUser = 100
	maxWaitDays       = 30
	maxUploadCodes    = 200
	maxCodeLen        = 32
	// Request-number bounds. use_request_no is 32 in WeChat's docs; the
	// others 128 (UNCONFIRMED for return/deactivate/budget/delete: the
	// reference gives no bound, and 128 is what the documented ones use —
	// our generated numbers are 32 long, so they fit either way).
	maxUseRequestNo = 32
	maxRequestNo    = 128
	// maxPage bounds limit of the user-coupon and code lists (UNCONFIRMED in
	// wechatpay-apiv3.md 8.4): the safe reading is the smaller page size
	// WeChat documents for its list APIs, 50.
	maxPage = 50
)

// Stock types, code modes, use methods and the other enums.
var (
	stockTypes       = []string{"NORMAL", "DISCOUNT", "EXCHANGE"}
	codeModes        = []string{"WECHATPAY_MODE", "MERCHANT_API", "MERCHANT_UPLOAD"}
	useMethods       = []string{"OFF_LINE", "MINI_PROGRAMS", "PAYMENT_CODE", "SELF_CONSUME"}
	codeDisplayModes = []string{"NOT_SHOW", "BARCODE", "QRCODE"}
	couponStates     = []string{ledger.CouponSended, ledger.CouponUsed, ledger.CouponExpired, ledger.CouponDeleted, ledger.CouponDeactivated}
	codeStatuses     = []string{"AVAILABLE", "DISPATCHED"}
)

// backgroundColors are the ten background_color values, Color010 ...
// Color100 (busifavor display_pattern_info and pay-gift activities).
func backgroundColor(c string) bool {
	for i := 10; i <= 100; i += 10 {
		if c == fmt.Sprintf("Color%03d", i) {
			return true
		}
	}
	return false
}

func paramErr(format string, args ...any) *apigw.Error {
	return apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, format, args...)
}

// runes checks a string's length in characters (WeChat counts characters).
func runes(field, v string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(v)
	switch {
	case n < minLen && minLen == 1:
		return paramErr("%s is required (1..%d characters)", field, maxLen)
	case n < minLen || n > maxLen:
		return paramErr("%s must be %d..%d characters, got %d", field, minLen, maxLen, n)
	}
	return nil
}

func oneOf(field, v string, values []string) error {
	if !slices.Contains(values, v) {
		return paramErr("%s must be one of %s, got %q", field, strings.Join(values, ", "), v)
	}
	return nil
}

// fen checks an amount in fen against [lo, hi].
func fen(field string, v *int64, lo, hi int64) error {
	if v == nil {
		return paramErr("%s is required (fen, %d..%d)", field, lo, hi)
	}
	if *v < lo || *v > hi {
		return paramErr("%s must be %d..%d fen, got %d", field, lo, hi, *v)
	}
	return nil
}

// wechatTime parses an RFC 3339 time and renders it the way WeChat Pay
// wants it: second precision, +08:00.
func wechatTime(field, v string) (time.Time, string, error) {
	if v == "" {
		return time.Time{}, "", apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "%s is required (RFC 3339, e.g. 2025-06-01T10:00:00+08:00)", field)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, "", apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "%s must be RFC 3339 with a zone, e.g. 2025-06-01T10:00:00+08:00 (got %q)", field, v)
	}
	return t, ledger.WechatTime(t), nil
}

func digits(field, v string, maxLen int) error {
	if v == "" || len(v) > maxLen || strings.Trim(v, "0123456789") != "" {
		return paramErr("%s must be 1..%d digits, got %q", field, maxLen, v)
	}
	return nil
}

// validID checks a path identifier (stock_id, activity_id): digits only,
// so nothing but a number ever reaches a WeChat URL.
func validID(field, v string) error { return digits(field, v, 32) }

// validCode checks a coupon code: 1..32 characters of 0-9 a-z A-Z, space
// and - _ \ / = | (wechatpay-apiv3.md 3.2, B5).
func validCode(field, code string) error {
	if code == "" || len(code) > maxCodeLen {
		return paramErr("%s must be 1..%d characters, got %d", field, maxCodeLen, len(code))
	}
	for _, r := range code {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(` -_\/=|`, r)) {
			return paramErr("%s %q has %q: codes use 0-9 a-z A-Z, space and -_\\/=|", field, code, r)
		}
	}
	return nil
}

// validOpenID checks an openid path segment.
func validOpenID(v string) error {
	if !ledger.ValidOpenID(v) {
		return paramErr("openid must be 1..128 characters of 0-9 A-Z a-z _ -")
	}
	return nil
}

// appID returns the appid to use: the caller's, which must be one of the
// merchant's bound appids (WeChat answers openids under it), or the first
// bound one.
func appID(field, v string, bound []string) (string, error) {
	if v == "" {
		if len(bound) == 0 {
			return "", apigw.Errorf(http.StatusBadRequest, CodeAppIDNotBound, "%s is required: the merchant has no bound appid", field)
		}
		return bound[0], nil
	}
	if !slices.Contains(bound, v) {
		return "", apigw.Errorf(http.StatusBadRequest, CodeAppIDNotBound, "%s %s is not bound to this merchant", field, v)
	}
	return v, nil
}

// notifyURL checks a callback URL: https (http only for loopback, for local
// runs), absolute, no query or fragment, at most 256 characters.
func notifyURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || len(v) > 256 {
		return paramErr("notify_url must be an absolute URL of at most 256 characters, got %q", v)
	}
	h := u.Hostname()
	loopback := h == "127.0.0.1" || h == "localhost" || h == "::1"
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && loopback):
		return paramErr("notify_url must use https, got %q", v)
	case u.RawQuery != "" || u.Fragment != "":
		return paramErr("notify_url must not carry a query string or fragment")
	}
	return nil
}

// timeRange is a begin/end pair of RFC 3339 times.
type timeRange struct {
	BeginTime string `json:"begin_time"`
	EndTime   string `json:"end_time"`
}

// dayTime is a window inside a day, in seconds.
type dayTime struct {
	BeginTime int64 `json:"begin_time"`
	EndTime   int64 `json:"end_time"`
}

type availableWeek struct {
	WeekDay          []int     `json:"week_day"`
	AvailableDayTime []dayTime `json:"available_day_time,omitempty"`
}

type availableTime struct {
	AvailableBeginTime       string         `json:"available_begin_time"`
	AvailableEndTime         string         `json:"available_end_time"`
	AvailableDayAfterReceive *int64         `json:"available_day_after_receive,omitempty"`
	AvailableWeek            *availableWeek `json:"available_week,omitempty"`
	IrregularyAvaliableTime  []timeRange    `json:"irregulary_avaliable_time,omitempty"` // WeChat's spelling
	WaitDaysAfterReceive     *int64         `json:"wait_days_after_receive,omitempty"`
}

type normalCoupon struct {
	DiscountAmount     *int64 `json:"discount_amount"`
	TransactionMinimum *int64 `json:"transaction_minimum"`
}

type discountCoupon struct {
	DiscountPercent    *int64 `json:"discount_percent"`
	TransactionMinimum *int64 `json:"transaction_minimum"`
}

type exchangeCoupon struct {
	ExchangePrice      *int64 `json:"exchange_price"`
	TransactionMinimum *int64 `json:"transaction_minimum"`
}

type useRule struct {
	CouponAvailableTime *availableTime  `json:"coupon_available_time"`
	FixedNormalCoupon   *normalCoupon   `json:"fixed_normal_coupon,omitempty"`
	DiscountCoupon      *discountCoupon `json:"discount_coupon,omitempty"`
	ExchangeCoupon      *exchangeCoupon `json:"exchange_coupon,omitempty"`
	UseMethod           string          `json:"use_method"`
	MiniProgramsAppID   string          `json:"mini_programs_appid,omitempty"`
	MiniProgramsPath    string          `json:"mini_programs_path,omitempty"`
}

type sendRule struct {
	MaxCoupons         *int64 `json:"max_coupons"`
	MaxCouponsPerUser  *int64 `json:"max_coupons_per_user"`
	MaxCouponsByDay    *int64 `json:"max_coupons_by_day,omitempty"`
	NaturalPersonLimit bool   `json:"natural_person_limit"`
	PreventAPIAbuse    bool   `json:"prevent_api_abuse"`
	Transferable       bool   `json:"transferable"`
	Shareable          bool   `json:"shareable"`
}

type miniProgramsInfo struct {
	MiniProgramsAppID string `json:"mini_programs_appid"`
	MiniProgramsPath  string `json:"mini_programs_path"`
	EntranceWords     string `json:"entrance_words"`
	GuidingWords      string `json:"guiding_words,omitempty"`
}

type customEntrance struct {
	MiniProgramsInfo *miniProgramsInfo `json:"mini_programs_info,omitempty"`
	AppID            string            `json:"appid,omitempty"`
	HallID           string            `json:"hall_id,omitempty"`
	StoreID          string            `json:"store_id,omitempty"`
	CodeDisplayMode  string            `json:"code_display_mode,omitempty"`
}

type finderInfo struct {
	FinderID                 string `json:"finder_id"`
	FinderVideoID            string `json:"finder_video_id"`
	FinderVideoCoverImageURL string `json:"finder_video_cover_image_url"`
}

type displayPattern struct {
	Description     string      `json:"description,omitempty"`
	MerchantLogoURL string      `json:"merchant_logo_url,omitempty"`
	MerchantName    string      `json:"merchant_name,omitempty"`
	BackgroundColor string      `json:"background_color,omitempty"`
	CouponImageURL  string      `json:"coupon_image_url,omitempty"`
	FinderInfo      *finderInfo `json:"finder_info,omitempty"`
}

type notifyConfig struct {
	NotifyAppID string `json:"notify_appid"`
}

// stockInput is the create-stock body: WeChat's B1 body, with
// out_request_no and belong_merchant optional (generated / the merchant).
type stockInput struct {
	StockName          string          `json:"stock_name"`
	BelongMerchant     string          `json:"belong_merchant,omitempty"`
	Comment            string          `json:"comment,omitempty"`
	GoodsName          string          `json:"goods_name"`
	StockType          string          `json:"stock_type"`
	CouponUseRule      *useRule        `json:"coupon_use_rule"`
	StockSendRule      *sendRule       `json:"stock_send_rule"`
	OutRequestNo       string          `json:"out_request_no,omitempty"`
	CustomEntrance     *customEntrance `json:"custom_entrance,omitempty"`
	DisplayPatternInfo *displayPattern `json:"display_pattern_info,omitempty"`
	CouponCodeMode     string          `json:"coupon_code_mode"`
	NotifyConfig       *notifyConfig   `json:"notify_config,omitempty"`
	Subsidy            bool            `json:"subsidy,omitempty"`
}

// window is a validated coupon_available_time.
type window struct{ begin, end time.Time }

// validateStock checks a create-stock body and normalises its times to
// +08:00. mchID and bound are the merchant's id and appids.
func validateStock(in *stockInput, mchID string, bound []string, now time.Time) (window, error) {
	var w window
	if err := runes("stock_name", in.StockName, 1, 21); err != nil {
		return w, err
	}
	if err := runes("comment", in.Comment, 0, 20); err != nil {
		return w, err
	}
	if err := runes("goods_name", in.GoodsName, 1, 15); err != nil {
		return w, err
	}
	if in.BelongMerchant == "" {
		in.BelongMerchant = mchID
	}
	if err := digits("belong_merchant", in.BelongMerchant, 32); err != nil {
		return w, err
	}
	if err := oneOf("stock_type", in.StockType, stockTypes); err != nil {
		return w, err
	}
	if err := oneOf("coupon_code_mode", in.CouponCodeMode, codeModes); err != nil {
		return w, err
	}
	if err := requestNumber("out_request_no", in.OutRequestNo, maxRequestNo); err != nil {
		return w, err
	}
	if in.Subsidy {
		return w, apigw.Errorf(http.StatusBadRequest, CodeNotOpen, "subsidy is not open yet (wechatpay-apiv3.md 3.1)")
	}
	if in.CouponUseRule == nil {
		return w, paramErr("coupon_use_rule is required")
	}
	if err := validateRule(in.StockType, in.CouponUseRule); err != nil {
		return w, err
	}
	if err := validateUseMethod(in.CouponUseRule.UseMethod, in.CouponUseRule.MiniProgramsAppID, in.CouponUseRule.MiniProgramsPath); err != nil {
		return w, err
	}
	w, err := validateWindow(in.CouponUseRule.CouponAvailableTime, now)
	if err != nil {
		return w, err
	}
	if in.StockSendRule == nil {
		return w, paramErr("stock_send_rule is required")
	}
	if err := validateSendRule(in.StockSendRule); err != nil {
		return w, err
	}
	if err := validateEntrance(in.CustomEntrance); err != nil {
		return w, err
	}
	if err := validateDisplay(in.DisplayPatternInfo); err != nil {
		return w, err
	}
	if in.NotifyConfig != nil && in.NotifyConfig.NotifyAppID != "" && in.BelongMerchant == mchID {
		if _, err := appID("notify_config.notify_appid", in.NotifyConfig.NotifyAppID, bound); err != nil {
			return w, err
		}
	}
	return w, nil
}

// validateRule: exactly one rule object, the one matching stock_type, with
// amounts in range.
func validateRule(stockType string, r *useRule) error {
	n := 0
	for _, set := range []bool{r.FixedNormalCoupon != nil, r.DiscountCoupon != nil, r.ExchangeCoupon != nil} {
		if set {
			n++
		}
	}
	want := map[string]string{"NORMAL": "fixed_normal_coupon", "DISCOUNT": "discount_coupon", "EXCHANGE": "exchange_coupon"}[stockType]
	switch {
	case n != 1:
		return apigw.Errorf(http.StatusBadRequest, CodeRuleMismatch, "exactly one of fixed_normal_coupon, discount_coupon, exchange_coupon must be set (%d are); stock_type %s needs %s", n, stockType, want)
	case stockType == "NORMAL" && r.FixedNormalCoupon != nil:
		if err := fen("fixed_normal_coupon.discount_amount", r.FixedNormalCoupon.DiscountAmount, 1, maxFen); err != nil {
			return err
		}
		return fen("fixed_normal_coupon.transaction_minimum", r.FixedNormalCoupon.TransactionMinimum, 1, maxFen)
	case stockType == "DISCOUNT" && r.DiscountCoupon != nil:
		p := r.DiscountCoupon.DiscountPercent
		if p == nil || *p < 1 || *p > 99 {
			return paramErr("discount_coupon.discount_percent must be 1..99 (88 means pay 88%%)")
		}
		return fen("discount_coupon.transaction_minimum", r.DiscountCoupon.TransactionMinimum, 1, maxFen)
	case stockType == "EXCHANGE" && r.ExchangeCoupon != nil:
		if err := fen("exchange_coupon.exchange_price", r.ExchangeCoupon.ExchangePrice, 0, maxFen); err != nil {
			return err
		}
		return fen("exchange_coupon.transaction_minimum", r.ExchangeCoupon.TransactionMinimum, 1, maxFen)
	}
	return apigw.Errorf(http.StatusBadRequest, CodeRuleMismatch, "stock_type %s needs %s", stockType, want)
}

// validateUseMethod: MINI_PROGRAMS needs the mini-program appid and path.
func validateUseMethod(method, appid, path string) error {
	if err := oneOf("coupon_use_rule.use_method", method, useMethods); err != nil {
		return err
	}
	if method == "MINI_PROGRAMS" && (appid == "" || path == "") {
		return paramErr("use_method MINI_PROGRAMS needs mini_programs_appid and mini_programs_path")
	}
	if err := runes("mini_programs_appid", appid, 0, 32); err != nil {
		return err
	}
	return runes("mini_programs_path", path, 0, 128)
}

// validateWindow checks coupon_available_time and normalises it to +08:00.
func validateWindow(t *availableTime, now time.Time) (window, error) {
	var w window
	if t == nil {
		return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "coupon_use_rule.coupon_available_time is required")
	}
	var err error
	if w.begin, t.AvailableBeginTime, err = wechatTime("available_begin_time", t.AvailableBeginTime); err != nil {
		return w, err
	}
	if w.end, t.AvailableEndTime, err = wechatTime("available_end_time", t.AvailableEndTime); err != nil {
		return w, err
	}
	switch {
	case !w.begin.Before(w.end):
		return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "available_begin_time must be before available_end_time")
	case w.begin.After(now.AddDate(1, 0, 0)):
		return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "available_begin_time may be at most 1 year ahead (%s)", t.AvailableBeginTime)
	case !w.end.After(now):
		return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "available_end_time %s is already past", t.AvailableEndTime)
	}
	if d := t.AvailableDayAfterReceive; d != nil && *d < 0 {
		return w, paramErr("available_day_after_receive must not be negative")
	}
	if d := t.WaitDaysAfterReceive; d != nil {
		switch {
		case *d < 0 || *d > maxWaitDays:
			return w, paramErr("wait_days_after_receive must be 0..%d, got %d", maxWaitDays, *d)
		case *d > 0 && (t.AvailableDayAfterReceive == nil || *t.AvailableDayAfterReceive == 0):
			return w, paramErr("wait_days_after_receive needs available_day_after_receive")
		}
	}
	if wk := t.AvailableWeek; wk != nil {
		seen := map[int]bool{}
		for _, d := range wk.WeekDay {
			if d < 0 || d > 6 || seen[d] {
				return w, paramErr("available_week.week_day must be distinct days 0 (Sunday) .. 6, got %v", wk.WeekDay)
			}
			seen[d] = true
		}
		if len(wk.AvailableDayTime) > 2 {
			return w, paramErr("available_week.available_day_time allows at most 2 windows, got %d", len(wk.AvailableDayTime))
		}
		for _, dt := range wk.AvailableDayTime {
			if dt.BeginTime < 1 || dt.EndTime > 86399 || dt.BeginTime >= dt.EndTime {
				return w, paramErr("available_day_time windows are seconds of the day, 1 <= begin_time < end_time <= 86399")
			}
		}
	}
	for i := range t.IrregularyAvaliableTime {
		r := &t.IrregularyAvaliableTime[i]
		b, bs, err := wechatTime("irregulary_avaliable_time.begin_time", r.BeginTime)
		if err != nil {
			return w, err
		}
		e, es, err := wechatTime("irregulary_avaliable_time.end_time", r.EndTime)
		if err != nil {
			return w, err
		}
		if !b.Before(e) || b.Before(w.begin) || e.After(w.end) {
			return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "irregulary_avaliable_time %s..%s must be a window inside the available time", bs, es)
		}
		r.BeginTime, r.EndTime = bs, es
	}
	return w, nil
}

// validateSendRule: budget 1..1e9, per user 1..100, per day 1..1e9 and not
// above the budget, the not-yet-open flags off.
func validateSendRule(r *sendRule) error {
	if err := fen("stock_send_rule.max_coupons", r.MaxCoupons, 1, maxStockCoupons); err != nil {
		return paramErr("stock_send_rule.max_coupons is required, 1..%d", maxStockCoupons)
	}
	if r.MaxCouponsPerUser == nil || *r.MaxCouponsPerUser < 1 || *r.MaxCouponsPerUser > maxCouponsPerUser {
		return paramErr("stock_send_rule.max_coupons_per_user is required, 1..%d", maxCouponsPerUser)
	}
	if *r.MaxCouponsPerUser > *r.MaxCoupons {
		return paramErr("stock_send_rule.max_coupons_per_user (%d) exceeds max_coupons (%d)", *r.MaxCouponsPerUser, *r.MaxCoupons)
	}
	if d := r.MaxCouponsByDay; d != nil && (*d < 1 || *d > maxStockCoupons || *d > *r.MaxCoupons) {
		return paramErr("stock_send_rule.max_coupons_by_day must be 1..max_coupons (%d), got %d", *r.MaxCoupons, *d)
	}
	if r.Transferable || r.Shareable {
		return apigw.Errorf(http.StatusBadRequest, CodeNotOpen, "transferable and shareable are not open yet (wechatpay-apiv3.md 3.2)")
	}
	return nil
}

func validateEntrance(e *customEntrance) error {
	if e == nil {
		return nil
	}
	if mp := e.MiniProgramsInfo; mp != nil {
		if mp.MiniProgramsAppID == "" || mp.MiniProgramsPath == "" {
			return paramErr("custom_entrance.mini_programs_info needs mini_programs_appid and mini_programs_path")
		}
		if err := runes("custom_entrance.mini_programs_info.entrance_words", mp.EntranceWords, 1, 5); err != nil {
			return err
		}
		if err := runes("custom_entrance.mini_programs_info.guiding_words", mp.GuidingWords, 0, 6); err != nil {
			return err
		}
	}
	if e.CodeDisplayMode != "" {
		return oneOf("custom_entrance.code_display_mode", e.CodeDisplayMode, codeDisplayModes)
	}
	return nil
}

func validateDisplay(d *displayPattern) error {
	if d == nil {
		return nil
	}
	if err := runes("display_pattern_info.merchant_name", d.MerchantName, 0, 12); err != nil {
		return err
	}
	if d.BackgroundColor != "" && !backgroundColor(d.BackgroundColor) {
		return paramErr("display_pattern_info.background_color must be one of Color010, Color020 ... Color100, got %q", d.BackgroundColor)
	}
	return nil
}

// modifyInput is the modify-stock body (B3), out_request_no optional.
type modifyInput struct {
	OutRequestNo       string          `json:"out_request_no,omitempty"`
	CustomEntrance     *customEntrance `json:"custom_entrance,omitempty"`
	StockName          *string         `json:"stock_name,omitempty"`
	Comment            *string         `json:"comment,omitempty"`
	GoodsName          *string         `json:"goods_name,omitempty"`
	DisplayPatternInfo *displayPattern `json:"display_pattern_info,omitempty"`
	CouponUseRule      *struct {
		UseMethod         string `json:"use_method"`
		MiniProgramsAppID string `json:"mini_programs_appid,omitempty"`
		MiniProgramsPath  string `json:"mini_programs_path,omitempty"`
	} `json:"coupon_use_rule,omitempty"`
	StockSendRule *struct {
		NaturalPersonLimit *bool `json:"natural_person_limit,omitempty"`
		PreventAPIAbuse    *bool `json:"prevent_api_abuse,omitempty"`
	} `json:"stock_send_rule,omitempty"`
	NotifyConfig *notifyConfig `json:"notify_config,omitempty"`
	Subsidy      *bool         `json:"subsidy,omitempty"`
}

func validateModify(in *modifyInput, bound []string) error {
	if err := requestNumber("out_request_no", in.OutRequestNo, maxRequestNo); err != nil {
		return err
	}
	if in.CustomEntrance == nil && in.StockName == nil && in.Comment == nil && in.GoodsName == nil && in.DisplayPatternInfo == nil &&
		in.CouponUseRule == nil && in.StockSendRule == nil && in.NotifyConfig == nil {
		return paramErr("nothing to modify: give at least one of stock_name, comment, goods_name, custom_entrance, display_pattern_info, coupon_use_rule, stock_send_rule, notify_config")
	}
	if in.Subsidy != nil && *in.Subsidy {
		return apigw.Errorf(http.StatusBadRequest, CodeNotOpen, "subsidy is not open yet (wechatpay-apiv3.md 3.1)")
	}
	if in.StockName != nil {
		if err := runes("stock_name", *in.StockName, 1, 21); err != nil {
			return err
		}
	}
	if in.Comment != nil {
		if err := runes("comment", *in.Comment, 0, 20); err != nil {
			return err
		}
	}
	if in.GoodsName != nil {
		if err := runes("goods_name", *in.GoodsName, 1, 15); err != nil {
			return err
		}
	}
	if r := in.CouponUseRule; r != nil {
		if err := validateUseMethod(r.UseMethod, r.MiniProgramsAppID, r.MiniProgramsPath); err != nil {
			return err
		}
	}
	if in.NotifyConfig != nil && in.NotifyConfig.NotifyAppID != "" {
		if _, err := appID("notify_config.notify_appid", in.NotifyConfig.NotifyAppID, bound); err != nil {
			return err
		}
	}
	if err := validateEntrance(in.CustomEntrance); err != nil {
		return err
	}
	return validateDisplay(in.DisplayPatternInfo)
}
