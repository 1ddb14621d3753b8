package wxpaysim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// tradeRefund is the trade_state of a paid order with refunds ("转入退款").
const tradeRefund = "REFUND"

// Refund statuses (wechatpay-apiv3.md 5.3).
const (
	refundProcessing = "PROCESSING"
	refundSuccess    = "SUCCESS"
	refundAbnormal   = "ABNORMAL"
	refundClosed     = "CLOSED"
)

// maxRefundsPerOrder is WeChat Pay's limit of partial refunds per order.
const maxRefundsPerOrder = 50

// ErrRefundNotFound: no refund with that out_refund_no.
var ErrRefundNotFound = errors.New("wxpaysim: refund does not exist")

// refund is one refund of an order. m.mu guards it.
type refund struct {
	order        *order
	outRefundNo  string
	refundID     string
	amount       int64 // amount.refund, in order (标价) terms
	payerRefund  int64
	promoRefunds []int64 // per order promotion, same index as order.promotions
	status       string
	createdAt    time.Time
	successAt    time.Time
	reason       string
	fundsAccount string
	notifyURL    string
}

// refunded is what the order's refunds take out of it: every refund that
// is not CLOSED. m.mu must be held.
func (o *order) refunded() int64 {
	var sum int64
	for _, r := range o.refunds {
		if r.status != refundClosed {
			sum += r.amount
		}
	}
	return sum
}

// splitRefund divides a new refund of amount between the payer's cash and
// the order's coupons, the way the simulator models WeChat Pay: WeChat only
// says it refunds coupons "in proportion" (按比例退, wechatpay-apiv3.md 5.3)
// and the exact rounding is UNCONFIRMED. The model: the payer's share of all
// refunds so far (CLOSED ones excluded) is payer_total × refunded / total
// rounded to the nearest fen, halves up, and this refund gets the increase;
// the coupon part goes to the promotions in proportion to their amounts,
// largest remainder first (ties to the earlier promotion), never above what a
// promotion still has unrefunded. This is the rule docs/payments.md
// documents for the merchant's prediction. m.mu must be held.
func (o *order) splitRefund(amount int64) (payer int64, shares []int64) {
	var prevRefund, prevPayer int64
	taken := make([]int64, len(o.promotions))
	for _, r := range o.refunds {
		if r.status == refundClosed {
			continue
		}
		prevRefund += r.amount
		prevPayer += r.payerRefund
		for i, v := range r.promoRefunds {
			taken[i] += v
		}
	}
	payerTotal := o.payerTotal
	cumulative := roundedShare(uint64(prevRefund+amount), uint64(payerTotal), uint64(o.total))
	payer = int64(cumulative) - prevPayer
	payer = max(0, min(payer, amount, payerTotal-prevPayer))
	coupon := amount - payer
	var room, weights int64
	caps := make([]int64, len(o.promotions))
	for i, p := range o.promotions {
		caps[i] = max(0, p.Amount-taken[i])
		room += caps[i]
		weights += p.Amount
	}
	if coupon > room {
		payer, coupon = payer+coupon-room, room
	}
	shares = make([]int64, len(o.promotions))
	if coupon == 0 || weights == 0 {
		return payer, shares
	}
	remainders := make([]uint64, len(o.promotions))
	left := coupon
	for i, p := range o.promotions {
		hi, lo := bits.Mul64(uint64(coupon), uint64(p.Amount))
		q, rem := bits.Div64(hi, lo, uint64(weights))
		shares[i] = min(int64(q), caps[i])
		remainders[i] = rem
		left -= shares[i]
	}
	rank := make([]int, len(o.promotions))
	for i := range rank {
		rank[i] = i
	}
	slices.SortStableFunc(rank, func(a, b int) int {
		switch {
		case remainders[a] > remainders[b]:
			return -1
		case remainders[a] < remainders[b]:
			return 1
		}
		return 0
	})
	for left > 0 {
		gave := false
		for _, i := range rank {
			if left > 0 && shares[i] < caps[i] {
				shares[i]++
				left--
				gave = true
			}
		}
		if !gave {
			break
		}
	}
	return payer, shares
}

// roundedShare is a×b/c to the nearest integer, halves up, for a, b < 2^63
// and 0 < b ≤ c < 2^63: (2ab + c) / 2c in 128-bit arithmetic.
func roundedShare(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	hi, lo = hi<<1|lo>>63, lo<<1
	var carry uint64
	lo, carry = bits.Add64(lo, c, 0)
	q, _ := bits.Div64(hi+carry, lo, 2*c)
	return q
}

