package coupons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Pay-gift activities (支付有礼), wechatpay-apiv3.md section 4 and the
// pay-gift development guide (seed 002).

const paygift = "/v3/marketing/paygiftactivity"

// maxActivityWindow: begin-to-end must be under 31,536,000 s ("最长可以配置
// 1年内的活动" is "间隔需要小于31536000s", the development guide FAQ). The old
// wiki's 90-day duration is UNCONFIRMED (wechatpay-apiv3.md 8.5) and not
// enforced: WeChat Pay would reject it itself.
const maxActivityWindow = 31_536_000 * time.Second

// Page bounds of the activity lists: limit 1..100 (G7, documented; the
// same bound is the safe reading for G3/G4, UNCONFIRMED in 8.5).
const maxActivityPage = 100

var (
	deliveryPurposes  = []string{"OFF_LINE_PAY", "JUMP_MINI_APP"}
	sendContents      = []string{"SINGLE_COUPON", "GIFT_PACKAGE"}
	userCategories    = []string{"DELIVERY_ALL_PERSON", "DELIVERY_MEMBER_PERSON"}
	activityStatuses  = []string{"ACT_STATUS_UNKNOWN", "CREATE_ACT_STATUS", "ONGOING_ACT_STATUS", "TERMINATE_ACT_STATUS", "STOP_ACT_STATUS", "OVER_TIME_ACT_STATUS", "CREATE_ACT_FAILED"}
	statusTerminated  = "TERMINATE_ACT_STATUS"
	manualInputOption = "MANUAL_INPUT_MERCHANT"
)

type dayWindow struct {
	BeginDayTime string `json:"begin_day_time"` // HHmmss
	EndDayTime   string `json:"end_day_time"`
}

type availablePeriods struct {
	AvailableTime    []timeRange `json:"available_time,omitempty"`
	AvailableDayTime []dayWindow `json:"available_day_time,omitempty"`
}

type activityBase struct {
	ActivityName        string            `json:"activity_name"`
	ActivitySecondTitle string            `json:"activity_second_title"`
	MerchantLogoURL     string            `json:"merchant_logo_url"`
	BackgroundColor     string            `json:"background_color,omitempty"`
	BeginTime           string            `json:"begin_time"`
	EndTime             string            `json:"end_time"`
	AvailablePeriods    *availablePeriods `json:"available_periods,omitempty"`
	OutRequestNo        string            `json:"out_request_no,omitempty"`
	DeliveryPurpose     string            `json:"delivery_purpose"`
	MiniProgramsAppID   string            `json:"mini_programs_appid,omitempty"`
	MiniProgramsPath    string            `json:"mini_programs_path,omitempty"`
}

type award struct {
	StockID          string `json:"stock_id"`
	OriginalImageURL string `json:"original_image_url"`
	ThumbnailURL     string `json:"thumbnail_url,omitempty"`
}

type fullSendRule struct {
	TransactionAmountMinimum *int64   `json:"transaction_amount_minimum"`
	SendContent              string   `json:"send_content"`
	AwardType                string   `json:"award_type"`
	AwardList                []award  `json:"award_list"`
	MerchantOption           string   `json:"merchant_option"`
	MerchantIDList           []string `json:"merchant_id_list"`
}

type advancedSetting struct {
	DeliveryUserCategory     string          `json:"delivery_user_category,omitempty"`
	MerchantMemberAppID      string          `json:"merchant_member_appid,omitempty"`
	PaymentMode              json.RawMessage `json:"payment_mode,omitempty"`
	PaymentMethodInformation json.RawMessage `json:"payment_method_information,omitempty"`
	GoodsTags                []string        `json:"goods_tags,omitempty"`
}

// activityInput is the create-activity body: WeChat's G1 body, with
// activity_base_info.out_request_no optional and award_type /
// merchant_option defaulting to the only values merchant coupons allow.
type activityInput struct {
	ActivityBaseInfo *activityBase    `json:"activity_base_info"`
	AwardSendRule    *fullSendRule    `json:"award_send_rule"`
	AdvancedSetting  *advancedSetting `json:"advanced_setting,omitempty"`
}

// merchantIDs checks a merchant id list: 1..max distinct digit strings.
func merchantIDs(field string, ids []string, max int) error {
	if len(ids) < 1 || len(ids) > max {
		return paramErr("%s must hold 1..%d merchant ids, got %d", field, max, len(ids))
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if err := digits(fmt.Sprintf("%s[%d]", field, i), id, 32); err != nil {
			return err
		}
		if seen[id] {
			return paramErr("%s[%d] %s is a duplicate", field, i, id)
		}
		seen[id] = true
	}
	return nil
}

