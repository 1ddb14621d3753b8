package wxpaysim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Trade states.
const (
	tradeNotPay  = "NOTPAY"
	tradeSuccess = "SUCCESS"
	tradeClosed  = "CLOSED"
)

// paymentRoutes is direct-merchant payments (wechatpay-apiv3.md 5.2, 7.4).
func (s *Sim) paymentRoutes() []route {
	return []route{
		{method: http.MethodPost, pattern: "/v3/pay/transactions/jsapi", handle: s.prepay("JSAPI")},
		{method: http.MethodPost, pattern: "/v3/pay/transactions/app", handle: s.prepay("APP")},
		{method: http.MethodPost, pattern: "/v3/pay/transactions/native", handle: s.prepay("NATIVE")},
		{method: http.MethodPost, pattern: "/v3/pay/transactions/h5", handle: s.prepay("MWEB")},
		{method: http.MethodGet, pattern: "/v3/pay/transactions/out-trade-no/{out_trade_no}", handle: s.queryByOutTradeNo},
		{method: http.MethodGet, pattern: "/v3/pay/transactions/id/{transaction_id}", handle: s.queryByTransactionID},
		{method: http.MethodPost, pattern: "/v3/pay/transactions/out-trade-no/{out_trade_no}/close", handle: s.closeOrder},
	}
}

type prepayRequest struct {
	AppID         string          `json:"appid"`
	MchID         string          `json:"mchid"`
	Description   string          `json:"description"`
	OutTradeNo    string          `json:"out_trade_no"`
	TimeExpire    string          `json:"time_expire"`
	Attach        string          `json:"attach"`
	NotifyURL     string          `json:"notify_url"`
	GoodsTag      string          `json:"goods_tag"`
	SupportFapiao bool            `json:"support_fapiao"`
	Amount        *amountInput    `json:"amount"`
	Payer         *payerJSON      `json:"payer"`
	Detail        json.RawMessage `json:"detail"`
	SceneInfo     *sceneInput     `json:"scene_info"`
	SettleInfo    json.RawMessage `json:"settle_info"`
}

type amountInput struct {
	Total    *int64 `json:"total"`
	Currency string `json:"currency"`
}

type sceneInput struct {
	PayerClientIP string          `json:"payer_client_ip"`
	DeviceID      string          `json:"device_id"`
	H5Info        json.RawMessage `json:"h5_info"`
}

type payerJSON struct {
	OpenID string `json:"openid"`
}

// order is one payment order of a merchant.
type order struct {
	tradeType  string // JSAPI, APP, NATIVE, MWEB
	digest     string // canonical request, for idempotency
	req        prepayRequest
	notifyURL  string
	total      int64
	expire     time.Time // zero: none
	answer     map[string]string
	state      string
	txnID      string
	successAt  time.Time
	openID     string
	payerTotal int64
	bankType   string
	promotions []promotionJSON
	// Refunds (refunds.go): every refund of the order in request order, and
	// how the next ones end (the admin switch; "" means SUCCESS).
	refunds       []*refund
	refundOutcome string
}

type transactionJSON struct {
	AppID           string          `json:"appid"`
	MchID           string          `json:"mchid"`
	OutTradeNo      string          `json:"out_trade_no"`
	TransactionID   string          `json:"transaction_id,omitempty"`
	TradeType       string          `json:"trade_type,omitempty"`
	TradeState      string          `json:"trade_state"`
	TradeStateDesc  string          `json:"trade_state_desc"`
	BankType        string          `json:"bank_type,omitempty"`
	Attach          string          `json:"attach"`
	SuccessTime     string          `json:"success_time,omitempty"`
	Payer           *payerJSON      `json:"payer,omitempty"`
	Amount          amountJSON      `json:"amount"`
	SceneInfo       *sceneJSON      `json:"scene_info,omitempty"`
	PromotionDetail []promotionJSON `json:"promotion_detail,omitempty"`
}