// refundPromotionType is the refund promotion_detail type: the enum of the
// Go SDK v0.2.21 (COUPON = prepaid, DISCOUNT = no-prepaid). The current
// official samples say CASH/NOCASH instead (wechatpay-apiv3.md 5.3,
// UNCONFIRMED which one production sends); the simulator uses the spelling
// that differs from the payment's, so merchants must normalise.
func refundPromotionType(paymentType string) string {
	if paymentType == "NOCASH" {
		return "DISCOUNT"
	}
	return "COUPON"
}

type refundJSON struct {
	RefundID            string                `json:"refund_id"`
	OutRefundNo         string                `json:"out_refund_no"`
	TransactionID       string                `json:"transaction_id"`
	OutTradeNo          string                `json:"out_trade_no"`
	Channel             string                `json:"channel"`
	UserReceivedAccount string                `json:"user_received_account"`
	SuccessTime         string                `json:"success_time,omitempty"`
	CreateTime          string                `json:"create_time"`
	Status              string                `json:"status"`
	FundsAccount        string                `json:"funds_account"`
	Amount              refundAmountJSON      `json:"amount"`
	PromotionDetail     []refundPromotionJSON `json:"promotion_detail"`
}

type refundAmountJSON struct {
	Total            int64  `json:"total"`
	Refund           int64  `json:"refund"`
	From             []any  `json:"from"`
	PayerTotal       int64  `json:"payer_total"`
	PayerRefund      int64  `json:"payer_refund"`
	SettlementRefund int64  `json:"settlement_refund"`
	SettlementTotal  int64  `json:"settlement_total"`
	DiscountRefund   int64  `json:"discount_refund"`
	Currency         string `json:"currency"`
	RefundFee        int64  `json:"refund_fee"`
}

type refundPromotionJSON struct {
	PromotionID  string `json:"promotion_id"`
	Scope        string `json:"scope"`
	Type         string `json:"type"`
	Amount       int64  `json:"amount"`
	RefundAmount int64  `json:"refund_amount"`
	GoodsDetail  []any  `json:"goods_detail"`
}

// settlement returns the no-prepaid part of the refund and of the order.
// m.mu must be held.
func (r *refund) settlement() (noCashRefund, noCashTotal, cashCouponRefund int64) {
	for i, p := range r.order.promotions {
		if p.Type == "NOCASH" {
			noCashRefund += r.promoRefunds[i]
			noCashTotal += p.Amount
		} else {
			cashCouponRefund += r.promoRefunds[i]
		}
	}
	return noCashRefund, noCashTotal, cashCouponRefund
}

// view renders the refund as WeChat Pay's refund JSON. m.mu must be held.
func (r *refund) view() refundJSON {
	o := r.order
	noCashRefund, noCashTotal, _ := r.settlement()
	v := refundJSON{RefundID: r.refundID, OutRefundNo: r.outRefundNo, TransactionID: o.txnID, OutTradeNo: o.req.OutTradeNo,
		Channel: "ORIGINAL", UserReceivedAccount: "支付用户零钱", CreateTime: formatTime(r.createdAt), Status: r.status,
		FundsAccount: r.fundsAccount,
		Amount: refundAmountJSON{Total: o.total, Refund: r.amount, From: []any{}, PayerTotal: o.payerTotal, PayerRefund: r.payerRefund,
			SettlementRefund: r.amount - noCashRefund, SettlementTotal: o.total - noCashTotal, DiscountRefund: r.amount - r.payerRefund,
			Currency: "CNY"},
		PromotionDetail: []refundPromotionJSON{}}
	if r.status == refundSuccess {
		v.SuccessTime = formatTime(r.successAt)
	}
	for i, p := range o.promotions {
		if r.promoRefunds[i] == 0 {
			continue
		}
		v.PromotionDetail = append(v.PromotionDetail, refundPromotionJSON{PromotionID: p.CouponID, Scope: p.Scope,
			Type: refundPromotionType(p.Type), Amount: p.Amount, RefundAmount: r.promoRefunds[i], GoodsDetail: []any{}})
	}
	return v
}

