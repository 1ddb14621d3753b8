package reconcile

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// The ledger side: rows of package ledger as Entry values. day is the
// bill.DayNumber of the day index the row was read from (NoDay when read by
// key without one).

// OrderEntry is a payment order (ledger.OrderKey row). An order that was
// paid and later refunded (status REFUND) counts as paid: its refunds are
// entries of their own.
func OrderEntry(o *ledger.Order, day int64) Entry {
	e := Entry{Kind: Charge, Key: []byte(o.OutTradeNo), TxnID: []byte(o.TransactionID), TradeType: []byte(o.TradeType), Day: day,
		Total: o.Total, Payer: o.PayerTotal, Settlement: o.SettlementTotal, Coupon: o.CouponTotal, NoCash: o.NoCashTotal}
	switch o.Status {
	case ledger.TradeSuccess, ledger.TradeRefund:
		e.Status = []byte(StatusSuccess)
	default:
		e.Status = []byte(o.Status)
	}
	if t, err := time.Parse(time.RFC3339, o.SuccessTime); err == nil {
		e.Time = t.Unix()
	}
	return e
}

// PayScoreEntry is a Pay Score service order (ledger.PayScoreOrderKey row)
// as the deduction it led to: keyed by out_order_no, with the service order
// id (order_id) an AUTH row's attach carries. Coupons come from the
// collection's promotion detail.
func PayScoreEntry(o *ledger.PayScoreOrder, day int64) (Entry, error) {
	e := Entry{Kind: Charge, Flags: FlagPayScore, Key: []byte(o.OutOrderNo), TxnID: []byte(o.TransactionID), OrderNo: []byte(o.OrderID), Day: day}
	if o.State == ledger.PayScoreDone && o.Collection() == ledger.PayScoreUserPaid {
		e.Status = []byte(StatusSuccess)
	} else {
		e.Status = []byte(o.Describe())
	}
	if o.PaidTime != "" {
		if t, err := ledger.ParsePaidTime(o.PaidTime); err == nil {
			e.Time = t.Unix()
		}
	}
	e.Total = o.PaidAmount
	if e.Total == 0 {
		e.Total = o.TotalAmount
	}
	if o.CollectionJSON != "" {
		var c struct {
			Details []struct {
				PromotionDetail []ledger.Promotion `json:"promotion_detail"`
			} `json:"details"`
		}
		if err := json.Unmarshal([]byte(o.CollectionJSON), &c); err != nil {
			return Entry{}, fmt.Errorf("reconcile: pay score order %s: collection_json: %w", o.OutOrderNo, err)
		}
		for _, d := range c.Details {
			coupon, noCash, _ := ledger.Settlement(0, d.PromotionDetail)
			e.Coupon += coupon
			e.NoCash += noCash
		}
	}
	e.Payer = e.Total - e.Coupon
	e.Settlement = e.Total - e.NoCash
	return e, nil
}

// RefundEntry is a refund (ledger.RefundKey row). Its time is WeChat Pay's
// create_time when known (the bill's 交易时间 of a refund is when it was
// requested), else ours. A refund WeChat Pay rejected never existed there:
// it counts as CLOSED (no money moved).
func RefundEntry(r *ledger.RefundRecord, day int64) Entry {
	e := Entry{Kind: Refund, Key: []byte(r.OutRefundNo), TxnID: []byte(r.TransactionID), RefundID: []byte(r.RefundID),
		OrderNo: []byte(r.OutTradeNo), Day: day, Total: r.Refund, Settlement: r.SettlementRefund, Payer: r.PayerRefund}
	if r.OrderKind == "" || r.OrderKind == ledger.KindOrder {
		e.Flags |= FlagOrderRefund
	}
	switch r.Status {
	case ledger.RefundRejected:
		e.Status = []byte(StatusClosed)
	default:
		e.Status = []byte(r.Status)
	}
	for _, s := range []string{r.CreateTime, r.CreatedAt} {
		if t, err := time.Parse(time.RFC3339, s); err == nil && s != "" {
			e.Time = t.Unix()
			break
		}
	}
	e.NoCash = r.Refund - r.SettlementRefund
	e.Coupon = r.DiscountRefund - e.NoCash
	return e
}
