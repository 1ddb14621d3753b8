package coupons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

const busifavor = "/v3/marketing/busifavor"

// stockPath is the WeChat path of a stock (stock ids are checked to be
// digits before they get here).
func stockPath(stockID string, more ...string) string {
	p := busifavor + "/stocks/" + url.PathEscape(stockID)
	for _, m := range more {
		p += "/" + url.PathEscape(m)
	}
	return p
}

// ledgerStock reads a stock row; ok is false when the ledger does not know
// the stock (created elsewhere).
func (h *Handler) ledgerStock(ctx context.Context, stockID string) (ledger.Stock, bool, error) {
	var s ledger.Stock
	err := h.deps.Store.Get(ctx, ledger.StockKey(stockID), &s)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s, false, nil
	case err != nil:
		return s, false, fmt.Errorf("coupons: read stock %s: %w", stockID, err)
	}
	return s, true, nil
}

// createStock is POST /coupons/stocks (B1).
func (h *Handler) createStock(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in stockInput
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	w, err := validateStock(&in, creds.MchID, creds.AppIDs, h.now())
	if err != nil {
		return nil, err
	}
	supplied := in.OutRequestNo
	intent := in
	intent.OutRequestNo = ""
	var wx struct {
		StockID    string `json:"stock_id"`
		CreateTime string `json:"create_time"`
	}
	return h.run(ctx, op{kind: kindCreateStock, supplied: supplied, field: "out_request_no", maxLen: maxRequestNo, input: intent,
		build: func(no string) (wxCall, error) {
			in.OutRequestNo = no
			b, err := json.Marshal(in)
			return wxCall{Method: http.MethodPost, Path: busifavor + "/stocks", Body: b}, err
		}}, &wx, func(no string, call wxCall) (outcome, error) {
		if wx.StockID == "" {
			return outcome{}, fmt.Errorf("coupons: create stock: WeChat Pay answered no stock_id")
		}
		stamp := ledger.WechatTime(h.now())
		row := ledger.Stock{StockID: wx.StockID, StockName: in.StockName, StockType: in.StockType, CouponCodeMode: in.CouponCodeMode,
			BelongMerchant: in.BelongMerchant, State: ledger.StockCreated, MaxCoupons: *in.StockSendRule.MaxCoupons,
			MaxCouponsPerUser: *in.StockSendRule.MaxCouponsPerUser, AvailableBeginTime: ledger.WechatTime(w.begin),
			AvailableEndTime: ledger.WechatTime(w.end), OutRequestNo: no, CreateTime: wx.CreateTime, UpdatedAt: stamp,
			RequestJSON: string(call.Body)}
		if in.StockSendRule.MaxCouponsByDay != nil {
			row.MaxCouponsByDay = *in.StockSendRule.MaxCouponsByDay
		}
		if in.NotifyConfig != nil {
			row.NotifyAppID = in.NotifyConfig.NotifyAppID
		}
		return outcome{
			answer: map[string]string{"stock_id": wx.StockID, "create_time": wx.CreateTime, "out_request_no": no},
			ops: []store.Op{&store.Put{Key: ledger.StockKey(wx.StockID), Value: row,
				Index: store.IndexKey{PK: ledger.StocksIndex, SK: stamp + "#" + wx.StockID}}},
		}, nil
	})
}

// stockAnswer is the part of B2 the ledger records.
type stockAnswer struct {
	StockID        string `json:"stock_id"`
	StockName      string `json:"stock_name"`
	StockType      string `json:"stock_type"`
	StockState     string `json:"stock_state"`
	BelongMerchant string `json:"belong_merchant"`
	CouponCodeMode string `json:"coupon_code_mode"`
	CouponUseRule  struct {
		CouponAvailableTime struct {
			AvailableBeginTime string `json:"available_begin_time"`
			AvailableEndTime   string `json:"available_end_time"`
		} `json:"coupon_available_time"`
	} `json:"coupon_use_rule"`
	StockSendRule struct {
		MaxCoupons        int64 `json:"max_coupons"`
		MaxCouponsPerUser int64 `json:"max_coupons_per_user"`
		MaxCouponsByDay   int64 `json:"max_coupons_by_day"`
	} `json:"stock_send_rule"`
	CouponCodeCount *struct {
		TotalCount     int64 `json:"total_count"`
		AvailableCount int64 `json:"available_count"`
	} `json:"coupon_code_count"`
	SendCountInformation struct {
		TotalSendNum int64 `json:"total_send_num"`
		TodaySendNum int64 `json:"today_send_num"`
	} `json:"send_count_information"`
}