// refundNotice is the REFUND.* resource (wechatpay-apiv3.md 7.5): no
// discount_refund, settlement_total or promotion_detail, as S6 documents it.
type refundNotice struct {
	MchID               string `json:"mchid"`
	OutTradeNo          string `json:"out_trade_no"`
	TransactionID       string `json:"transaction_id"`
	OutRefundNo         string `json:"out_refund_no"`
	RefundID            string `json:"refund_id"`
	RefundStatus        string `json:"refund_status"`
	SuccessTime         string `json:"success_time,omitempty"`
	UserReceivedAccount string `json:"user_received_account"`
	Amount              struct {
		Total            int64 `json:"total"`
		Refund           int64 `json:"refund"`
		PayerTotal       int64 `json:"payer_total"`
		PayerRefund      int64 `json:"payer_refund"`
		SettlementRefund int64 `json:"settlement_refund"`
	} `json:"amount"`
}

// refundRoutes are the /v3/ routes of refunds (wechatpay-apiv3.md 5.3).
func (s *Sim) refundRoutes() []route {
	return []route{
		{method: http.MethodPost, pattern: "/v3/refund/domestic/refunds", handle: s.createRefund},
		{method: http.MethodGet, pattern: "/v3/refund/domestic/refunds/{out_refund_no}", handle: s.queryRefund},
	}
}

type refundRequest struct {
	TransactionID string          `json:"transaction_id"`
	OutTradeNo    string          `json:"out_trade_no"`
	OutRefundNo   string          `json:"out_refund_no"`
	Reason        string          `json:"reason"`
	NotifyURL     string          `json:"notify_url"`
	FundsAccount  string          `json:"funds_account"`
	GoodsDetail   json.RawMessage `json:"goods_detail"`
	Amount        *struct {
		Refund   *int64          `json:"refund"`
		Total    *int64          `json:"total"`
		Currency string          `json:"currency"`
		From     json.RawMessage `json:"from"`
	} `json:"amount"`
}

// validOutRefundNo: 1..64 characters of [0-9A-Za-z_-|*@].
func validOutRefundNo(no string) bool {
	if no == "" || len(no) > 64 {
		return false
	}
	for _, r := range no {
		ok := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("_-|*@", r)
		if !ok {
			return false
		}
	}
	return true
}

func validateRefund(req *refundRequest) error {
	switch {
	case req.TransactionID == "" && req.OutTradeNo == "":
		return paramError("transaction_id和out_trade_no必须二选一进行传参")
	case !validOutRefundNo(req.OutRefundNo):
		return paramError("输入源“/body/out_refund_no”映射到值字段“商户退款单号”字符串规则校验失败，应为1-64位数字、大小写字母或_-|*@")
	case utf8.RuneCountInString(req.Reason) > 80:
		return paramError("输入源“/body/reason”映射到值字段“退款原因”字符串规则校验失败，字符数大于最大值 80")
	case req.Amount == nil || req.Amount.Refund == nil:
		return paramError("输入源“/body/amount/refund”映射到值字段“退款金额”必填性规则校验失败，此字段为必填项")
	case req.Amount.Total == nil:
		return paramError("输入源“/body/amount/total”映射到值字段“原订单金额”必填性规则校验失败，此字段为必填项")
	case *req.Amount.Refund < 1:
		return paramError("输入源“/body/amount/refund”映射到值字段“退款金额”数值规则校验失败，值 %d，小于最小值 1", *req.Amount.Refund)
	case req.Amount.Currency != "CNY":
		return paramError("输入源“/body/amount/currency”映射到值字段“退款币种”校验失败，境内商户仅支持CNY")
	case req.FundsAccount != "" && req.FundsAccount != "AVAILABLE" && req.FundsAccount != "UNSETTLED":
		return paramError("funds_account取值错误 (%q; AVAILABLE or UNSETTLED)", req.FundsAccount)
	}
	return nil
}

// findRefund looks a refund up by out_refund_no. m.mu must be held.
func (m *merchant) findRefund(outRefundNo string) *refund {
	for _, o := range m.orders {
		for _, r := range o.refunds {
			if r.outRefundNo == outRefundNo {
				return r
			}
		}
	}
	return nil
}