// hhmmss checks a time of day written HHmmss.
func hhmmss(field, v string) (int, error) {
	t, err := time.Parse("150405", v)
	if err != nil || len(v) != 6 {
		return 0, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "%s must be HHmmss, got %q", field, v)
	}
	return t.Hour()*3600 + t.Minute()*60 + t.Second(), nil
}

// validateActivity checks every field rule of a create-activity body that
// needs no stock data, and normalises its times to +08:00.
func validateActivity(in *activityInput, now time.Time) (window, error) {
	var w window
	b := in.ActivityBaseInfo
	if b == nil {
		return w, paramErr("activity_base_info is required")
	}
	for _, ck := range []struct {
		field    string
		v        string
		min, max int
	}{{"activity_name", b.ActivityName, 1, 10}, {"activity_second_title", b.ActivitySecondTitle, 1, 9},
		{"merchant_logo_url", b.MerchantLogoURL, 10, 128}, {"mini_programs_appid", b.MiniProgramsAppID, 0, 32},
		{"mini_programs_path", b.MiniProgramsPath, 0, 128}} {
		if err := runes(ck.field, ck.v, ck.min, ck.max); err != nil {
			return w, err
		}
	}
	if u, err := url.Parse(b.MerchantLogoURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
		strings.ContainsAny(b.MerchantLogoURL, " \"'<>\\") {
		// The logo is an image URL WeChat shows users (in practice one
		// returned by its image upload API): only a plain https URL is sane.
		return w, paramErr("merchant_logo_url must be an https URL")
	}
	if b.BackgroundColor != "" && !backgroundColor(b.BackgroundColor) {
		return w, paramErr("background_color must be one of Color010, Color020 ... Color100, got %q", b.BackgroundColor)
	}
	if err := requestNumber("out_request_no", b.OutRequestNo, maxRequestNo); err != nil {
		return w, err
	}
	var err error
	if w.begin, b.BeginTime, err = wechatTime("begin_time", b.BeginTime); err != nil {
		return w, err
	}
	if w.end, b.EndTime, err = wechatTime("end_time", b.EndTime); err != nil {
		return w, err
	}
	switch {
	case !w.begin.Before(w.end):
		return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "begin_time must be before end_time")
	case w.end.Sub(w.begin) >= maxActivityWindow:
		return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "end_time - begin_time must be under 31536000 s (365 days), got %.0f s", w.end.Sub(w.begin).Seconds())
	case !w.end.After(now):
		return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "end_time %s is already past", b.EndTime)
	}
	if p := b.AvailablePeriods; p != nil {
		for i := range p.AvailableTime {
			r := &p.AvailableTime[i]
			s, ss, err := wechatTime("available_periods.available_time.begin_time", r.BeginTime)
			if err != nil {
				return w, err
			}
			e, es, err := wechatTime("available_periods.available_time.end_time", r.EndTime)
			if err != nil {
				return w, err
			}
			if !s.Before(e) || s.Before(w.begin) || e.After(w.end) {
				return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "available_time %s..%s must be a window inside the activity", ss, es)
			}
			r.BeginTime, r.EndTime = ss, es
		}
		for _, d := range p.AvailableDayTime {
			s, err := hhmmss("available_day_time.begin_day_time", d.BeginDayTime)
			if err != nil {
				return w, err
			}
			e, err := hhmmss("available_day_time.end_day_time", d.EndDayTime)
			if err != nil {
				return w, err
			}
			if s >= e {
				return w, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "available_day_time %s..%s must be an increasing window", d.BeginDayTime, d.EndDayTime)
			}
		}
	}
	if err := oneOf("delivery_purpose", b.DeliveryPurpose, deliveryPurposes); err != nil {
		return w, err
	}
	if b.DeliveryPurpose == "JUMP_MINI_APP" && (b.MiniProgramsAppID == "" || b.MiniProgramsPath == "") {
		return w, paramErr("delivery_purpose JUMP_MINI_APP needs mini_programs_appid and mini_programs_path")
	}

	r := in.AwardSendRule
	if r == nil {
		return w, paramErr("award_send_rule is required")
	}
	if err := fen("award_send_rule.transaction_amount_minimum", r.TransactionAmountMinimum, 1, 100*maxFen); err != nil {
		return w, err
	}
	if err := oneOf("award_send_rule.send_content", r.SendContent, sendContents); err != nil {
		return w, err
	}
	switch n := len(r.AwardList); {
	case r.SendContent == "SINGLE_COUPON" && n != 1:
		return w, apigw.Errorf(http.StatusBadRequest, CodeRuleMismatch, "send_content SINGLE_COUPON takes exactly 1 award, got %d", n)
	case r.SendContent == "GIFT_PACKAGE" && (n < 3 || n > 5):
		return w, apigw.Errorf(http.StatusBadRequest, CodeRuleMismatch, "send_content GIFT_PACKAGE takes 3-5 awards, got %d", n)
	}
	if r.AwardType == "" {
		r.AwardType = "BUSIFAVOR"
	}
	if r.AwardType != "BUSIFAVOR" {
		return w, paramErr("award_type must be BUSIFAVOR (the only prize the API supports), got %q", r.AwardType)
	}
	seen := map[string]bool{}
	for i, a := range r.AwardList {
		f := func(name string) string { return fmt.Sprintf("award_list[%d].%s", i, name) }
		if err := validID(f("stock_id"), a.StockID); err != nil {
			return w, err
		}
		if seen[a.StockID] {
			return w, paramErr("%s %s is a duplicate", f("stock_id"), a.StockID)
		}
		seen[a.StockID] = true
		if err := runes(f("original_image_url"), a.OriginalImageURL, 1, 256); err != nil {
			return w, err
		}
		if len(r.AwardList) > 1 && a.ThumbnailURL == "" {
			return w, paramErr("%s is required when the activity gives several coupons", f("thumbnail_url"))
		}
	}
	if r.MerchantOption == "" {
		r.MerchantOption = manualInputOption
	}
	if r.MerchantOption != manualInputOption {
		return w, paramErr("merchant_option must be MANUAL_INPUT_MERCHANT for merchant coupons, got %q", r.MerchantOption)
	}
	if err := merchantIDs("award_send_rule.merchant_id_list", r.MerchantIDList, 500); err != nil {
		return w, err
	}

	if a := in.AdvancedSetting; a != nil {
		if a.DeliveryUserCategory != "" {
			if err := oneOf("advanced_setting.delivery_user_category", a.DeliveryUserCategory, userCategories); err != nil {
				return w, err
			}
		}
		if a.DeliveryUserCategory == "DELIVERY_MEMBER_PERSON" && a.MerchantMemberAppID == "" {
			return w, paramErr("delivery_user_category DELIVERY_MEMBER_PERSON needs merchant_member_appid")
		}
		if len(a.PaymentMode) > 0 || len(a.PaymentMethodInformation) > 0 {
			return w, apigw.Errorf(http.StatusBadRequest, CodeNotOpen, "payment_mode and payment_method_information are not open for merchant coupons")
		}
		if len(a.GoodsTags) > 500 {
			return w, paramErr("advanced_setting.goods_tags allows at most 500 tags, got %d", len(a.GoodsTags))
		}
		for i, t := range a.GoodsTags {
			if err := runes(fmt.Sprintf("advanced_setting.goods_tags[%d]", i), t, 1, 32); err != nil {
				return w, err
			}
		}
	}
	return w, nil
}

