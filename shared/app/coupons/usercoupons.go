package coupons

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// ledgerCoupon reads a coupon row; ok is false when the ledger has none.
func (h *Handler) ledgerCoupon(ctx context.Context, stockID, code string) (ledger.Coupon, bool, error) {
	var c ledger.Coupon
	err := h.deps.Store.Get(ctx, ledger.CouponKey(stockID, code), &c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c, false, nil
	case err != nil:
		return c, false, fmt.Errorf("coupons: read coupon %s/%s: %w", stockID, code, err)
	}
	return c, true, nil
}

// couponStage is where a coupon stands when a transition of it is
// requested: its state and the request number of its last transition.
type couponStage struct {
	key   store.Key
	stage string
}

// onCoupon prepares a request-numbered transition of one coupon (kind,
// the caller's number, the intent without it). A request without a number
// whose intent equals the coupon's last transition is a late copy of a
// request that already completed: it replays that answer (done non-nil).
// Otherwise the transition is bound to the coupon's stage, so identical
// requests share one generated request number per stage (and so make one
// WeChat call, however they interleave), while a later stage — a coupon
// used again after a return — gets a new number.
func (h *Handler) onCoupon(ctx context.Context, kind, supplied string, intent any, stockID, code string, cur ledger.Coupon, known bool) (*couponStage, *apigw.Response, error) {
	stage := &couponStage{key: ledger.CouponKey(stockID, code), stage: cur.State + "#" + cur.LastRequestNo}
	if supplied != "" || !known || cur.LastIntent == "" || cur.LastRequestNo == "" {
		return stage, nil, nil
	}
	digest, err := digestOf(kind, intent)
	if err != nil {
		return nil, nil, err
	}
	if cur.LastIntent != kind+"#"+digest {
		return stage, nil, nil
	}
	var rec ledger.CouponRequest
	switch err := h.deps.Store.Get(ctx, ledger.CouponRequestKey(kind, cur.LastRequestNo), &rec); {
	case errors.Is(err, store.ErrNotFound):
		return stage, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("coupons: %s: read request %s: %w", kind, cur.LastRequestNo, err)
	case rec.State == ledger.RequestDone:
		done, err := replay(rec)
		return nil, done, err
	}
	return stage, nil, nil
}

// slotDigest is the slot's digest of an intent: per stage for coupon
// transitions, the intent's own otherwise.
func (c *couponStage) slotDigest(digest string) string {
	if c == nil {
		return digest
	}
	sum := sha256.Sum256([]byte(digest + "\n" + c.stage))
	return hex.EncodeToString(sum[:])
}

// mark records on the coupon row, in the transaction that completes a
// transition, which request moved it last and with what intent.
func (c *couponStage) mark(ops []store.Op, kind, digest, no string) {
	if c == nil {
		return
	}
	for _, op := range ops {
		if u, ok := op.(*store.Update); ok && u.Key == c.key {
			u.Set["last_request_no"], u.Set["last_intent"] = no, kind+"#"+digest
		}
	}
}

// transition is one request-numbered action on a single coupon (use,
// associate, disassociate, return, deactivate).
type transition struct {
	kind, action  string // request kind; history action
	path          string // WeChat path under busifavor
	field         string // the request-number field
	maxLen        int
	stockID, code string
	supplied      string // the caller's number ("" generates one)
	intent        any    // the request without its number
	wx            any    // WeChat's decoded answer
	// body is the WeChat request body for a request number.
	body func(no string) any
	// check is the state rule for a coupon the ledger knows (4xx, no call).
	check func(cur ledger.Coupon) error
	// apply turns the body as sent into our answer, the coupon row's new
	// attributes and the history entry's detail.
	apply func(no string, sent []byte) (answer any, set map[string]any, detail string, err error)
}