// createRefund is POST /v3/refund/domestic/refunds.
func (s *Sim) createRefund(ctx context.Context, c *call) (reply, error) {
	var req refundRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	if err := validateRefund(&req); err != nil {
		return reply{}, err
	}
	notifyURL := req.NotifyURL
	if notifyURL != "" {
		if err := checkNotifyURL(notifyURL); err != nil {
			return reply{}, err
		}
	} else {
		notifyURL = c.m.config().NotifyURL // the refund URL configured in the merchant platform
	}
	refundID, err := randomString(18, digits)
	if err != nil {
		return reply{}, err
	}
	now := s.Now()
	refundID = "503" + now.In(time.FixedZone("CST", 8*3600)).Format("20060102") + refundID

	view, outcome, err := func() (refundJSON, string, error) {
		c.m.mu.Lock()
		defer c.m.mu.Unlock()
		var o *order
		if req.TransactionID != "" {
			o = c.m.byTxn[req.TransactionID]
			if o != nil && req.OutTradeNo != "" && req.OutTradeNo != o.req.OutTradeNo {
				return refundJSON{}, "", paramError("transaction_id与out_trade_no不匹配")
			}
		} else {
			o = c.m.orders[req.OutTradeNo]
		}
		if o == nil {
			return refundJSON{}, "", apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "订单不存在")
		}
		amount, total := *req.Amount.Refund, *req.Amount.Total
		if r := c.m.findRefund(req.OutRefundNo); r != nil {
			if r.order != o || r.amount != amount {
				return refundJSON{}, "", apiErr(http.StatusBadRequest, "INVALID_REQUEST", "商户退款单号%s已存在，且请求参数与原请求不一致", req.OutRefundNo)
			}
			return r.view(), refundProcessing, nil // the same request again: the same refund
		}
		switch {
		case o.state != tradeSuccess:
			return refundJSON{}, "", apiErr(http.StatusBadRequest, "INVALID_REQUEST", "订单状态为%s，不支持退款", o.state)
		case total != o.total:
			return refundJSON{}, "", paramError("订单金额与实际金额不符 (amount.total %d, order total %d)", total, o.total)
		case o.refunded()+amount > o.total:
			return refundJSON{}, "", apiErr(http.StatusBadRequest, "INVALID_REQUEST", "申请退款金额超过订单可退金额 (refund %d, refundable %d)", amount, o.total-o.refunded())
		case len(o.refunds) >= maxRefundsPerOrder:
			return refundJSON{}, "", apiErr(http.StatusBadRequest, "INVALID_REQUEST", "部分退款次数超过%d次", maxRefundsPerOrder)
		}
		payer, shares := o.splitRefund(amount)
		r := &refund{order: o, outRefundNo: req.OutRefundNo, refundID: refundID, amount: amount, payerRefund: payer,
			promoRefunds: shares, status: refundProcessing, createdAt: now, reason: req.Reason, fundsAccount: req.FundsAccount,
			notifyURL: notifyURL}
		if r.fundsAccount == "" {
			r.fundsAccount = "AVAILABLE"
		}
		o.refunds = append(o.refunds, r)
		outcome := o.refundOutcome
		if outcome == "" {
			outcome = refundSuccess
		}
		return r.view(), outcome, nil
	}()
	if err != nil {
		return reply{}, err
	}
	// WeChat answers PROCESSING and settles the refund asynchronously; the
	// notification may reach the merchant before this answer does.
	if outcome != refundProcessing && view.Status == refundProcessing {
		if _, err := s.ResolveRefund(ctx, c.mchID, req.OutRefundNo, outcome); err != nil {
			s.logf("wxpaysim: refund %s: %v", req.OutRefundNo, err)
		}
	}
	return reply{status: http.StatusOK, body: view}, nil
}

// queryRefund is GET /v3/refund/domestic/refunds/{out_refund_no}.
func (s *Sim) queryRefund(_ context.Context, c *call) (reply, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	r := c.m.findRefund(c.params["out_refund_no"])
	if r == nil {
		return reply{}, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "退款单不存在")
	}
	return reply{status: http.StatusOK, body: r.view()}, nil
}