// awardStock is what the activity rules need from a stock.
type awardStock struct {
	id                string
	begin, end        time.Time
	mode              string
	uploaded          int64
	maxCoupons        int64
	maxCouponsPerUser int64
	belong            string
}

// awardStocks loads the award stocks: from the ledger, or, for a stock the
// ledger does not know, by querying it (a read; it is then recorded).
func (h *Handler) awardStocks(ctx context.Context, list []award) ([]awardStock, error) {
	out := make([]awardStock, 0, len(list))
	for _, a := range list {
		row, known, err := h.ledgerStock(ctx, a.StockID)
		if err != nil {
			return nil, err
		}
		if !known || row.AvailableBeginTime == "" {
			if _, _, err := h.fetchStock(ctx, a.StockID); err != nil {
				return nil, err
			}
			if row, _, err = h.ledgerStock(ctx, a.StockID); err != nil {
				return nil, err
			}
		}
		s := awardStock{id: a.StockID, mode: row.CouponCodeMode, uploaded: row.UploadedCodes, maxCoupons: row.MaxCoupons,
			maxCouponsPerUser: row.MaxCouponsPerUser, belong: row.BelongMerchant}
		if s.begin, err = time.Parse(time.RFC3339, row.AvailableBeginTime); err != nil {
			return nil, fmt.Errorf("coupons: stock %s available_begin_time %q: %w", a.StockID, row.AvailableBeginTime, err)
		}
		if s.end, err = time.Parse(time.RFC3339, row.AvailableEndTime); err != nil {
			return nil, fmt.Errorf("coupons: stock %s available_end_time %q: %w", a.StockID, row.AvailableEndTime, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// checkAwards applies the dev guide FAQ: every award stock's validity
// covers the activity window, MERCHANT_UPLOAD stocks have codes uploaded,
// and a gift package's stocks share stock size, per-user limit and belong
// merchant.
func checkAwards(stocks []awardStock, w window) error {
	for i, s := range stocks {
		switch {
		case s.begin.After(w.begin) || s.end.Before(w.end):
			return apigw.Errorf(http.StatusBadRequest, CodeAwardStock,
				"stock %s is valid %s..%s, which does not cover the activity %s..%s", s.id,
				ledger.WechatTime(s.begin), ledger.WechatTime(s.end), ledger.WechatTime(w.begin), ledger.WechatTime(w.end))
		case s.mode == "MERCHANT_UPLOAD" && s.uploaded < 1:
			return apigw.Errorf(http.StatusBadRequest, CodeAwardStock, "stock %s is MERCHANT_UPLOAD: upload its codes before using it in an activity", s.id)
		case i > 0 && (s.maxCoupons != stocks[0].maxCoupons || s.maxCouponsPerUser != stocks[0].maxCouponsPerUser || s.belong != stocks[0].belong):
			return apigw.Errorf(http.StatusBadRequest, CodeAwardStock,
				"gift package stocks must share max_coupons, max_coupons_per_user and belong_merchant: %s differs from %s", s.id, stocks[0].id)
		}
	}
	return nil
}

// createActivity is POST /paygift/activities (G1).
func (h *Handler) createActivity(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in activityInput
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	w, err := validateActivity(&in, h.now())
	if err != nil {
		return nil, err
	}
	stocks, err := h.awardStocks(ctx, in.AwardSendRule.AwardList)
	if err != nil {
		return nil, err
	}
	if err := checkAwards(stocks, w); err != nil {
		return nil, err
	}
	supplied := in.ActivityBaseInfo.OutRequestNo
	intentBase := *in.ActivityBaseInfo
	intentBase.OutRequestNo = ""
	intent := in
	intent.ActivityBaseInfo = &intentBase
	var wx struct {
		ActivityID string `json:"activity_id"`
		CreateTime string `json:"create_time"`
	}
	return h.run(ctx, op{kind: kindPayGiftCreate, supplied: supplied, field: "out_request_no", maxLen: maxRequestNo, input: intent,
		build: func(no string) (wxCall, error) {
			in.ActivityBaseInfo.OutRequestNo = no
			b, err := json.Marshal(in)
			return wxCall{Method: http.MethodPost, Path: paygift + "/unique-threshold-activity", Body: b}, err
		}}, &wx, func(no string, call wxCall) (outcome, error) {
		if wx.ActivityID == "" {
			return outcome{}, fmt.Errorf("coupons: create activity: WeChat Pay answered no activity_id")
		}
		stamp := ledger.WechatTime(h.now())
		ids := make([]string, len(in.AwardSendRule.AwardList))
		for i, a := range in.AwardSendRule.AwardList {
			ids[i] = a.StockID
		}
		row := ledger.Activity{ActivityID: wx.ActivityID, ActivityName: in.ActivityBaseInfo.ActivityName, Status: "CREATE_ACT_STATUS",
			BeginTime: ledger.WechatTime(w.begin), EndTime: ledger.WechatTime(w.end), SendContent: in.AwardSendRule.SendContent,
			StockIDs: ids, Merchants: in.AwardSendRule.MerchantIDList, Minimum: *in.AwardSendRule.TransactionAmountMinimum,
			OutRequestNo: no, CreateTime: wx.CreateTime, UpdatedAt: stamp, RequestJSON: string(call.Body)}
		return outcome{answer: map[string]string{"activity_id": wx.ActivityID, "create_time": wx.CreateTime, "out_request_no": no},
			ops: []store.Op{&store.Put{Key: ledger.ActivityKey(wx.ActivityID), Value: row,
				Index: store.IndexKey{PK: ledger.ActivitiesIndex, SK: stamp + "#" + wx.ActivityID}}}}, nil
	})
}

// activityPath is the WeChat path of an activity (ids are digits).
func activityPath(id string, more ...string) string {
	p := paygift + "/activities/" + url.PathEscape(id)
	for _, m := range more {
		p += "/" + m
	}
	return p
}

// listActivities is GET /paygift/activities (G7): offset (a 0-based page
// number) defaults to 0 and limit to 10; WeChat requires both.
func (h *Handler) listActivities(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	q := url.Values{"offset": {"0"}, "limit": {"10"}}
	if err := pageQuery(req, q, maxActivityPage); err != nil {
		return nil, err
	}
	if v := req.Query("activity_name"); v != "" {
		if err := runes("activity_name", v, 1, 10); err != nil {
			return nil, err
		}
		if err := noFourByteRunes(v); err != nil {
			return nil, err
		}
		q.Set("activity_name", v)
	}
	if v := req.Query("activity_status"); v != "" {
		if err := oneOf("activity_status", v, activityStatuses); err != nil {
			return nil, err
		}
		q.Set("activity_status", v)
	}
	if v := req.Query("award_type"); v != "" {
		if v != "BUSIFAVOR" {
			return nil, paramErr("award_type must be BUSIFAVOR, got %q", v)
		}
		q.Set("award_type", v)
	}
	raw, err := h.query(ctx, paygift+"/activities", q)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// getActivity is GET /paygift/activities/{activity_id} (G2); the ledger
// row takes WeChat's status.
func (h *Handler) getActivity(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id := req.PathParams["activity_id"]
	if err := validID("activity_id", id); err != nil {
		return nil, err
	}
	raw, err := h.query(ctx, activityPath(id), nil)
	if err != nil {
		return nil, err
	}
	var a struct {
		ActivityStatus   string `json:"activity_status"`
		ActivityBaseInfo struct {
			ActivityName string `json:"activity_name"`
			BeginTime    string `json:"begin_time"`
			EndTime      string `json:"end_time"`
		} `json:"activity_base_info"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("coupons: decode activity %s: %w", id, err)
	}
	if err := h.deps.Store.Update(ctx, &store.Update{Key: ledger.ActivityKey(id), Set: map[string]any{"activity_id": id,
		"activity_status": a.ActivityStatus, "activity_name": a.ActivityBaseInfo.ActivityName, "begin_time": a.ActivityBaseInfo.BeginTime,
		"end_time": a.ActivityBaseInfo.EndTime, "updated_at": ledger.WechatTime(h.now())}}); err != nil {
		return nil, fmt.Errorf("coupons: record activity %s: %w", id, err)
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// activityList serves G3 and G4: GET with optional offset/limit.
func (h *Handler) activityList(ctx context.Context, req *apigw.Request, what string) (*apigw.Response, error) {
	id := req.PathParams["activity_id"]
	if err := validID("activity_id", id); err != nil {
		return nil, err
	}
	q := url.Values{}
	if err := pageQuery(req, q, maxActivityPage); err != nil {
		return nil, err
	}
	raw, err := h.query(ctx, activityPath(id, what), q)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// activityMerchants is GET /paygift/activities/{activity_id}/merchants (G3).
func (h *Handler) activityMerchants(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	return h.activityList(ctx, req, "merchants")
}

// activityGoods is GET /paygift/activities/{activity_id}/goods (G4).
func (h *Handler) activityGoods(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	return h.activityList(ctx, req, "goods")
}

// terminateActivity is POST /paygift/activities/{activity_id}/terminate
// (G5). The API has no request number: terminating twice is refused by
// WeChat Pay, which is harmless.
func (h *Handler) terminateActivity(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id := req.PathParams["activity_id"]
	if err := validID("activity_id", id); err != nil {
		return nil, err
	}
	client, err := h.client()
	if err != nil {
		return nil, err
	}
	var wx struct {
		ActivityID    string `json:"activity_id"`
		TerminateTime string `json:"terminate_time"`
	}
	if _, err := client.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: activityPath(id, "terminate")}, &wx); err != nil {
		return nil, wechatError(err)
	}
	if err := h.deps.Store.Update(ctx, &store.Update{Key: ledger.ActivityKey(id), Set: map[string]any{"activity_id": id,
		"activity_status": statusTerminated, "terminate_time": wx.TerminateTime, "updated_at": ledger.WechatTime(h.now())}}); err != nil {
		return nil, fmt.Errorf("coupons: record terminated activity %s: %w", id, err)
	}
	return apigw.JSON(http.StatusOK, wx), nil
}

// changeMerchants is POST /paygift/activities/{activity_id}/merchants/add
// and .../delete (G6, G8): add_request_no / delete_request_no are the
// caller's or generated, stored before the call.
func (h *Handler) changeMerchants(add bool) func(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	kind, field, path := kindPayGiftAdd, "add_request_no", "merchants/add"
	if !add {
		kind, field, path = kindPayGiftDelete, "delete_request_no", "merchants/delete"
	}
	return func(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
		id := req.PathParams["activity_id"]
		if err := validID("activity_id", id); err != nil {
			return nil, err
		}
		var in struct {
			MerchantIDList  []string `json:"merchant_id_list"`
			AddRequestNo    string   `json:"add_request_no,omitempty"`
			DeleteRequestNo string   `json:"delete_request_no,omitempty"`
		}
		if err := decode(req, &in); err != nil {
			return nil, err
		}
		supplied := in.AddRequestNo
		if !add {
			supplied = in.DeleteRequestNo
			if in.AddRequestNo != "" {
				return nil, paramErr("add_request_no belongs to merchants/add; this is merchants/delete (delete_request_no)")
			}
		} else if in.DeleteRequestNo != "" {
			return nil, paramErr("delete_request_no belongs to merchants/delete; this is merchants/add (add_request_no)")
		}
		if err := requestNumber(field, supplied, maxRequestNo); err != nil {
			return nil, err
		}
		if err := merchantIDs("merchant_id_list", in.MerchantIDList, 500); err != nil {
			return nil, err
		}
		var wx struct {
			InvalidMerchantIDList []invalidMerchant `json:"invalid_merchant_id_list"`
		}
		var raw json.RawMessage
		return h.run(ctx, op{kind: kind, scope: id, supplied: supplied, field: field, maxLen: maxRequestNo,
			input: map[string]any{"activity_id": id, "merchant_id_list": in.MerchantIDList},
			build: func(no string) (wxCall, error) {
				body := map[string]any{"merchant_id_list": in.MerchantIDList, field: no}
				b, err := json.Marshal(body)
				return wxCall{Method: http.MethodPost, Path: activityPath(id, path), Body: b}, err
			}}, &raw, func(no string, _ wxCall) (outcome, error) {
			var answer map[string]any
			if err := json.Unmarshal(raw, &answer); err != nil {
				return outcome{}, fmt.Errorf("coupons: decode %s answer: %w", path, err)
			}
			if err := json.Unmarshal(raw, &wx); err != nil {
				return outcome{}, fmt.Errorf("coupons: decode %s answer: %w", path, err)
			}
			answer[field] = no
			merchants, err := h.activityMerchantsAfter(ctx, id, add, in.MerchantIDList, wx.InvalidMerchantIDList)
			if err != nil {
				return outcome{}, err
			}
			return outcome{answer: answer, ops: []store.Op{&store.Update{Key: ledger.ActivityKey(id), Set: map[string]any{
				"activity_id": id, "merchants": merchants, "updated_at": ledger.WechatTime(h.now())}}}}, nil
		})
	}
}

// invalidMerchant is an entry of G6's invalid_merchant_id_list.
type invalidMerchant struct {
	MchID         string `json:"mchid"`
	InvalidReason string `json:"invalid_reason"`
}

// activityMerchantsAfter is the ledger's merchant list after an add or a
// delete WeChat Pay accepted.
func (h *Handler) activityMerchantsAfter(ctx context.Context, id string, add bool, ids []string, invalid []invalidMerchant) ([]string, error) {
	var row ledger.Activity
	if err := h.deps.Store.Get(ctx, ledger.ActivityKey(id), &row); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("coupons: read activity %s: %w", id, err)
	}
	out := slices.Clone(row.Merchants)
	for _, m := range ids {
		bad := slices.ContainsFunc(invalid, func(v invalidMerchant) bool { return v.MchID == m })
		switch {
		case add && !bad && !slices.Contains(out, m):
			out = append(out, m)
		case !add:
			out = slices.DeleteFunc(out, func(v string) bool { return v == m })
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}
