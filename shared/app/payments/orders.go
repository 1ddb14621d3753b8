package payments

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxnotify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// MaxOrderTotal bounds amount.total: WeChat Pay's own per-order limit is
// not in the reference (UNCONFIRMED); 10^10 fen (100 million yuan) is far
// above any real order and keeps every ledger sum of int64 fen safe from
// overflow, so larger values are refused locally.
const MaxOrderTotal int64 = 10_000_000_000

// endpoint maps a client trade type to the WeChat Pay prepay endpoint and
// the trade_type WeChat Pay records.
func endpoint(clientType string) (path, tradeType string, ok bool) {
	switch clientType {
	case "JSAPI", "MINIPROGRAM": // mini-programs pay through JSAPI
		return "/v3/pay/transactions/jsapi", "JSAPI", true
	case "NATIVE":
		return "/v3/pay/transactions/native", "NATIVE", true
	case "APP":
		return "/v3/pay/transactions/app", "APP", true
	case "H5":
		return "/v3/pay/transactions/h5", "MWEB", true
	}
	return "", "", false
}

// Prepay states of an order row.
const (
	prepayPending = "PENDING"
	prepayReady   = "READY"
)

// CreateOrderRequest is the body of POST /payments/orders.
type CreateOrderRequest struct {
	// TradeType is JSAPI, MINIPROGRAM, NATIVE, APP or H5.
	TradeType   string `json:"trade_type"`
	OutTradeNo  string `json:"out_trade_no"`
	Description string `json:"description"`
	// AppID defaults to the merchant's first appid; it must be bound to it.
	AppID  string `json:"appid,omitempty"`
	Amount struct {
		Total    int64  `json:"total"`              // fen
		Currency string `json:"currency,omitempty"` // CNY (default)
	} `json:"amount"`
	Payer *struct {
		OpenID string `json:"openid"`
	} `json:"payer,omitempty"` // JSAPI and MINIPROGRAM
	Attach     string     `json:"attach,omitempty"`
	TimeExpire string     `json:"time_expire,omitempty"` // RFC 3339, in the future
	GoodsTag   string     `json:"goods_tag,omitempty"`
	SceneInfo  *SceneInfo `json:"scene_info,omitempty"` // H5 needs payer_client_ip
}

// SceneInfo is the prepay scene_info.
type SceneInfo struct {
	PayerClientIP string `json:"payer_client_ip"`
	DeviceID      string `json:"device_id,omitempty"`
	H5Info        *struct {
		Type string `json:"type"` // Wap, iOS or Android; default Wap
	} `json:"h5_info,omitempty"`
}