// ResolveRefund moves a refund to status (SUCCESS, ABNORMAL or CLOSED) and
// sends REFUND.<status> to the refund's notify_url; it returns the
// notification id ("" when the refund has no notify_url). Allowed moves:
// PROCESSING to any, ABNORMAL to SUCCESS or CLOSED. A CLOSED refund gives its
// amount and coupon shares back to the order. Errors: ErrUnknownMerchant,
// ErrRefundNotFound, ErrOrderState, ErrInvalid.
func (s *Sim) ResolveRefund(ctx context.Context, mchID, outRefundNo, status string) (string, error) {
	if status != refundSuccess && status != refundAbnormal && status != refundClosed {
		return "", fmt.Errorf("%w: refund status %q (want SUCCESS, ABNORMAL or CLOSED)", ErrInvalid, status)
	}
	m, err := s.merchant(mchID)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	r := m.findRefund(outRefundNo)
	if r == nil {
		m.mu.Unlock()
		return "", fmt.Errorf("%w: merchant %s out_refund_no %q", ErrRefundNotFound, mchID, outRefundNo)
	}
	if !(r.status == refundProcessing || r.status == refundAbnormal && status != refundAbnormal) {
		m.mu.Unlock()
		return "", fmt.Errorf("%w: refund %s is %s, cannot become %s", ErrOrderState, outRefundNo, r.status, status)
	}
	r.status = status
	if status == refundSuccess {
		r.successAt = s.Now()
	}
	var n refundNotice
	n.MchID, n.OutTradeNo, n.TransactionID, n.OutRefundNo, n.RefundID = mchID, r.order.req.OutTradeNo, r.order.txnID, r.outRefundNo, r.refundID
	n.RefundStatus, n.UserReceivedAccount = status, "支付用户零钱"
	if status == refundSuccess {
		n.SuccessTime = formatTime(r.successAt)
	}
	noCashRefund, _, _ := r.settlement()
	n.Amount.Total, n.Amount.Refund, n.Amount.PayerTotal, n.Amount.PayerRefund = r.order.total, r.amount, r.order.payerTotal, r.payerRefund
	n.Amount.SettlementRefund = r.amount - noCashRefund
	url := r.notifyURL
	m.mu.Unlock()

	if url == "" {
		return "", nil
	}
	plain, err := marshalJSON(n)
	if err != nil {
		return "", err
	}
	summary := map[string]string{refundSuccess: "退款成功", refundAbnormal: "退款异常", refundClosed: "退款关闭"}[status]
	return s.Notify(ctx, Notification{MchID: mchID, URL: url, EventType: "REFUND." + status, OriginalType: "refund",
		Summary: summary, Plaintext: plain})
}