// fetchStock queries a stock at WeChat Pay and refreshes the ledger row
// with WeChat's figures.
func (h *Handler) fetchStock(ctx context.Context, stockID string) (json.RawMessage, stockAnswer, error) {
	var a stockAnswer
	raw, err := h.query(ctx, stockPath(stockID), nil)
	if err != nil {
		return nil, a, err
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, a, fmt.Errorf("coupons: decode stock %s: %w", stockID, err)
	}
	stamp := ledger.WechatTime(h.now())
	set := map[string]any{"stock_id": stockID, "stock_name": a.StockName, "stock_type": a.StockType, "stock_state": a.StockState,
		"belong_merchant": a.BelongMerchant, "coupon_code_mode": a.CouponCodeMode, "max_coupons": a.StockSendRule.MaxCoupons,
		"max_coupons_per_user": a.StockSendRule.MaxCouponsPerUser, "max_coupons_by_day": a.StockSendRule.MaxCouponsByDay,
		"available_begin_time": a.CouponUseRule.CouponAvailableTime.AvailableBeginTime,
		"available_end_time":   a.CouponUseRule.CouponAvailableTime.AvailableEndTime,
		"total_send_num":       a.SendCountInformation.TotalSendNum, "today_send_num": a.SendCountInformation.TodaySendNum,
		"synced_at": stamp, "updated_at": stamp}
	if c := a.CouponCodeCount; c != nil {
		set["uploaded_codes"], set["available_code_count"] = c.TotalCount, c.AvailableCount
	}
	if err := h.deps.Store.Update(ctx, &store.Update{Key: ledger.StockKey(stockID), Set: set}); err != nil {
		return nil, a, fmt.Errorf("coupons: record stock %s: %w", stockID, err)
	}
	return raw, a, nil
}