type amountJSON struct {
	Total         int64  `json:"total"`
	PayerTotal    *int64 `json:"payer_total,omitempty"`
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency"`
}

type sceneJSON struct {
	DeviceID string `json:"device_id"`
}

type promotionJSON struct {
	CouponID            string `json:"coupon_id"`
	Name                string `json:"name"`
	Scope               string `json:"scope"`
	Type                string `json:"type"`
	Amount              int64  `json:"amount"`
	StockID             string `json:"stock_id"`
	WechatpayContribute int64  `json:"wechatpay_contribute"`
	MerchantContribute  int64  `json:"merchant_contribute"`
	OtherContribute     int64  `json:"other_contribute"`
	Currency            string `json:"currency"`
}

// view renders the order as WeChat Pay's transaction JSON. m.mu must be held.
func (o *order) view(mchID string) transactionJSON {
	t := transactionJSON{AppID: o.req.AppID, MchID: mchID, OutTradeNo: o.req.OutTradeNo, TradeState: o.state,
		Attach: o.req.Attach, Amount: amountJSON{Total: o.total, Currency: "CNY", PayerCurrency: "CNY"}}
	if o.req.SceneInfo != nil && o.req.SceneInfo.DeviceID != "" {
		t.SceneInfo = &sceneJSON{DeviceID: o.req.SceneInfo.DeviceID}
	}
	switch o.state {
	case tradeNotPay:
		t.TradeStateDesc = "订单未支付"
	case tradeClosed:
		t.TradeStateDesc = "订单已关闭"
	case tradeSuccess:
		t.TradeStateDesc = "支付成功"
		t.TransactionID, t.TradeType, t.BankType = o.txnID, o.tradeType, o.bankType
		t.SuccessTime = formatTime(o.successAt)
		t.Payer = &payerJSON{OpenID: o.openID}
		pt := o.payerTotal
		t.Amount.PayerTotal = &pt
		t.PromotionDetail = o.promotions
		if o.refunded() > 0 {
			t.TradeState, t.TradeStateDesc = tradeRefund, "转入退款"
		}
	}
	return t
}

// prepay creates an order: POST /v3/pay/transactions/{jsapi,app,native,h5}.
func (s *Sim) prepay(tradeType string) handlerFunc {
	return func(_ context.Context, c *call) (reply, error) {
		var req prepayRequest
		if err := c.decode(&req); err != nil {
			return reply{}, err
		}
		cfg := c.m.config()
		if err := validatePrepay(tradeType, &req, cfg, c.mchID); err != nil {
			return reply{}, err
		}
		notifyURL := req.NotifyURL
		if notifyURL == "" {
			notifyURL = cfg.NotifyURL
		}
		if notifyURL == "" {
			return reply{}, paramError("输入源“/body/notify_url”映射到值字段“通知地址”必填性规则校验失败，此字段为必填项")
		}
		if err := checkNotifyURL(notifyURL); err != nil {
			return reply{}, err
		}
		var expire time.Time
		if req.TimeExpire != "" {
			t, err := time.Parse(time.RFC3339, req.TimeExpire)
			if err != nil {
				return reply{}, paramError("time_expire格式错误，应为RFC3339格式如2018-06-08T10:34:56+08:00 (%v)", err)
			}
			expire = t
		}
		digest, err := canonicalJSON(c.body)
		if err != nil {
			return reply{}, paramError("请求体格式错误 (%v)", err)
		}
		digest = tradeType + " " + digest

		c.m.mu.Lock()
		defer c.m.mu.Unlock()
		if o, ok := c.m.orders[req.OutTradeNo]; ok {
			if o.digest != digest {
				return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "201 商户订单号重复")
			}
			switch o.state {
			case tradeSuccess:
				return reply{}, apiErr(http.StatusBadRequest, "ORDERPAID", "该订单已支付")
			case tradeClosed:
				return reply{}, apiErr(http.StatusBadRequest, "ORDER_CLOSED", "该订单已关闭")
			}
			return reply{status: http.StatusOK, body: o.answer}, nil
		}
		prepayID, err := newPrepayID(s.Now())
		if err != nil {
			return reply{}, err
		}
		o := &order{tradeType: tradeType, digest: digest, req: req, notifyURL: notifyURL, total: *req.Amount.Total,
			expire: expire, state: tradeNotPay}
		switch tradeType {
		case "JSAPI", "APP":
			o.answer = map[string]string{"prepay_id": prepayID}
		case "NATIVE":
			pr, err := randomString(7, alnum)
			if err != nil {
				return reply{}, err
			}
			o.answer = map[string]string{"code_url": "weixin://wxpay/bizpayurl?pr=" + pr}
		case "MWEB":
			pkg, err := randomString(10, digits)
			if err != nil {
				return reply{}, err
			}
			o.answer = map[string]string{"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=" +
				prepayID + "&package=" + pkg}
		}
		if req.Payer != nil {
			o.openID = req.Payer.OpenID
		}
		c.m.orders[req.OutTradeNo] = o
		return reply{status: http.StatusOK, body: o.answer}, nil
	}
}