// transition runs t: the ledger's coupon is read, a late copy of a
// completed request is replayed (onCoupon), the state rule is checked
// locally, then the call goes through run and the coupon row and its
// history are written with the DONE record.
func (h *Handler) transition(ctx context.Context, t transition) (*apigw.Response, error) {
	cur, known, err := h.ledgerCoupon(ctx, t.stockID, t.code)
	if err != nil {
		return nil, err
	}
	stage, done, err := h.onCoupon(ctx, t.kind, t.supplied, t.intent, t.stockID, t.code, cur, known)
	if done != nil || err != nil {
		return done, err
	}
	if known {
		if err := t.check(cur); err != nil {
			return nil, err
		}
	}
	return h.run(ctx, op{kind: t.kind, scope: t.stockID + "#" + t.code, supplied: t.supplied, field: t.field,
		maxLen: t.maxLen, input: t.intent, coupon: stage,
		build: func(no string) (wxCall, error) {
			b, err := json.Marshal(t.body(no))
			return wxCall{Method: http.MethodPost, Path: busifavor + t.path, Body: b}, err
		}}, t.wx, func(no string, call wxCall) (outcome, error) {
		answer, set, detail, err := t.apply(no, call.Body)
		if err != nil {
			return outcome{}, err
		}
		stamp := ledger.WechatTime(h.now())
		set["stock_id"], set["coupon_code"], set["updated_at"] = t.stockID, t.code, stamp
		return outcome{answer: answer, ops: []store.Op{&store.Update{Key: ledger.CouponKey(t.stockID, t.code), Set: set},
			history(t.stockID, t.code, stamp, t.action, no, detail)}}, nil
	})
}

// couponState is the 409 for a coupon the ledger shows in a state that
// does not allow the action.
func couponState(c ledger.Coupon, action, want string) error {
	return apigw.Errorf(http.StatusConflict, CodeCouponState, "coupon %s of stock %s is %s; %s needs %s", c.CouponCode, c.StockID, c.State, action, want)
}

// history is the ledger entry of one coupon action.
func history(stockID, code, at, action, no, detail string) store.Op {
	return &store.Put{Key: ledger.CouponHistoryKey(stockID, code, at, action, no),
		Value: ledger.CouponEvent{StockID: stockID, CouponCode: code, Action: action, RequestNo: no, At: at, Detail: detail}}
}

// validOutTradeNo: 6..32 characters of letters, digits and _-|*.
func validOutTradeNo(field, v string) error {
	if len(v) < 6 || !ledger.ValidRequestNo(v, 32) {
		return paramErr("%s must be 6..32 characters of letters, digits and _-|*, got %q", field, v)
	}
	return nil
}

// couponTarget checks the stock_id + coupon_code pair every coupon action
// names. stock_id is required even for WECHATPAY_MODE stocks: it addresses
// the coupon in the ledger.
func couponTarget(stockID, code string) error {
	if err := validID("stock_id", stockID); err != nil {
		return err
	}
	return validCode("coupon_code", code)
}