// SetRefundOutcome is the admin switch for how the next refunds of an order
// end: SUCCESS (the default: settled right after the answer, REFUND.SUCCESS
// sent), PROCESSING (held until ResolveRefund), ABNORMAL or CLOSED (settled
// that way at once, with the matching notification).
func (s *Sim) SetRefundOutcome(mchID, outTradeNo, outcome string) error {
	switch outcome {
	case refundSuccess, refundProcessing, refundAbnormal, refundClosed:
	default:
		return fmt.Errorf("%w: outcome %q (want SUCCESS, PROCESSING, ABNORMAL or CLOSED)", ErrInvalid, outcome)
	}
	m, err := s.merchant(mchID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.orders[outTradeNo]
	if !ok {
		return fmt.Errorf("%w: merchant %s out_trade_no %q", ErrOrderNotFound, mchID, outTradeNo)
	}
	o.refundOutcome = outcome
	return nil
}

// PaidTransaction is a payment made outside the payments API (a Pay Score
// deduction) that refunds, queries and bills must know.
type PaidTransaction struct {
	MchID string `json:"mchid"`
	// OutTradeNo "" generates one (WeChat Pay numbers Pay Score deductions itself).
	OutTradeNo string `json:"out_trade_no,omitempty"`
	// TradeType defaults to AUTH (how Pay Score deductions appear in bills).
	TradeType   string      `json:"trade_type,omitempty"`
	AppID       string      `json:"appid,omitempty"` // "" means the merchant's first appid
	OpenID      string      `json:"openid,omitempty"`
	Description string      `json:"description,omitempty"`
	Attach      string      `json:"attach,omitempty"` // e.g. wxzff|<service order>|<out_order_no>
	Total       int64       `json:"total"`
	BankType    string      `json:"bank_type,omitempty"`
	Promotions  []Promotion `json:"promotions,omitempty"`
}

// PaidTransactionResult identifies a recorded transaction.
type PaidTransactionResult struct {
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
}

// RecordPaidTransaction records a successful payment that did not go
// through prepay (the Pay Score issue calls it when a service order is
// deducted). No notification is sent. Errors: ErrUnknownMerchant,
// ErrInvalid (bad amounts or promotions, out_trade_no taken).
func (s *Sim) RecordPaidTransaction(_ context.Context, t PaidTransaction) (PaidTransactionResult, error) {
	m, err := s.merchant(t.MchID)
	if err != nil {
		return PaidTransactionResult{}, err
	}
	if t.Total < 1 {
		return PaidTransactionResult{}, fmt.Errorf("%w: total %d < 1", ErrInvalid, t.Total)
	}
	promos, sum, err := buildPromotions(t.Promotions)
	if err != nil {
		return PaidTransactionResult{}, err
	}
	if sum > t.Total {
		return PaidTransactionResult{}, fmt.Errorf("%w: promotions (%d) exceed the total (%d)", ErrInvalid, sum, t.Total)
	}
	now := s.Now()
	txnID, err := newTransactionID(now)
	if err != nil {
		return PaidTransactionResult{}, err
	}
	if t.OutTradeNo == "" {
		tail, err := randomString(18, digits)
		if err != nil {
			return PaidTransactionResult{}, err
		}
		t.OutTradeNo = "1000" + now.In(time.FixedZone("CST", 8*3600)).Format("20060102") + tail
	}
	if t.TradeType == "" {
		t.TradeType = "AUTH"
	}
	if t.OpenID == "" {
		id, err := randomString(27, alnum)
		if err != nil {
			return PaidTransactionResult{}, err
		}
		t.OpenID = "o" + id
	}
	if t.BankType == "" {
		t.BankType = "OTHERS"
	}
	cfg := m.config()
	if t.AppID == "" && len(cfg.AppIDs) > 0 {
		t.AppID = cfg.AppIDs[0]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, taken := m.orders[t.OutTradeNo]; taken {
		return PaidTransactionResult{}, fmt.Errorf("%w: out_trade_no %q is taken", ErrInvalid, t.OutTradeNo)
	}
	total := t.Total
	o := &order{tradeType: t.TradeType, total: t.Total, state: tradeSuccess, txnID: txnID, successAt: now, openID: t.OpenID,
		payerTotal: t.Total - sum, bankType: t.BankType, promotions: promos,
		req: prepayRequest{AppID: t.AppID, MchID: t.MchID, Description: t.Description, OutTradeNo: t.OutTradeNo, Attach: t.Attach,
			Amount: &amountInput{Total: &total, Currency: "CNY"}}}
	m.orders[t.OutTradeNo] = o
	m.byTxn[txnID] = o
	return PaidTransactionResult{TransactionID: txnID, OutTradeNo: t.OutTradeNo}, nil
}

// refundAdminRoutes are the user-side actions of refunds under /sim/.
func (s *Sim) refundAdminRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodPost, "/sim/refunds/outcome", "how the next refunds of an order end {mchid,out_trade_no,outcome: SUCCESS|PROCESSING|ABNORMAL|CLOSED}", s.adminRefundOutcome},
		{http.MethodPost, "/sim/refunds/resolve", "settle a refund and notify {mchid,out_refund_no,status: SUCCESS|ABNORMAL|CLOSED}", s.adminResolveRefund},
		{http.MethodPost, "/sim/transactions", "record a payment made outside prepay, e.g. a Pay Score deduction {mchid,out_trade_no?,trade_type?,total,promotions?,attach?}", s.adminRecordTransaction},
	}
}

// adminRefundFail maps refund errors to admin answers.
func adminRefundFail(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrRefundNotFound) {
		adminError(w, http.StatusNotFound, "RESOURCE_NOT_EXISTS", err.Error())
		return
	}
	adminFail(w, err)
}

func (s *Sim) adminRefundOutcome(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID      string `json:"mchid"`
		OutTradeNo string `json:"out_trade_no"`
		Outcome    string `json:"outcome"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	if err := s.SetRefundOutcome(req.MchID, req.OutTradeNo, req.Outcome); err != nil {
		adminRefundFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"out_trade_no": req.OutTradeNo, "outcome": req.Outcome})
}

func (s *Sim) adminResolveRefund(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID       string `json:"mchid"`
		OutRefundNo string `json:"out_refund_no"`
		Status      string `json:"status"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	id, err := s.ResolveRefund(r.Context(), req.MchID, req.OutRefundNo, req.Status)
	if err != nil {
		adminRefundFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"out_refund_no": req.OutRefundNo, "status": req.Status, "notification_id": id})
}

func (s *Sim) adminRecordTransaction(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var t PaidTransaction
	if err := decodeAdmin(r, &t); err != nil {
		adminFail(w, err)
		return
	}
	res, err := s.RecordPaidTransaction(r.Context(), t)
	if err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