// validatePrepay checks the fields WeChat Pay checks.
func validatePrepay(tradeType string, req *prepayRequest, cfg MerchantConfig, authMchID string) error {
	switch {
	case req.MchID == "":
		return paramError("输入源“/body/mchid”映射到值字段“直连商户号”必填性规则校验失败，此字段为必填项")
	case req.MchID != authMchID:
		return paramError("请求体中的mchid(%s)与发起调用的商户号(%s)不一致", req.MchID, authMchID)
	case req.AppID == "":
		return paramError("输入源“/body/appid”映射到值字段“应用ID”必填性规则校验失败，此字段为必填项")
	case !slices.Contains(cfg.AppIDs, req.AppID):
		return apiErr(http.StatusBadRequest, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配 (appid %s is not bound to merchant %s)", req.AppID, cfg.MchID)
	case req.Description == "":
		return paramError("输入源“/body/description”映射到值字段“商品描述”必填性规则校验失败，此字段为必填项")
	case utf8.RuneCountInString(req.Description) > 127:
		return paramError("输入源“/body/description”映射到值字段“商品描述”字符串规则校验失败，字符数 %d，大于最大值 127", utf8.RuneCountInString(req.Description))
	case !validOutTradeNo(req.OutTradeNo):
		return paramError("输入源“/body/out_trade_no”映射到值字段“商户订单号”字符串规则校验失败，应为6-32位数字、大小写字母或_-|*")
	case utf8.RuneCountInString(req.Attach) > 128:
		return paramError("输入源“/body/attach”映射到值字段“附加数据”字符串规则校验失败，字符数大于最大值 128")
	case req.Amount == nil || req.Amount.Total == nil:
		return paramError("输入源“/body/amount/total”映射到值字段“总金额”必填性规则校验失败，此字段为必填项")
	case *req.Amount.Total < 1:
		return paramError("输入源“/body/amount/total”映射到值字段“总金额”数值规则校验失败，值 %d，小于最小值 1", *req.Amount.Total)
	case req.Amount.Currency != "" && req.Amount.Currency != "CNY":
		return paramError("输入源“/body/amount/currency”映射到值字段“货币类型”校验失败，境内商户仅支持CNY")
	case tradeType == "JSAPI" && (req.Payer == nil || req.Payer.OpenID == ""):
		return paramError("输入源“/body/payer/openid”映射到值字段“用户标识”必填性规则校验失败，此字段为必填项")
	case tradeType == "MWEB" && (req.SceneInfo == nil || req.SceneInfo.PayerClientIP == "" || len(req.SceneInfo.H5Info) == 0):
		return paramError("输入源“/body/scene_info”映射到值字段“场景信息”必填性规则校验失败，H5支付需要payer_client_ip和h5_info")
	}
	return nil
}

// validOutTradeNo: 6..32 characters of [0-9A-Za-z_-|*].
func validOutTradeNo(no string) bool {
	if len(no) < 6 || len(no) > 32 {
		return false
	}
	for _, r := range no {
		ok := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("_-|*", r)
		if !ok {
			return false
		}
	}
	return true
}

// checkNotifyURL accepts https URLs, and http ones on the loopback host,
// without a query string.
func checkNotifyURL(raw string) *apiError {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return paramError("notify_url格式错误 (%q is not an absolute URL)", raw)
	}
	host := u.Hostname()
	loopback := host == "127.0.0.1" || host == "localhost" || host == "::1"
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && loopback):
		return paramError("notify_url必须为https地址 (%q; http is only accepted for 127.0.0.1/localhost)", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return paramError("notify_url不能携带参数 (%q)", raw)
	}
	return nil
}