type useInput struct {
	CouponCode    string `json:"coupon_code"`
	StockID       string `json:"stock_id"`
	AppID         string `json:"appid,omitempty"`
	UseTime       string `json:"use_time,omitempty"`
	UseRequestNo  string `json:"use_request_no,omitempty"`
	OpenID        string `json:"openid,omitempty"`
	OutTradeNo    string `json:"out_trade_no,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
}

// use is POST /coupons/use (B9, 核销): use_request_no and use_time are the
// caller's or generated, and stored before the call.
func (h *Handler) use(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in useInput
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if err := couponTarget(in.StockID, in.CouponCode); err != nil {
		return nil, err
	}
	if err := requestNumber("use_request_no", in.UseRequestNo, maxUseRequestNo); err != nil {
		return nil, err
	}
	now := h.now()
	if in.UseTime != "" {
		t, s, err := wechatTime("use_time", in.UseTime)
		if err != nil {
			return nil, err
		}
		if t.After(now.Add(5 * time.Minute)) {
			return nil, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "use_time %s is in the future", s)
		}
		in.UseTime = s
	}
	if in.OpenID != "" {
		if err := validOpenID(in.OpenID); err != nil {
			return nil, err
		}
	}
	if in.OutTradeNo != "" {
		if err := validOutTradeNo("out_trade_no", in.OutTradeNo); err != nil {
			return nil, err
		}
	}
	if in.TransactionID != "" {
		if err := digits("transaction_id", in.TransactionID, 32); err != nil {
			return nil, err
		}
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	if in.AppID, err = appID("appid", in.AppID, creds.AppIDs); err != nil {
		return nil, err
	}
	supplied := in.UseRequestNo
	intent := in
	intent.UseRequestNo = ""
	var wx struct {
		StockID          string `json:"stock_id"`
		OpenID           string `json:"openid"`
		WechatpayUseTime string `json:"wechatpay_use_time"`
	}
	return h.transition(ctx, transition{kind: kindUse, action: "use", path: "/coupons/use", field: "use_request_no", maxLen: maxUseRequestNo,
		stockID: in.StockID, code: in.CouponCode, supplied: supplied, intent: intent, wx: &wx,
		body: func(no string) any {
			body := in
			body.UseRequestNo = no
			if body.UseTime == "" {
				body.UseTime = ledger.WechatTime(now)
			}
			return body
		},
		check: func(cur ledger.Coupon) error {
			replaying := in.UseRequestNo != "" && in.UseRequestNo == cur.UseRequestNo
			switch {
			case !replaying && cur.State != ledger.CouponSended:
				return couponState(cur, "use", ledger.CouponSended)
			case in.OpenID != "" && cur.OpenID != "" && cur.OpenID != in.OpenID:
				return apigw.Errorf(http.StatusConflict, CodeCouponState, "coupon %s belongs to another user", in.CouponCode)
			}
			return nil
		},
		apply: func(no string, body []byte) (any, map[string]any, string, error) {
			var sent useInput
			if err := json.Unmarshal(body, &sent); err != nil {
				return nil, nil, "", fmt.Errorf("coupons: stored use body: %w", err)
			}
			openid := wx.OpenID
			if openid == "" {
				openid = sent.OpenID
			}
			set := map[string]any{"state": ledger.CouponUsed, "use_request_no": no, "use_time": sent.UseTime,
				"wechatpay_use_time": wx.WechatpayUseTime, "appid": sent.AppID}
			if openid != "" {
				set["openid"] = openid
			}
			if sent.OutTradeNo != "" {
				set["use_out_trade_no"] = sent.OutTradeNo
			}
			answer := map[string]string{"stock_id": in.StockID, "coupon_code": in.CouponCode, "openid": openid, "state": ledger.CouponUsed,
				"use_request_no": no, "use_time": sent.UseTime, "wechatpay_use_time": wx.WechatpayUseTime}
			return answer, set, sent.OutTradeNo, nil
		}})
}

type sendInput struct {
	StockID      string `json:"stock_id"`
	OpenID       string `json:"openid"`
	AppID        string `json:"appid,omitempty"`
	OutRequestNo string `json:"out_request_no,omitempty"`
	CouponCode   string `json:"coupon_code,omitempty"`
}

// send is POST /coupons/send (B12): out_request_no is unique per stock and
// user, so the slot scope is the stock and the openid.
func (h *Handler) send(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in sendInput
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if err := validID("stock_id", in.StockID); err != nil {
		return nil, err
	}
	if err := validOpenID(in.OpenID); err != nil {
		return nil, err
	}
	if err := requestNumber("out_request_no", in.OutRequestNo, maxRequestNo); err != nil {
		return nil, err
	}
	if in.CouponCode != "" {
		if err := validCode("coupon_code", in.CouponCode); err != nil {
			return nil, err
		}
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	if in.AppID, err = appID("appid", in.AppID, creds.AppIDs); err != nil {
		return nil, err
	}
	stock, known, err := h.ledgerStock(ctx, in.StockID)
	if err != nil {
		return nil, err
	}
	switch {
	case known && stock.CouponCodeMode == "MERCHANT_API" && in.CouponCode == "":
		return nil, apigw.Errorf(http.StatusBadRequest, CodeStockRule, "stock %s is MERCHANT_API: coupon_code is required", in.StockID)
	case known && stock.CouponCodeMode != "MERCHANT_API" && in.CouponCode != "":
		return nil, apigw.Errorf(http.StatusBadRequest, CodeStockRule, "stock %s is %s: WeChat Pay picks the code, coupon_code must be empty", in.StockID, stock.CouponCodeMode)
	}
	supplied := in.OutRequestNo
	intent := in
	intent.OutRequestNo = ""
	var wx struct {
		StockID          string `json:"stock_id"`
		CouponCode       string `json:"coupon_code"`
		SendCouponResult *struct {
			StockID    string `json:"stock_id"`
			CouponCode string `json:"coupon_code"`
		} `json:"send_coupon_result"`
	}
	return h.run(ctx, op{kind: kindSend, scope: in.StockID + "#" + in.OpenID, supplied: supplied, field: "out_request_no",
		maxLen: maxRequestNo, input: intent,
		build: func(no string) (wxCall, error) {
			body := in
			body.OutRequestNo = no
			b, err := json.Marshal(body)
			return wxCall{Method: http.MethodPost, Path: busifavor + "/coupons/send", Body: b}, err
		}}, &wx, func(no string, _ wxCall) (outcome, error) {
		code := wx.CouponCode
		if r := wx.SendCouponResult; code == "" && r != nil {
			code = r.CouponCode // the SDK's wrapped shape (wechatpay-apiv3.md 3.1, B12)
		}
		if code == "" {
			return outcome{}, fmt.Errorf("coupons: send: WeChat Pay answered no coupon_code")
		}
		stamp := ledger.WechatTime(h.now())
		return outcome{
			answer: map[string]string{"stock_id": in.StockID, "coupon_code": code, "openid": in.OpenID, "out_request_no": no},
			ops: []store.Op{&store.Update{Key: ledger.CouponKey(in.StockID, code), Set: map[string]any{"stock_id": in.StockID,
				"coupon_code": code, "state": ledger.CouponSended, "openid": in.OpenID, "appid": in.AppID, "send_request_no": no,
				"send_channel": "BUSICOUPON_SEND_CHANNEL_API", "send_merchant": creds.MchID, "send_time": stamp, "updated_at": stamp}},
				history(in.StockID, code, stamp, "send", no, "api")},
		}, nil
	})
}

type associateInput struct {
	StockID      string `json:"stock_id"`
	CouponCode   string `json:"coupon_code"`
	OutTradeNo   string `json:"out_trade_no"`
	OutRequestNo string `json:"out_request_no,omitempty"`
}

// associate is POST /coupons/associate and /coupons/disassociate (B13,
// B14): link an unused coupon to a payment order, or undo it.
func (h *Handler) associate(link bool) func(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	kind, action, path, timeField := kindAssociate, "associate", "/coupons/associate", "wechatpay_associate_time"
	if !link {
		kind, action, path, timeField = kindDisassociate, "disassociate", "/coupons/disassociate", "wechatpay_disassociate_time"
	}
	return func(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
		var in associateInput
		if err := decode(req, &in); err != nil {
			return nil, err
		}
		if err := couponTarget(in.StockID, in.CouponCode); err != nil {
			return nil, err
		}
		if err := validOutTradeNo("out_trade_no", in.OutTradeNo); err != nil {
			return nil, err
		}
		if err := requestNumber("out_request_no", in.OutRequestNo, maxRequestNo); err != nil {
			return nil, err
		}
		supplied := in.OutRequestNo
		intent := in
		intent.OutRequestNo = ""
		var wx map[string]string
		return h.transition(ctx, transition{kind: kind, action: action, path: path, field: "out_request_no", maxLen: maxRequestNo,
			stockID: in.StockID, code: in.CouponCode, supplied: supplied, intent: intent, wx: &wx,
			body: func(no string) any {
				body := in
				body.OutRequestNo = no
				return body
			},
			check: func(cur ledger.Coupon) error {
				switch {
				case link && cur.State != ledger.CouponSended:
					return couponState(cur, action, ledger.CouponSended)
				case link && cur.AssociateOutTradeNo != "" && cur.AssociateOutTradeNo != in.OutTradeNo:
					return apigw.Errorf(http.StatusConflict, CodeCouponState, "coupon %s is associated with order %s", in.CouponCode, cur.AssociateOutTradeNo)
				case !link && cur.AssociateOutTradeNo != in.OutTradeNo:
					return apigw.Errorf(http.StatusConflict, CodeCouponState, "coupon %s is not associated with order %s", in.CouponCode, in.OutTradeNo)
				}
				return nil
			},
			apply: func(no string, _ []byte) (any, map[string]any, string, error) {
				trade := in.OutTradeNo
				if !link {
					trade = ""
				}
				answer := map[string]string{"stock_id": in.StockID, "coupon_code": in.CouponCode, "out_trade_no": in.OutTradeNo,
					"out_request_no": no, timeField: wx[timeField]}
				return answer, map[string]any{"associate_out_trade_no": trade}, in.OutTradeNo, nil
			}})
	}
}

// returnCoupon is POST /coupons/return (B15): a used coupon becomes usable
// again (after the order was refunded).
func (h *Handler) returnCoupon(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in struct {
		StockID         string `json:"stock_id"`
		CouponCode      string `json:"coupon_code"`
		ReturnRequestNo string `json:"return_request_no,omitempty"`
	}
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if err := couponTarget(in.StockID, in.CouponCode); err != nil {
		return nil, err
	}
	if err := requestNumber("return_request_no", in.ReturnRequestNo, maxRequestNo); err != nil {
		return nil, err
	}
	supplied := in.ReturnRequestNo
	intent := in
	intent.ReturnRequestNo = ""
	var wx struct {
		WechatpayReturnTime string `json:"wechatpay_return_time"`
	}
	return h.transition(ctx, transition{kind: kindReturn, action: "return", path: "/coupons/return", field: "return_request_no", maxLen: maxRequestNo,
		stockID: in.StockID, code: in.CouponCode, supplied: supplied, intent: intent, wx: &wx,
		body: func(no string) any {
			body := in
			body.ReturnRequestNo = no
			return body
		},
		check: func(cur ledger.Coupon) error {
			if cur.State != ledger.CouponUsed && !(in.ReturnRequestNo != "" && in.ReturnRequestNo == cur.ReturnRequestNo) {
				return couponState(cur, "return", ledger.CouponUsed)
			}
			return nil
		},
		apply: func(no string, _ []byte) (any, map[string]any, string, error) {
			answer := map[string]string{"stock_id": in.StockID, "coupon_code": in.CouponCode, "state": ledger.CouponSended,
				"return_request_no": no, "wechatpay_return_time": wx.WechatpayReturnTime}
			return answer, map[string]any{"state": ledger.CouponSended, "return_request_no": no, "return_time": wx.WechatpayReturnTime}, "", nil
		}})
}

// deactivate is POST /coupons/deactivate (B16): a usable coupon is
// invalidated for good.
func (h *Handler) deactivate(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in struct {
		StockID             string `json:"stock_id"`
		CouponCode          string `json:"coupon_code"`
		DeactivateRequestNo string `json:"deactivate_request_no,omitempty"`
		DeactivateReason    string `json:"deactivate_reason,omitempty"`
	}
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if err := couponTarget(in.StockID, in.CouponCode); err != nil {
		return nil, err
	}
	if err := requestNumber("deactivate_request_no", in.DeactivateRequestNo, maxRequestNo); err != nil {
		return nil, err
	}
	if err := runes("deactivate_reason", in.DeactivateReason, 0, 64); err != nil {
		return nil, err
	}
	supplied := in.DeactivateRequestNo
	intent := in
	intent.DeactivateRequestNo = ""
	var wx struct {
		WechatpayDeactivateTime string `json:"wechatpay_deactivate_time"`
	}
	return h.transition(ctx, transition{kind: kindDeactivate, action: "deactivate", path: "/coupons/deactivate", field: "deactivate_request_no",
		maxLen: maxRequestNo, stockID: in.StockID, code: in.CouponCode, supplied: supplied, intent: intent, wx: &wx,
		body: func(no string) any {
			body := in
			body.DeactivateRequestNo = no
			return body
		},
		check: func(cur ledger.Coupon) error {
			if cur.State != ledger.CouponSended && !(in.DeactivateRequestNo != "" && in.DeactivateRequestNo == cur.DeactivateRequestNo) {
				return couponState(cur, "deactivate", ledger.CouponSended)
			}
			return nil
		},
		apply: func(no string, _ []byte) (any, map[string]any, string, error) {
			answer := map[string]string{"stock_id": in.StockID, "coupon_code": in.CouponCode, "state": ledger.CouponDeactivated,
				"deactivate_request_no": no, "wechatpay_deactivate_time": wx.WechatpayDeactivateTime}
			return answer, map[string]any{"state": ledger.CouponDeactivated, "deactivate_request_no": no,
				"deactivate_time": wx.WechatpayDeactivateTime, "deactivate_reason": in.DeactivateReason}, in.DeactivateReason, nil
		}})
}

// filterUserCoupons is GET /coupons/users/{openid}/coupons (B10). Without
// creator_merchant, belong_merchant or sender_merchant, the merchant's own
// id is sent as creator_merchant (WeChat requires the one matching the
// caller's role).
func (h *Handler) filterUserCoupons(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	openid := req.PathParams["openid"]
	if err := validOpenID(openid); err != nil {
		return nil, err
	}
	q := url.Values{}
	if err := pageQuery(req, q, maxPage); err != nil {
		return nil, err
	}
	if s := req.Query("coupon_state"); s != "" {
		if err := oneOf("coupon_state", s, couponStates); err != nil {
			return nil, err
		}
		q.Set("coupon_state", s)
	}
	if s := req.Query("stock_id"); s != "" {
		if err := validID("stock_id", s); err != nil {
			return nil, err
		}
		q.Set("stock_id", s)
	}
	for _, f := range []string{"creator_merchant", "belong_merchant", "sender_merchant"} {
		if v := req.Query(f); v != "" {
			if err := digits(f, v, 32); err != nil {
				return nil, err
			}
			q.Set(f, v)
		}
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	a, err := appID("appid", req.Query("appid"), creds.AppIDs)
	if err != nil {
		return nil, err
	}
	q.Set("appid", a)
	if q.Get("creator_merchant") == "" && q.Get("belong_merchant") == "" && q.Get("sender_merchant") == "" {
		q.Set("creator_merchant", creds.MchID)
	}
	raw, err := h.query(ctx, busifavor+"/users/"+url.PathEscape(openid)+"/coupons", q)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// getUserCoupon is GET /coupons/users/{openid}/coupons/{coupon_code} (B11).
func (h *Handler) getUserCoupon(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	openid, code := req.PathParams["openid"], req.PathParams["coupon_code"]
	if err := validOpenID(openid); err != nil {
		return nil, err
	}
	if err := validCode("coupon_code", code); err != nil {
		return nil, err
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	a, err := appID("appid", req.Query("appid"), creds.AppIDs)
	if err != nil {
		return nil, err
	}
	raw, err := h.query(ctx, busifavor+"/users/"+url.PathEscape(openid)+"/coupons/"+url.PathEscape(code)+"/appids/"+url.PathEscape(a), nil)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}

// setCallback is PUT /coupons/callback (B17): notify_url defaults to the
// notify function's coupons channel.
func (h *Handler) setCallback(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in struct {
		MchID     string `json:"mchid,omitempty"`
		NotifyURL string `json:"notify_url,omitempty"`
	}
	if len(strings.TrimSpace(string(req.Body))) > 0 {
		if err := decode(req, &in); err != nil {
			return nil, err
		}
	}
	if in.NotifyURL == "" {
		in.NotifyURL = h.deps.NotifyURL(req, "coupons")
	}
	if err := notifyURL(in.NotifyURL); err != nil {
		return nil, err
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	if in.MchID == "" {
		in.MchID = creds.MchID
	}
	if err := digits("mchid", in.MchID, 32); err != nil {
		return nil, err
	}
	client, err := h.client()
	if err != nil {
		return nil, err
	}
	var wx struct {
		UpdateTime string `json:"update_time"`
		NotifyURL  string `json:"notify_url"`
		MchID      string `json:"mchid"`
	}
	if _, err := client.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: busifavor + "/callbacks", Body: in}, &wx); err != nil {
		return nil, wechatError(err)
	}
	if err := h.deps.Store.Put(ctx, &store.Put{Key: ledger.CouponCallbackKey(in.MchID), Value: map[string]string{"mchid": in.MchID,
		"notify_url": wx.NotifyURL, "update_time": wx.UpdateTime, "updated_at": ledger.WechatTime(h.now())}}); err != nil {
		return nil, fmt.Errorf("coupons: record callback: %w", err)
	}
	return apigw.JSON(http.StatusOK, wx), nil
}

// getCallback is GET /coupons/callback (B18).
func (h *Handler) getCallback(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	mch := req.Query("mchid")
	if mch == "" {
		creds, err := h.creds(ctx)
		if err != nil {
			return nil, err
		}
		mch = creds.MchID
	}
	if err := digits("mchid", mch, 32); err != nil {
		return nil, err
	}
	raw, err := h.query(ctx, busifavor+"/callbacks", url.Values{"mchid": {mch}})
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, raw), nil
}