// prepayBody is what WeChat Pay's prepay endpoints take.
type prepayBody struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire,omitempty"`
	Attach      string `json:"attach,omitempty"`
	NotifyURL   string `json:"notify_url"`
	GoodsTag    string `json:"goods_tag,omitempty"`
	Amount      struct {
		Total    int64  `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer *struct {
		OpenID string `json:"openid"`
	} `json:"payer,omitempty"`
	SceneInfo *SceneInfo `json:"scene_info,omitempty"`
}

// normalize validates the request against the local rules and fills in
// defaults; the result is what the idempotency digest covers.
func (r *CreateOrderRequest) normalize(creds *secrets.Credentials, now time.Time) error {
	bad := func(format string, args ...any) error {
		return apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, format, args...)
	}
	if _, _, ok := endpoint(r.TradeType); !ok {
		return bad("trade_type must be JSAPI, MINIPROGRAM, NATIVE, APP or H5, got %q", r.TradeType)
	}
	if !validNo(r.OutTradeNo, 6, 32, "_-|*") {
		return bad("out_trade_no must be 6-32 characters of [0-9A-Za-z_-|*]")
	}
	if n := utf8.RuneCountInString(r.Description); n == 0 || n > 127 {
		return bad("description must be 1-127 characters, got %d", n)
	}
	if r.Amount.Total <= 0 || r.Amount.Total > MaxOrderTotal {
		return bad("amount.total must be 1..%d fen, got %d", MaxOrderTotal, r.Amount.Total)
	}
	if r.Amount.Currency == "" {
		r.Amount.Currency = "CNY"
	}
	if r.Amount.Currency != "CNY" {
		return bad("amount.currency must be CNY, got %q", r.Amount.Currency)
	}
	if r.AppID == "" {
		r.AppID = creds.AppIDs[0]
	}
	if !slices.Contains(creds.AppIDs, r.AppID) {
		return bad("appid %q is not bound to merchant %s", r.AppID, creds.MchID)
	}
	if utf8.RuneCountInString(r.Attach) > 128 {
		return bad("attach must be at most 128 characters")
	}
	if utf8.RuneCountInString(r.GoodsTag) > 32 {
		return bad("goods_tag must be at most 32 characters")
	}
	switch r.TradeType {
	case "JSAPI", "MINIPROGRAM":
		if r.Payer == nil || r.Payer.OpenID == "" {
			return bad("%s orders need payer.openid", r.TradeType)
		}
		if !ledger.ValidOpenID(r.Payer.OpenID) {
			return bad("payer.openid must be 1..%d characters of 0-9 A-Z a-z _ -", ledger.MaxOpenIDLength)
		}
	default:
		if r.Payer != nil {
			return bad("payer is only for JSAPI and MINIPROGRAM orders")
		}
	}
	if r.SceneInfo != nil && r.SceneInfo.PayerClientIP != "" && net.ParseIP(r.SceneInfo.PayerClientIP) == nil {
		return bad("scene_info.payer_client_ip %q is not an IP address", r.SceneInfo.PayerClientIP)
	}
	if r.TradeType == "H5" {
		if r.SceneInfo == nil || r.SceneInfo.PayerClientIP == "" {
			return bad("H5 orders need scene_info.payer_client_ip")
		}
		if r.SceneInfo.H5Info == nil {
			r.SceneInfo.H5Info = &struct {
				Type string `json:"type"`
			}{Type: "Wap"}
		}
		if t := r.SceneInfo.H5Info.Type; t != "Wap" && t != "iOS" && t != "Android" {
			return bad("scene_info.h5_info.type must be Wap, iOS or Android, got %q", t)
		}
	} else if r.SceneInfo != nil && r.SceneInfo.H5Info != nil {
		return bad("scene_info.h5_info is only for H5 orders")
	}
	if r.TimeExpire != "" {
		t, err := time.Parse(time.RFC3339, r.TimeExpire)
		if err != nil {
			return bad("time_expire must be RFC 3339 (e.g. 2026-06-08T10:34:56+08:00), got %q", r.TimeExpire)
		}
		if !t.After(now) {
			return bad("time_expire %s is not in the future", r.TimeExpire)
		}
		r.TimeExpire = ledger.WechatTime(t)
	}
	return nil
}

// RequestPayment is what wx.requestPayment (JSAPI) and wx.requestPayment in
// a mini-program take: paySign is RSA-SHA256 with the merchant key over
// appId\ntimeStamp\nnonceStr\npackage\n, as wechatpay-go's
// jsapi.PrepayWithRequestPayment signs it.
type RequestPayment struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// AppPayment is what the APP SDK's PayReq takes: sign is RSA-SHA256 over
// appid\ntimestamp\nnoncestr\nprepayid\n (wechatpay-go app.PrepayWithRequestPayment).
type AppPayment struct {
	AppID     string `json:"appid"`
	PartnerID string `json:"partnerid"`
	PrepayID  string `json:"prepayid"`
	Package   string `json:"package"`
	NonceStr  string `json:"noncestr"`
	TimeStamp string `json:"timestamp"`
	Sign      string `json:"sign"`
}

// payParams signs the client parameters of a JSAPI/mini-program or APP
// order. The nonce is derived from the prepay_id (unique and unguessable
// per order) and the timestamp is the caller's — the order's creation — so,
// RSA PKCS #1 v1.5 being deterministic, the parameters of an order are the
// same bytes however often they are signed: a replayed create or a read
// answers byte for byte what the create answered, without storing them.
func payParams(clientType, appID, mchID, prepayID string, key *rsa.PrivateKey, at time.Time) (map[string]string, error) {
	sum := sha256.Sum256([]byte("wxpay-serverless paySign nonce\n" + mchID + "\n" + prepayID))
	nonce := hex.EncodeToString(sum[:16]) // 32 characters of [0-9a-f]
	ts := strconv.FormatInt(at.Unix(), 10)
	switch clientType {
	case "JSAPI", "MINIPROGRAM":
		pkg := "prepay_id=" + prepayID
		sig, err := wxsign.Sign(key, appID+"\n"+ts+"\n"+nonce+"\n"+pkg+"\n")
		if err != nil {
			return nil, err
		}
		return map[string]string{"appId": appID, "timeStamp": ts, "nonceStr": nonce, "package": pkg, "signType": "RSA", "paySign": sig}, nil
	case "APP":
		sig, err := wxsign.Sign(key, appID+"\n"+ts+"\n"+nonce+"\n"+prepayID+"\n")
		if err != nil {
			return nil, err
		}
		return map[string]string{"appid": appID, "partnerid": mchID, "prepayid": prepayID, "package": "Sign=WXPay",
			"noncestr": nonce, "timestamp": ts, "sign": sig}, nil
	}
	return nil, nil
}

// OrderView is the answer of the order routes.
type OrderView struct {
	OutTradeNo    string `json:"out_trade_no"`
	TransactionID string `json:"transaction_id,omitempty"`
	AppID         string `json:"appid,omitempty"`
	MchID         string `json:"mchid,omitempty"`
	ClientType    string `json:"client_type,omitempty"`
	TradeType     string `json:"trade_type,omitempty"` // WeChat Pay's
	Status        string `json:"status"`               // trade_state as the ledger knows it
	Description   string `json:"description,omitempty"`
	Attach        string `json:"attach,omitempty"`
	Amount        struct {
		Total      int64  `json:"total"`
		PayerTotal int64  `json:"payer_total"`
		Currency   string `json:"currency"`
	} `json:"amount"`
	// SettlementTotal = total - Σ NOCASH promotions (what the merchant is
	// settled); CouponTotal = Σ promotions; NoCashTotal = Σ NOCASH.
	SettlementTotal int64              `json:"settlement_total"`
	CouponTotal     int64              `json:"coupon_total"`
	NoCashTotal     int64              `json:"nocash_total"`
	PromotionDetail []ledger.Promotion `json:"promotion_detail"`
	PayerOpenID     string             `json:"payer_openid,omitempty"`
	SuccessTime     string             `json:"success_time,omitempty"`
	BankType        string             `json:"bank_type,omitempty"`
	TimeExpire      string             `json:"time_expire,omitempty"`
	CreatedAt       string             `json:"created_at,omitempty"`
	UpdatedAt       string             `json:"updated_at,omitempty"`
	// What the client needs to pay (while the order is unpaid).
	PrepayID       string          `json:"prepay_id,omitempty"`
	CodeURL        string          `json:"code_url,omitempty"`
	H5URL          string          `json:"h5_url,omitempty"`
	RequestPayment *RequestPayment `json:"request_payment,omitempty"`
	AppPayment     *AppPayment     `json:"app_payment,omitempty"`
	Refunds        *RefundSummary  `json:"refunds,omitempty"`
	Live           *LiveOrder      `json:"live,omitempty"`
}

// LiveOrder is what WeChat Pay reported on ?live=true and what was applied.
type LiveOrder struct {
	TradeState     string   `json:"trade_state,omitempty"`
	TradeStateDesc string   `json:"trade_state_desc,omitempty"`
	ErrorCode      string   `json:"error_code,omitempty"` // e.g. ORDER_NOT_EXIST
	Applied        bool     `json:"applied"`
	Differences    []string `json:"differences,omitempty"` // WeChat Pay vs the ledger, not applied
}

func orderView(o *ledger.PaymentOrder) *OrderView {
	v := &OrderView{OutTradeNo: o.OutTradeNo, TransactionID: o.TransactionID, AppID: o.AppID, MchID: o.MchID, ClientType: o.ClientType,
		TradeType: o.TradeType, Status: string(o.Status), Description: o.Description, Attach: o.Attach,
		SettlementTotal: o.SettlementTotal, CouponTotal: o.CouponTotal, NoCashTotal: o.NoCashTotal,
		PromotionDetail: o.Promotions, PayerOpenID: o.PayerOpenID, SuccessTime: o.SuccessTime, BankType: o.BankType,
		TimeExpire: o.TimeExpire, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	v.Amount.Total, v.Amount.PayerTotal, v.Amount.Currency = o.Total, o.PayerTotal, o.Currency
	if v.Amount.Currency == "" {
		v.Amount.Currency = "CNY"
	}
	if v.PromotionDetail == nil {
		v.PromotionDetail = []ledger.Promotion{}
	}
	if o.Status == ledger.TradeNotPay {
		// Until paid, payer_total and settlement_total are the full amount.
		v.Amount.PayerTotal, v.SettlementTotal = o.Total, o.Total
		v.PrepayID, v.CodeURL, v.H5URL = o.PrepayID, o.CodeURL, o.H5URL
		p := o.PayParams
		switch {
		case p["paySign"] != "":
			v.RequestPayment = &RequestPayment{AppID: p["appId"], TimeStamp: p["timeStamp"], NonceStr: p["nonceStr"],
				Package: p["package"], SignType: p["signType"], PaySign: p["paySign"]}
		case p["sign"] != "":
			v.AppPayment = &AppPayment{AppID: p["appid"], PartnerID: p["partnerid"], PrepayID: p["prepayid"], Package: p["package"],
				NonceStr: p["noncestr"], TimeStamp: p["timestamp"], Sign: p["sign"]}
		}
	}
	return v
}

// createOrder is POST /payments/orders: validate, store the order with the
// request digest (PutIdempotent), then prepay at WeChat Pay. The same request
// again answers the stored result (resuming the prepay if the first attempt
// did not finish); another request under the same out_trade_no is a 409.
func (h *Handler) createOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in CreateOrderRequest
	if err := apigw.DecodeJSON(req.Body, &in); err != nil {
		return nil, err
	}
	creds, err := h.merchant(ctx)
	if err != nil {
		return nil, err
	}
	now := h.now()
	if err := in.normalize(creds, now); err != nil {
		return nil, err
	}
	wc, err := h.client()
	if err != nil {
		return nil, err
	}
	sum, err := digest(in)
	if err != nil {
		return nil, err
	}
	path, tradeType, _ := endpoint(in.TradeType)
	body := prepayBody{AppID: in.AppID, MchID: creds.MchID, Description: in.Description, OutTradeNo: in.OutTradeNo,
		TimeExpire: in.TimeExpire, Attach: in.Attach, NotifyURL: h.deps.NotifyURL(req, "payments"), GoodsTag: in.GoodsTag,
		Payer: in.Payer, SceneInfo: in.SceneInfo}
	body.Amount.Total, body.Amount.Currency = in.Amount.Total, in.Amount.Currency
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("payments: encode prepay: %w", err)
	}
	row := ledger.PaymentOrder{
		Order: ledger.Order{OutTradeNo: in.OutTradeNo, AppID: in.AppID, MchID: creds.MchID, TradeType: tradeType,
			Status: ledger.TradeNotPay, Total: in.Amount.Total, PayerTotal: in.Amount.Total, SettlementTotal: in.Amount.Total,
			Currency: in.Amount.Currency, Attach: in.Attach, Source: "api", UpdatedAt: ledger.WechatTime(now)},
		Description: in.Description, ClientType: in.TradeType, TimeExpire: in.TimeExpire, CreatedAt: ledger.WechatTime(now),
		PrepayState: prepayPending, RequestJSON: string(raw), LeaseUntil: now.Add(prepayLease).Unix(),
	}
	if in.Payer != nil {
		row.PayerOpenID = in.Payer.OpenID
	}
	// The prepay's signature is computed while the order is recorded
	// (wxpay.Client.Prepare).
	call := wc.Prepare(ctx, wxpay.Request{Method: http.MethodPost, Path: path, Body: json.RawMessage(raw)})
	var existing ledger.PaymentOrder
	created, err := h.deps.Store.PutIdempotent(ctx, &store.Put{Key: ledger.OrderKey(in.OutTradeNo), Value: row}, sum, &existing)
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, &apigw.Error{Status: http.StatusConflict, Code: apigw.CodeConflict,
			Message: fmt.Sprintf("out_trade_no %s already exists with a different request", in.OutTradeNo), Err: err}
	case err != nil:
		return nil, err
	case !created:
		row = existing
		if row.PrepayState != prepayPending {
			return h.answerOrder(ctx, &row) // replay of a finished create
		}
		done, err := h.awaitPrepay(ctx, &row)
		if err != nil || done != nil {
			return done, err
		}
		// The stored request is sent, signed afresh.
		call = wc.Prepare(ctx, wxpay.Request{Method: http.MethodPost, Path: path, Body: json.RawMessage(row.RequestJSON)})
	}
	return h.prepay(ctx, wc, creds, &row, call)
}

// prepayLease is how long the request that creates an order owns the
// WeChat call; a crashed owner's lease expires and a replay takes over.
const prepayLease = 15 * time.Second

// prepayWait bounds how long a replay waits for the owner before answering
// 409 IN_PROGRESS (retry the same request).
const prepayWait = 8 * time.Second

// awaitPrepay handles a replay of a create that is still PENDING: another
// request may be calling WeChat Pay right now, so instead of a second call
// it waits for that request's answer, or takes the lease over when it has
// expired (then it returns nil, nil and the caller prepays). Identical
// concurrent requests therefore make exactly one WeChat call and all get the
// same answer.
func (h *Handler) awaitPrepay(ctx context.Context, row *ledger.PaymentOrder) (*apigw.Response, error) {
	key := ledger.OrderKey(row.OutTradeNo)
	deadline := time.Now().Add(prepayWait)
	for {
		now := h.now()
		err := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: map[string]any{"lease_until": now.Add(prepayLease).Unix()},
			Expect: map[string]any{"prepay_state": prepayPending}, ExpectBefore: map[string]any{"lease_until": now.Unix()}})
		if err == nil {
			return nil, nil // the lease is ours: prepay
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		var stored ledger.PaymentOrder
		if err := h.deps.Store.Get(ctx, key, &stored); err != nil {
			return nil, err
		}
		if stored.PrepayState != prepayPending {
			return h.answerOrder(ctx, &stored)
		}
		if time.Now().After(deadline) {
			return nil, &apigw.Error{Status: http.StatusConflict, Code: "IN_PROGRESS",
				Message: "the same order is being created by another request; send it again shortly"}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// prepay calls WeChat Pay for a stored PENDING order and completes the row.
func (h *Handler) prepay(ctx context.Context, wc *wxpay.Client, creds *secrets.Credentials, row *ledger.PaymentOrder, call *wxpay.Call) (*apigw.Response, error) {
	key := ledger.OrderKey(row.OutTradeNo)
	var out struct {
		PrepayID string `json:"prepay_id"`
		CodeURL  string `json:"code_url"`
		H5URL    string `json:"h5_url"`
	}
	_, err := wc.Send(ctx, call, &out)
	if err != nil {
		// This request is over: release its lease so the client's retry
		// resends at once instead of waiting for it to expire.
		if lerr := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: map[string]any{"lease_until": 0},
			Expect: map[string]any{"prepay_state": prepayPending}}); lerr != nil && !errors.Is(lerr, store.ErrConflict) && !errors.Is(lerr, store.ErrNotFound) {
			h.deps.Logger().WarnContext(ctx, "order lease not released", "out_trade_no", row.OutTradeNo, "error", lerr)
		}
		if rejected(err) && !wxpay.IsCode(err, wxpay.CodeOrderPaid, wxpay.CodeOrderClosed) {
			// Refused: no order exists at WeChat Pay, so none is kept here
			// and the client may correct the request and send it again.
			if derr := h.deps.Store.Delete(ctx, &store.Delete{Key: key}); derr != nil {
				h.deps.Logger().ErrorContext(ctx, "rejected order left behind", "out_trade_no", row.OutTradeNo, "error", derr)
			}
		}
		return nil, upstream("creating the order", err)
	}
	now := h.now()
	set := map[string]any{"prepay_state": prepayReady, "updated_at": ledger.WechatTime(now)}
	row.PrepayState, row.PrepayID, row.CodeURL, row.H5URL = prepayReady, out.PrepayID, out.CodeURL, out.H5URL
	// The client's requestPayment parameters are signed while the row is
	// written; they are not stored: a replay or a read signs them again
	// (answerOrder) and gets the same bytes (see payParams).
	var signed chan signedParams
	if out.PrepayID != "" {
		set["prepay_id"] = out.PrepayID
		signed = make(chan signedParams, 1)
		go func() {
			p, err := payParams(row.ClientType, row.AppID, row.MchID, out.PrepayID, creds.MerchantPrivateKey, createdAt(row, now))
			signed <- signedParams{p, err}
		}()
	}
	if out.CodeURL != "" {
		set["code_url"] = out.CodeURL
	}
	if out.H5URL != "" {
		set["h5_url"] = out.H5URL
	}
	err = h.deps.Store.Update(ctx, &store.Update{Key: key, Set: set, Expect: map[string]any{"prepay_state": prepayPending}})
	if errors.Is(err, store.ErrConflict) {
		// A concurrent replay finished first: answer what it stored.
		var stored ledger.PaymentOrder
		if gerr := h.deps.Store.Get(ctx, key, &stored); gerr != nil {
			return nil, gerr
		}
		return h.answerOrder(ctx, &stored)
	}
	if err != nil {
		return nil, err
	}
	if signed != nil {
		r := <-signed
		if r.err != nil {
			return nil, fmt.Errorf("payments: sign client parameters: %w", r.err)
		}
		row.PayParams = r.params
	}
	return apigw.JSON(http.StatusOK, orderView(row)), nil
}

// createdAt is when the order was recorded (the timestamp of its client
// parameters), or fallback for a row without a readable one.
func createdAt(o *ledger.PaymentOrder, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339, o.CreatedAt); err == nil {
		return t
	}
	return fallback
}

// signedParams is the outcome of payParams computed in the background.
type signedParams struct {
	params map[string]string
	err    error
}

// answerOrder answers 200 with an order, signing the client's
// requestPayment / APP parameters of an unpaid JSAPI, mini-program or APP
// order when the row does not hold them.
func (h *Handler) answerOrder(ctx context.Context, o *ledger.PaymentOrder) (*apigw.Response, error) {
	if err := h.signPayParams(ctx, o); err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, orderView(o)), nil
}

// signPayParams fills o.PayParams for an unpaid order with a prepay_id
// whose parameters are not stored. Rows written before the parameters were
// signed on answer keep their stored ones.
func (h *Handler) signPayParams(ctx context.Context, o *ledger.PaymentOrder) error {
	if o.Status != ledger.TradeNotPay || o.PrepayID == "" || len(o.PayParams) > 0 {
		return nil
	}
	creds, err := h.merchant(ctx)
	if err != nil {
		return err
	}
	p, err := payParams(o.ClientType, o.AppID, o.MchID, o.PrepayID, creds.MerchantPrivateKey, createdAt(o, h.now()))
	if err != nil {
		return fmt.Errorf("payments: sign client parameters: %w", err)
	}
	o.PayParams = p
	return nil
}

// loadOrder reads an order row; a missing one is a 404.
func (h *Handler) loadOrder(ctx context.Context, outTradeNo string) (*ledger.PaymentOrder, error) {
	var o ledger.PaymentOrder
	err := h.deps.Store.Get(ctx, ledger.OrderKey(outTradeNo), &o)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &apigw.Error{Status: http.StatusNotFound, Code: apigw.CodeNotFound, Message: fmt.Sprintf("order %s not found", outTradeNo), Err: err}
	}
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// getOrder is GET /payments/orders/{out_trade_no}: the stored state, and
// with ?live=true WeChat Pay's, applied to the ledger.
func (h *Handler) getOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no, err := pathNo(req, "out_trade_no", 6, 32, "_-|*")
	if err != nil {
		return nil, err
	}
	live, err := liveFlag(req)
	if err != nil {
		return nil, err
	}
	o, err := h.loadOrder(ctx, no)
	if err != nil {
		return nil, err
	}
	var lv *LiveOrder
	if live {
		creds, wc, err := h.credentials(ctx)
		if err != nil {
			return nil, err
		}
		if lv, err = h.queryOrder(ctx, wc, creds, o); err != nil {
			return nil, err
		}
		if lv.Applied {
			if o, err = h.loadOrder(ctx, no); err != nil {
				return nil, err
			}
		}
	}
	if err := h.signPayParams(ctx, o); err != nil {
		return nil, err
	}
	v := orderView(o)
	v.Live = lv
	if v.Refunds, err = h.refundSummary(ctx, ledger.OrderKey(no), o.Total); err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, v), nil
}

// queryOrder asks WeChat Pay for the order and applies a payment or a close
// the ledger has not seen yet (the same change the notification makes).
func (h *Handler) queryOrder(ctx context.Context, wc *wxpay.Client, creds *secrets.Credentials, o *ledger.PaymentOrder) (*LiveOrder, error) {
	var t wxnotify.Transaction
	_, err := wc.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/pay/transactions/out-trade-no/" + url.PathEscape(o.OutTradeNo),
		Query: url.Values{"mchid": {creds.MchID}}}, &t)
	if wxpay.IsNotFound(err) {
		var ae *wxpay.APIError
		errors.As(err, &ae)
		return &LiveOrder{ErrorCode: ae.Code}, nil
	}
	if err != nil {
		return nil, upstream("querying the order", err)
	}
	lv := &LiveOrder{TradeState: t.TradeState, TradeStateDesc: t.TradeStateDesc}
	now := h.now()
	switch t.TradeState {
	case string(ledger.TradeSuccess), string(ledger.TradeRefund):
		if o.Status == ledger.TradeSuccess || o.Status == ledger.TradeRefund {
			lv.Differences = paymentDifferences(o, &t)
			return lv, nil
		}
		lv.Applied, err = h.applyPayment(ctx, o.OutTradeNo, &t, now)
	case string(ledger.TradeClosed):
		if o.Status == ledger.TradeNotPay || o.Status == ledger.TradeUserPaying {
			err = h.deps.Store.Update(ctx, &store.Update{Key: ledger.OrderKey(o.OutTradeNo),
				Set:      map[string]any{"status": string(ledger.TradeClosed), "closed_at": ledger.WechatTime(now), "updated_at": ledger.WechatTime(now)},
				ExpectIn: map[string][]any{"status": {string(ledger.TradeNotPay), string(ledger.TradeUserPaying)}}})
			lv.Applied = err == nil
			if errors.Is(err, store.ErrConflict) {
				err = nil // a notification got there first
			}
		}
	}
	return lv, err
}

// applyPayment records a successful payment reported by a query: the same
// attributes and guard as the TRANSACTION.SUCCESS notification, plus the
// transaction_id pointer. false when the ledger already had it.
func (h *Handler) applyPayment(ctx context.Context, outTradeNo string, t *wxnotify.Transaction, now time.Time) (bool, error) {
	if t.TransactionID == "" || t.SuccessTime == "" || t.Amount.Total <= 0 {
		return false, apigw.Errorf(http.StatusBadGateway, apigw.CodeUpstream, "WeChat Pay reported a payment without transaction_id, success_time or amount")
	}
	paid, err := time.Parse(time.RFC3339, t.SuccessTime)
	if err != nil {
		return false, apigw.Errorf(http.StatusBadGateway, apigw.CodeUpstream, "WeChat Pay reported success_time %q", t.SuccessTime)
	}
	promos := make([]ledger.Promotion, len(t.PromotionDetail))
	for i, p := range t.PromotionDetail {
		promos[i] = ledger.Promotion(p)
		promos[i].Type = ledger.NormalizeCouponType(p.Type)
	}
	coupon, noCash, settlement := ledger.Settlement(t.Amount.Total, promos)
	set := map[string]any{
		"out_trade_no": outTradeNo, "status": string(ledger.TradeSuccess), "transaction_id": t.TransactionID,
		"appid": t.AppID, "mchid": t.MchID, "trade_type": t.TradeType, "total": t.Amount.Total, "payer_total": t.Amount.PayerTotal,
		"currency": t.Amount.Currency, "coupon_total": coupon, "nocash_total": noCash, "settlement_total": settlement,
		"success_time": t.SuccessTime, "bank_type": t.BankType, "payer_openid": t.Payer.OpenID, "updated_at": ledger.WechatTime(now),
		"paid_day": ledger.Day(paid),
	}
	if len(promos) > 0 {
		set["promotions"] = promos
	}
	// The payment is applied once whichever way the ledger learns of it:
	// the same guard as the notification, the same application counter,
	// and the same domain event (id "query:<transaction_id>"), committed
	// with the change through the outbox, so that downstream consumers hear
	// of a payment whose notification never came. The notification that
	// arrives later finds the order SUCCESS and is recorded as superseded.
	detail, err := json.Marshal(map[string]any{"source": "query", "event_type": ledger.EventPaymentSuccess, "channel": "payments",
		"ledger": map[string]any{"out_trade_no": outTradeNo, "transaction_id": t.TransactionID, "total": t.Amount.Total,
			"payer_total": t.Amount.PayerTotal, "settlement_total": settlement}})
	if err != nil {
		return false, fmt.Errorf("payments: encode domain event: %w", err)
	}
	ev := domainevent.Event{ID: "query:" + t.TransactionID, DetailType: ledger.EventPaymentSuccess, Detail: detail, CreatedAt: ledger.WechatTime(now)}
	err = h.deps.Store.Transact(ctx,
		&store.Update{Key: ledger.OrderKey(outTradeNo), Set: set, Add: map[string]int64{ledger.AppliedAttr(ledger.EventPaymentSuccess): 1},
			ExpectIn: map[string][]any{"status": {string(ledger.TradeNotPay), string(ledger.TradeUserPaying), string(ledger.TradePayError)}},
			Index:    &store.IndexKey{PK: ledger.DayIndex("PAY", ledger.Day(paid)), SK: outTradeNo}},
		&store.Put{Key: ledger.TxnKey(t.TransactionID), Value: ledger.TxnPointer{TransactionID: t.TransactionID, Kind: ledger.KindOrder, No: outTradeNo}},
		domainevent.OutboxPut(ev, now),
	)
	if errors.Is(err, store.ErrConflict) {
		return false, nil // the notification got there first
	}
	if err != nil {
		return false, err
	}
	if perr := domainevent.Flush(ctx, h.deps.Store, h.deps.Events, ev); perr != nil {
		h.deps.Logger().WarnContext(ctx, "domain event left in the outbox", "id", ev.ID, "error", perr)
	}
	return true, nil
}

// paymentDifferences compares a stored payment with WeChat Pay's report.
func paymentDifferences(o *ledger.PaymentOrder, t *wxnotify.Transaction) []string {
	var d []string
	cmp := func(name string, ours, theirs any) {
		if ours != theirs {
			d = append(d, fmt.Sprintf("%s: ledger %v, WeChat Pay %v", name, ours, theirs))
		}
	}
	cmp("transaction_id", o.TransactionID, t.TransactionID)
	cmp("total", o.Total, t.Amount.Total)
	cmp("payer_total", o.PayerTotal, t.Amount.PayerTotal)
	cmp("promotions", len(o.Promotions), len(t.PromotionDetail))
	return d
}

// closeOrder is POST /payments/orders/{out_trade_no}/close: only an unpaid
// order closes.
func (h *Handler) closeOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no, err := pathNo(req, "out_trade_no", 6, 32, "_-|*")
	if err != nil {
		return nil, err
	}
	if len(req.Body) > 0 {
		var empty struct{}
		if err := apigw.DecodeJSON(req.Body, &empty); err != nil {
			return nil, err
		}
	}
	o, err := h.loadOrder(ctx, no)
	if err != nil {
		return nil, err
	}
	if err := closable(o); err != nil {
		return nil, err
	}
	creds, wc, err := h.credentials(ctx)
	if err != nil {
		return nil, err
	}
	_, err = wc.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: "/v3/pay/transactions/out-trade-no/" + url.PathEscape(no) + "/close",
		Body: map[string]string{"mchid": creds.MchID}}, nil)
	switch {
	case wxpay.IsCode(err, wxpay.CodeOrderPaid):
		// Paid meanwhile: record what WeChat Pay knows, then refuse.
		if _, qerr := h.queryOrder(ctx, wc, creds, o); qerr != nil {
			h.deps.Logger().WarnContext(ctx, "paid order could not be queried after a refused close", "out_trade_no", no, "error", qerr)
		}
		return nil, apigw.Errorf(http.StatusConflict, CodeOrderPaid, "order %s was paid; it cannot be closed", no)
	case err != nil && !wxpay.IsNotFound(err) && !wxpay.IsCode(err, wxpay.CodeOrderClosed):
		return nil, upstream("closing the order", err)
	}
	// Closed at WeChat Pay (now or before, e.g. expired), or it never got
	// the order (the prepay did not reach it): the order is closed either way.
	now := ledger.WechatTime(h.now())
	err = h.deps.Store.Update(ctx, &store.Update{Key: ledger.OrderKey(no),
		Set:    map[string]any{"status": string(ledger.TradeClosed), "closed_at": now, "updated_at": now},
		Expect: map[string]any{"status": string(ledger.TradeNotPay)}})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	if o, err = h.loadOrder(ctx, no); err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, orderView(o)), nil
}

// closable: only NOTPAY orders close.
func closable(o *ledger.PaymentOrder) error {
	switch o.Status {
	case ledger.TradeNotPay:
		return nil
	case ledger.TradeSuccess, ledger.TradeRefund:
		return apigw.Errorf(http.StatusConflict, CodeOrderPaid, "order %s is paid; it cannot be closed", o.OutTradeNo)
	case ledger.TradeClosed, ledger.TradeRevoked:
		return apigw.Errorf(http.StatusConflict, CodeOrderClosed, "order %s is already %s", o.OutTradeNo, o.Status)
	}
	return apigw.Errorf(http.StatusConflict, CodeOrderState, "order %s is %s; only NOTPAY orders close", o.OutTradeNo, o.Status)
}