// canonicalJSON re-encodes a JSON document with sorted object keys.
func canonicalJSON(b []byte) (string, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "", err
	}
	out, err := marshalJSON(v)
	return string(out), err
}

// newPrepayID returns an id shaped like WeChat's: wx + yyyyMMddHHmmss + 20 hex.
func newPrepayID(now time.Time) (string, error) {
	tail, err := randomString(20, "0123456789abcdef")
	if err != nil {
		return "", err
	}
	return "wx" + now.In(time.FixedZone("CST", 8*3600)).Format("20060102150405") + tail, nil
}

// requireMchIDQuery checks the mchid query parameter of the query APIs.
func requireMchIDQuery(c *call) error {
	q := c.query.Get("mchid")
	if q == "" {
		return paramError("输入源“/query/mchid”映射到值字段“直连商户号”必填性规则校验失败，此字段为必填项")
	}
	if q != c.mchID {
		return paramError("mchid(%s)与发起调用的商户号(%s)不一致", q, c.mchID)
	}
	return nil
}

func orderNotExist() error {
	return apiErr(http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在")
}

func (s *Sim) queryByOutTradeNo(_ context.Context, c *call) (reply, error) {
	if err := requireMchIDQuery(c); err != nil {
		return reply{}, err
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	o, ok := c.m.orders[c.params["out_trade_no"]]
	if !ok {
		return reply{}, orderNotExist()
	}
	return reply{status: http.StatusOK, body: o.view(c.mchID)}, nil
}

func (s *Sim) queryByTransactionID(_ context.Context, c *call) (reply, error) {
	if err := requireMchIDQuery(c); err != nil {
		return reply{}, err
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	o, ok := c.m.byTxn[c.params["transaction_id"]]
	if !ok {
		return reply{}, orderNotExist()
	}
	return reply{status: http.StatusOK, body: o.view(c.mchID)}, nil
}

func (s *Sim) closeOrder(_ context.Context, c *call) (reply, error) {
	var req struct {
		MchID string `json:"mchid"`
	}
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	if req.MchID == "" {
		return reply{}, paramError("输入源“/body/mchid”映射到值字段“直连商户号”必填性规则校验失败，此字段为必填项")
	}
	if req.MchID != c.mchID {
		return reply{}, paramError("请求体中的mchid(%s)与发起调用的商户号(%s)不一致", req.MchID, c.mchID)
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	o, ok := c.m.orders[c.params["out_trade_no"]]
	if !ok {
		return reply{}, orderNotExist()
	}
	if o.state == tradeSuccess {
		return reply{}, apiErr(http.StatusBadRequest, "ORDERPAID", "订单已支付")
	}
	o.state = tradeClosed
	return reply{status: http.StatusNoContent}, nil
}

// Payment is what a user does in the WeChat app: pay an order, optionally
// with coupons.
type Payment struct {
	MchID      string `json:"mchid"`
	OutTradeNo string `json:"out_trade_no"`
	// OpenID of the payer; "" means the order's payer (JSAPI) or a
	// generated one.
	OpenID string `json:"openid,omitempty"`
	// BankType defaults to "OTHERS".
	BankType   string      `json:"bank_type,omitempty"`
	Promotions []Promotion `json:"promotions,omitempty"`
}

// Promotion is a coupon applied to a payment (promotion_detail item).
type Promotion struct {
	CouponID string `json:"coupon_id,omitempty"` // "" generates one
	Name     string `json:"name,omitempty"`
	Scope    string `json:"scope,omitempty"` // GLOBAL (default) or SINGLE
	Type     string `json:"type"`            // CASH or NOCASH
	Amount   int64  `json:"amount"`
	StockID  string `json:"stock_id,omitempty"`
	// Contributions must add up to Amount; all zero means the merchant
	// funds the whole amount.
	WechatpayContribute int64 `json:"wechatpay_contribute,omitempty"`
	MerchantContribute  int64 `json:"merchant_contribute,omitempty"`
	OtherContribute     int64 `json:"other_contribute,omitempty"`
}

// PaymentResult is the outcome of PayOrder.
type PaymentResult struct {
	TransactionID  string          `json:"transaction_id"`
	NotificationID string          `json:"notification_id"`
	Transaction    json.RawMessage `json:"transaction"` // the TRANSACTION.SUCCESS plaintext
}

// PayOrder makes a user pay an order: it becomes SUCCESS with
// payer_total = total - Σ promotions, and TRANSACTION.SUCCESS is sent to
// the order's notify_url. Errors: ErrUnknownMerchant, ErrOrderNotFound,
// ErrOrderState (already paid, closed or expired), ErrInvalid.
func (s *Sim) PayOrder(ctx context.Context, p Payment) (PaymentResult, error) {
	m, err := s.merchant(p.MchID)
	if err != nil {
		return PaymentResult{}, err
	}
	promos, sum, err := buildPromotions(p.Promotions)
	if err != nil {
		return PaymentResult{}, err
	}
	now := s.Now()
	txnID, err := newTransactionID(now)
	if err != nil {
		return PaymentResult{}, err
	}
	generatedOpenID, err := randomString(27, alnum)
	if err != nil {
		return PaymentResult{}, err
	}

	m.mu.Lock()
	o, ok := m.orders[p.OutTradeNo]
	if !ok {
		m.mu.Unlock()
		return PaymentResult{}, fmt.Errorf("%w: merchant %s out_trade_no %q", ErrOrderNotFound, p.MchID, p.OutTradeNo)
	}
	if err := payable(o, p, now, sum); err != nil {
		m.mu.Unlock()
		return PaymentResult{}, err
	}
	switch {
	case p.OpenID != "":
		o.openID = p.OpenID
	case o.openID == "":
		o.openID = "o" + generatedOpenID
	}
	o.state, o.txnID, o.successAt = tradeSuccess, txnID, now
	o.payerTotal, o.promotions = o.total-sum, promos
	o.bankType = p.BankType
	if o.bankType == "" {
		o.bankType = "OTHERS"
	}
	m.byTxn[txnID] = o
	view := o.view(p.MchID)
	notifyURL := o.notifyURL
	m.mu.Unlock()

	plain, err := marshalJSON(view)
	if err != nil {
		return PaymentResult{}, err
	}
	res := PaymentResult{TransactionID: txnID, Transaction: plain}
	res.NotificationID, err = s.Notify(ctx, Notification{MchID: p.MchID, URL: notifyURL, EventType: "TRANSACTION.SUCCESS",
		OriginalType: "transaction", Summary: "支付成功", Plaintext: plain})
	if err != nil {
		return res, fmt.Errorf("wxpaysim: order paid but TRANSACTION.SUCCESS not queued: %w", err)
	}
	s.payGiftOnPayment(ctx, p.MchID, o.req.GoodsTag, view) // pay-gift activities (paygift_send.go)
	return res, nil
}

// payable checks that o can be paid by p. m.mu must be held.
func payable(o *order, p Payment, now time.Time, promoSum int64) error {
	switch {
	case o.state == tradeSuccess:
		return fmt.Errorf("%w: order %s is already paid", ErrOrderState, p.OutTradeNo)
	case o.state == tradeClosed:
		return fmt.Errorf("%w: order %s is closed", ErrOrderState, p.OutTradeNo)
	case !o.expire.IsZero() && now.After(o.expire):
		return fmt.Errorf("%w: order %s expired at %s", ErrOrderState, p.OutTradeNo, formatTime(o.expire))
	case o.tradeType == "JSAPI" && p.OpenID != "" && p.OpenID != o.openID:
		return fmt.Errorf("%w: JSAPI order %s was created for openid %s, not %s", ErrInvalid, p.OutTradeNo, o.openID, p.OpenID)
	case promoSum > o.total:
		return fmt.Errorf("%w: promotions (%d) exceed the order total (%d)", ErrInvalid, promoSum, o.total)
	}
	return nil
}

// buildPromotions validates the coupons and fills in defaults.
func buildPromotions(in []Promotion) ([]promotionJSON, int64, error) {
	var out []promotionJSON
	var sum int64
	for i, p := range in {
		if p.Type != "CASH" && p.Type != "NOCASH" {
			return nil, 0, fmt.Errorf("%w: promotion %d: type %q (want CASH or NOCASH)", ErrInvalid, i, p.Type)
		}
		if p.Amount < 1 {
			return nil, 0, fmt.Errorf("%w: promotion %d: amount %d < 1", ErrInvalid, i, p.Amount)
		}
		if p.WechatpayContribute < 0 || p.MerchantContribute < 0 || p.OtherContribute < 0 {
			return nil, 0, fmt.Errorf("%w: promotion %d: negative contribution", ErrInvalid, i)
		}
		contrib := p.WechatpayContribute + p.MerchantContribute + p.OtherContribute
		switch {
		case contrib == 0:
			p.MerchantContribute = p.Amount
		case contrib != p.Amount:
			return nil, 0, fmt.Errorf("%w: promotion %d: contributions add up to %d, amount is %d", ErrInvalid, i, contrib, p.Amount)
		}
		if p.Scope == "" {
			p.Scope = "GLOBAL"
		}
		if p.Scope != "GLOBAL" && p.Scope != "SINGLE" {
			return nil, 0, fmt.Errorf("%w: promotion %d: scope %q (want GLOBAL or SINGLE)", ErrInvalid, i, p.Scope)
		}
		if p.CouponID == "" {
			id, err := randomString(11, digits)
			if err != nil {
				return nil, 0, err
			}
			p.CouponID = "1" + id
		}
		if p.StockID == "" {
			id, err := randomString(9, digits)
			if err != nil {
				return nil, 0, err
			}
			p.StockID = "1" + id
		}
		if p.Name == "" {
			p.Name = "模拟优惠券 " + p.CouponID
		}
		sum += p.Amount
		out = append(out, promotionJSON{CouponID: p.CouponID, Name: p.Name, Scope: p.Scope, Type: p.Type,
			Amount: p.Amount, StockID: p.StockID, WechatpayContribute: p.WechatpayContribute,
			MerchantContribute: p.MerchantContribute, OtherContribute: p.OtherContribute, Currency: "CNY"})
	}
	return out, sum, nil
}

// newTransactionID returns a 28-digit WeChat Pay order number.
func newTransactionID(now time.Time) (string, error) {
	tail, err := randomString(16, digits)
	if err != nil {
		return "", err
	}
	return "4200" + now.In(time.FixedZone("CST", 8*3600)).Format("20060102") + tail, nil
}