// getStock is GET /coupons/stocks/{stock_id} (B2); it refreshes the ledger.
func (h *Handler) getStock(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id := req.PathParams["stock_id"]
	if err := validID("stock_id", id); err != nil {
		return nil, err
	}
	raw, _, err := h.fetchStock(ctx, id)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// modifyStock is PATCH /coupons/stocks/{stock_id} (B3).
func (h *Handler) modifyStock(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id := req.PathParams["stock_id"]
	if err := validID("stock_id", id); err != nil {
		return nil, err
	}
	var in modifyInput
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateModify(&in, creds.AppIDs); err != nil {
		return nil, err
	}
	supplied := in.OutRequestNo
	intent := in
	intent.OutRequestNo = ""
	return h.run(ctx, op{kind: kindModifyStock, scope: id, supplied: supplied, field: "out_request_no", maxLen: maxRequestNo,
		input: map[string]any{"stock_id": id, "change": intent},
		build: func(no string) (wxCall, error) {
			in.OutRequestNo = no
			b, err := json.Marshal(in)
			return wxCall{Method: http.MethodPatch, Path: stockPath(id), Body: b}, err
		}}, nil, func(no string, _ wxCall) (outcome, error) {
		set := map[string]any{"updated_at": ledger.WechatTime(h.now())}
		if in.StockName != nil {
			set["stock_name"] = *in.StockName
		}
		if in.NotifyConfig != nil {
			set["notify_appid"] = in.NotifyConfig.NotifyAppID
		}
		return outcome{answer: map[string]any{"stock_id": id, "out_request_no": no, "modified": true},
			ops: []store.Op{&store.Update{Key: ledger.StockKey(id), Set: set}}}, nil
	})
}

// budgetInput is the modify-budget body (B4): one pair per call. The
// current value defaults to the ledger's.
type budgetInput struct {
	TargetMaxCoupons       *int64 `json:"target_max_coupons,omitempty"`
	CurrentMaxCoupons      *int64 `json:"current_max_coupons,omitempty"`
	TargetMaxCouponsByDay  *int64 `json:"target_max_coupons_by_day,omitempty"`
	CurrentMaxCouponsByDay *int64 `json:"current_max_coupons_by_day,omitempty"`
	ModifyBudgetRequestNo  string `json:"modify_budget_request_no,omitempty"`
}

// modifyBudget is POST /coupons/stocks/{stock_id}/budget (B4, a PATCH at
// WeChat Pay).
func (h *Handler) modifyBudget(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id := req.PathParams["stock_id"]
	if err := validID("stock_id", id); err != nil {
		return nil, err
	}
	var in budgetInput
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if err := requestNumber("modify_budget_request_no", in.ModifyBudgetRequestNo, maxRequestNo); err != nil {
		return nil, err
	}
	total := in.TargetMaxCoupons != nil || in.CurrentMaxCoupons != nil
	daily := in.TargetMaxCouponsByDay != nil || in.CurrentMaxCouponsByDay != nil
	if total == daily {
		return nil, paramErr("change exactly one budget per call: target_max_coupons (+ current_max_coupons) or target_max_coupons_by_day (+ current_max_coupons_by_day)")
	}
	row, known, err := h.ledgerStock(ctx, id)
	if err != nil {
		return nil, err
	}
	if total {
		if err := fen("target_max_coupons", in.TargetMaxCoupons, 1, maxStockCoupons); err != nil {
			return nil, err
		}
		if in.CurrentMaxCoupons == nil && known {
			in.CurrentMaxCoupons = &row.MaxCoupons
		}
		if err := fen("current_max_coupons", in.CurrentMaxCoupons, 1, maxStockCoupons); err != nil {
			return nil, err
		}
		if known && row.CouponCodeMode == "MERCHANT_UPLOAD" && *in.TargetMaxCoupons < row.UploadedCodes {
			return nil, apigw.Errorf(http.StatusBadRequest, CodeStockRule, "target_max_coupons %d is below the %d codes already uploaded", *in.TargetMaxCoupons, row.UploadedCodes)
		}
	} else {
		if err := fen("target_max_coupons_by_day", in.TargetMaxCouponsByDay, 1, maxStockCoupons); err != nil {
			return nil, err
		}
		if in.CurrentMaxCouponsByDay == nil && known {
			in.CurrentMaxCouponsByDay = &row.MaxCouponsByDay
		}
		if err := fen("current_max_coupons_by_day", in.CurrentMaxCouponsByDay, 0, maxStockCoupons); err != nil {
			return nil, err
		}
		if known && *in.TargetMaxCouponsByDay > row.MaxCoupons {
			return nil, apigw.Errorf(http.StatusBadRequest, CodeStockRule, "target_max_coupons_by_day %d exceeds the stock's max_coupons %d", *in.TargetMaxCouponsByDay, row.MaxCoupons)
		}
	}
	supplied := in.ModifyBudgetRequestNo
	intent := in
	intent.ModifyBudgetRequestNo = ""
	var wx struct {
		MaxCoupons      int64 `json:"max_coupons"`
		MaxCouponsByDay int64 `json:"max_coupons_by_day"`
	}
	return h.run(ctx, op{kind: kindBudget, scope: id, supplied: supplied, field: "modify_budget_request_no", maxLen: maxRequestNo,
		input: map[string]any{"stock_id": id, "change": intent},
		build: func(no string) (wxCall, error) {
			in.ModifyBudgetRequestNo = no
			b, err := json.Marshal(in)
			return wxCall{Method: http.MethodPatch, Path: stockPath(id, "budget"), Body: b}, err
		}}, &wx, func(no string, _ wxCall) (outcome, error) {
		return outcome{answer: map[string]any{"stock_id": id, "max_coupons": wx.MaxCoupons, "max_coupons_by_day": wx.MaxCouponsByDay,
			"modify_budget_request_no": no},
			ops: []store.Op{&store.Update{Key: ledger.StockKey(id), Set: map[string]any{"max_coupons": wx.MaxCoupons,
				"max_coupons_by_day": wx.MaxCouponsByDay, "updated_at": ledger.WechatTime(h.now())}}}}, nil
	})
}

// uploadCodes is POST /coupons/stocks/{stock_id}/codes (B5).
func (h *Handler) uploadCodes(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id := req.PathParams["stock_id"]
	if err := validID("stock_id", id); err != nil {
		return nil, err
	}
	var in struct {
		CouponCodeList  []string `json:"coupon_code_list"`
		UploadRequestNo string   `json:"upload_request_no,omitempty"`
	}
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if err := requestNumber("upload_request_no", in.UploadRequestNo, maxRequestNo); err != nil {
		return nil, err
	}
	if n := len(in.CouponCodeList); n < 1 || n > maxUploadCodes {
		return nil, paramErr("coupon_code_list must hold 1..%d codes, got %d", maxUploadCodes, n)
	}
	seen := map[string]bool{}
	for i, c := range in.CouponCodeList {
		if err := validCode(fmt.Sprintf("coupon_code_list[%d]", i), c); err != nil {
			return nil, err
		}
		if seen[c] {
			return nil, paramErr("coupon_code_list[%d] %q is a duplicate", i, c)
		}
		seen[c] = true
	}
	row, known, err := h.ledgerStock(ctx, id)
	if err != nil {
		return nil, err
	}
	if known && row.CouponCodeMode != "MERCHANT_UPLOAD" {
		return nil, apigw.Errorf(http.StatusBadRequest, CodeStockRule, "stock %s is %s: only MERCHANT_UPLOAD stocks take uploaded codes", id, row.CouponCodeMode)
	}
	if known && row.UploadedCodes+int64(len(in.CouponCodeList)) > row.MaxCoupons {
		return nil, apigw.Errorf(http.StatusBadRequest, CodeStockRule, "%d uploaded + %d new codes exceed the stock size max_coupons %d",
			row.UploadedCodes, len(in.CouponCodeList), row.MaxCoupons)
	}
	supplied := in.UploadRequestNo
	var wx struct {
		SuccessCount int64 `json:"success_count"`
	}
	var raw json.RawMessage
	return h.run(ctx, op{kind: kindUpload, scope: id, supplied: supplied, field: "upload_request_no", maxLen: maxRequestNo,
		input: map[string]any{"stock_id": id, "codes": in.CouponCodeList},
		build: func(no string) (wxCall, error) {
			in.UploadRequestNo = no
			b, err := json.Marshal(in)
			return wxCall{Method: http.MethodPost, Path: stockPath(id, "couponcodes"), Body: b}, err
		}}, &raw, func(no string, _ wxCall) (outcome, error) {
		if err := json.Unmarshal(raw, &wx); err != nil {
			return outcome{}, fmt.Errorf("coupons: decode upload answer: %w", err)
		}
		var answer map[string]any
		if err := json.Unmarshal(raw, &answer); err != nil {
			return outcome{}, fmt.Errorf("coupons: decode upload answer: %w", err)
		}
		answer["upload_request_no"] = no
		return outcome{answer: answer, ops: []store.Op{&store.Update{Key: ledger.StockKey(id),
			Add: map[string]int64{"uploaded_codes": wx.SuccessCount}, Set: map[string]any{"updated_at": ledger.WechatTime(h.now())}}}}, nil
	})
}

// pageQuery validates offset (>= 0) and limit (1..maxLimit) query values
// into q.
func pageQuery(req *apigw.Request, q url.Values, maxLimit int) error {
	if v := req.Query("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return paramErr("offset must be a non-negative integer, got %q", v)
		}
		q.Set("offset", strconv.Itoa(n))
	}
	if v := req.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return paramErr("limit must be 1..%d, got %q", maxLimit, v)
		}
		q.Set("limit", strconv.Itoa(n))
	}
	return nil
}

// listCodes is GET /coupons/stocks/{stock_id}/codes (B6).
func (h *Handler) listCodes(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id := req.PathParams["stock_id"]
	if err := validID("stock_id", id); err != nil {
		return nil, err
	}
	q := url.Values{}
	if err := pageQuery(req, q, maxPage); err != nil {
		return nil, err
	}
	if s := req.Query("status"); s != "" {
		if err := oneOf("status", s, codeStatuses); err != nil {
			return nil, err
		}
		q.Set("status", s)
	}
	if a := req.Query("appid"); a != "" {
		creds, err := h.creds(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := appID("appid", a, creds.AppIDs); err != nil {
			return nil, err
		}
		q.Set("appid", a)
	}
	raw, err := h.query(ctx, stockPath(id, "couponcodes"), q)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// getCode is GET /coupons/stocks/{stock_id}/codes/{coupon_code} (B7).
func (h *Handler) getCode(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id, code := req.PathParams["stock_id"], req.PathParams["coupon_code"]
	if err := validID("stock_id", id); err != nil {
		return nil, err
	}
	if err := validCode("coupon_code", code); err != nil {
		return nil, err
	}
	q := url.Values{}
	if a := req.Query("appid"); a != "" {
		creds, err := h.creds(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := appID("appid", a, creds.AppIDs); err != nil {
			return nil, err
		}
		q.Set("appid", a)
	}
	raw, err := h.query(ctx, stockPath(id, "couponcodes", code), q)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// deleteCode is DELETE /coupons/stocks/{stock_id}/codes/{coupon_code} (B8):
// delete_request_no (query) is the caller's or generated.
func (h *Handler) deleteCode(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	id, code := req.PathParams["stock_id"], req.PathParams["coupon_code"]
	if err := validID("stock_id", id); err != nil {
		return nil, err
	}
	if err := validCode("coupon_code", code); err != nil {
		return nil, err
	}
	var wx struct {
		DeleteTime string `json:"delete_time"`
	}
	return h.run(ctx, op{kind: kindDeleteCode, scope: id + "#" + code, supplied: req.Query("delete_request_no"), field: "delete_request_no",
		maxLen: maxRequestNo, input: map[string]string{"stock_id": id, "coupon_code": code},
		build: func(no string) (wxCall, error) {
			return wxCall{Method: http.MethodDelete, Path: stockPath(id, "couponcodes", code), Query: url.Values{"delete_request_no": {no}}}, nil
		}}, &wx, func(no string, _ wxCall) (outcome, error) {
		return outcome{answer: map[string]string{"stock_id": id, "coupon_code": code, "delete_time": wx.DeleteTime, "delete_request_no": no},
			ops: []store.Op{&store.Update{Key: ledger.StockKey(id), Add: map[string]int64{"uploaded_codes": -1},
				Set: map[string]any{"updated_at": ledger.WechatTime(h.now())}}}}, nil
	})
}
