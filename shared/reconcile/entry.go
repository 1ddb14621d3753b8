package reconcile

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
)

// Kind is what an entry records.
type Kind uint8

// Entry kinds. Charges and refunds live in separate key spaces.
const (
	// Charge is money in: a payment order (key out_trade_no) or a Pay Score
	// deduction (key out_order_no).
	Charge Kind = 1
	// Refund is money out (key out_refund_no).
	Refund Kind = 2
)

func (k Kind) String() string {
	switch k {
	case Charge:
		return "charge"
	case Refund:
		return "refund"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Flags qualify an entry.
type Flags uint16

// Entry flags.
const (
	// FlagPayScore: a Pay Score deduction (bill AUTH row, or a ledger Pay
	// Score order).
	FlagPayScore Flags = 1 << iota
	// FlagAuth: a bill row of trade type AUTH (keyed by the out_order_no of
	// its attach, wechatpay-apiv3.md 2.7).
	FlagAuth
	// FlagAttachInvalid: an AUTH row whose attach is not
	// wxzff|<service order id>|<out_order_no>; it is keyed by its own
	// (WeChat-generated) 商户订单号 and cannot match.
	FlagAttachInvalid
	// FlagLegacy: a bill row from a layout without 订单金额 (no no-prepaid
	// coupons, total = settlement).
	FlagLegacy
	// FlagOrderRefund: a ledger refund of a payment order (OrderNo is its
	// out_trade_no and must match the bill's 商户订单号).
	FlagOrderRefund
)

// flagCheck marks a bill entry checkIdentity reports on (it contradicts
// itself, or its day is not the bill date); set when it is added.
const flagCheck Flags = 1 << 15

// Statuses, normalised on both sides.
const (
	StatusSuccess    = "SUCCESS"    // paid / refunded
	StatusProcessing = "PROCESSING" // refund in progress
	StatusAbnormal   = "ABNORMAL"   // refund abnormal (bill: CHANGE)
	StatusClosed     = "CLOSED"     // refund closed (bill: FAIL / REFUNDCLOSE)
	StatusRevoked    = "REVOKED"    // payment-code payment reversed
)

// NoDay marks an entry whose ledger filing day is unknown.
const NoDay = -1 << 40

// Entry is one money movement as either side records it, normalised so the
// two can be compared field by field. Byte slices are borrowed (valid until
// the producer's next call) unless the entry was built by the caller.
//
// Amounts are fen:
//
//	charges: Total = 订单金额 / total; Settlement = 应结订单金额 /
//	  settlement_total; Coupon = 代金券金额 / coupon_total (CASH + NOCASH);
//	  NoCash = the no-prepaid part; Payer = what the user paid.
//	refunds: Total = 申请退款金额 / refund; Settlement = 退款金额 /
//	  settlement_refund; Coupon = 充值券退款金额 / the prepaid (CASH) coupon
//	  refund; NoCash = the no-prepaid coupon refund; Payer = payer_refund.
//
// On the bill side NoCash and Payer are derived: NoCash = Total −
// Settlement (订单金额 = 应结订单金额 + 免充值券金额, seed Q7), Payer = Total −
// Coupon for charges and Settlement − Coupon for refunds.
type Entry struct {
	Kind       Kind
	Flags      Flags
	Key        []byte // out_trade_no or out_order_no (charges), out_refund_no (refunds)
	TxnID      []byte // transaction_id (the paid transaction, also on refunds)
	RefundID   []byte // refund_id
	OrderNo    []byte // refunds: out_trade_no of the order; AUTH rows: the service order id of the attach
	TradeType  []byte
	Status     []byte // normalised: StatusSuccess...
	Time       int64  // Unix seconds: 交易时间, or the ledger's WeChat time (success / refund creation)
	Day        int64  // bill.DayNumber the side files it under (bill: of Time; ledger: its index day) or NoDay
	Total      int64
	Payer      int64
	Settlement int64
	Coupon     int64
	NoCash     int64
	Fee        int64 // bill.FeeUnit (bill side only)
	Line       int64 // bill line (bill side only)
}

// ErrEntry: an entry that cannot be recorded (empty or oversized key).
var ErrEntry = errors.New("reconcile: invalid entry")

// maxKeyLen bounds keys (out_trade_no is at most 32 characters).
const maxKeyLen = 1024

// payScoreAttachPrefix starts the attach of an AUTH row.
const payScoreAttachPrefix = "wxzff|"

// ParsePayScoreAttach splits an AUTH row's attach
// wxzff|<service order id>|<out_order_no> (wechatpay-apiv3.md 2.7).
func ParsePayScoreAttach(attach []byte) (orderID, outOrderNo []byte, ok bool) {
	rest, found := bytes.CutPrefix(attach, []byte(payScoreAttachPrefix))
	if !found {
		return nil, nil, false
	}
	orderID, outOrderNo, found = bytes.Cut(rest, []byte("|"))
	if !found || len(orderID) == 0 || len(outOrderNo) == 0 || bytes.IndexByte(outOrderNo, '|') >= 0 {
		return nil, nil, false
	}
	return orderID, outOrderNo, true
}

// NormalizeRefundStatus maps a refund status in either vocabulary to the
// API's (wechatpay-apiv3.md 6.3 "退款状态 in bills", UNCONFIRMED): the
// bill's CHANGE is ABNORMAL and FAIL (v2 REFUNDCLOSE) is CLOSED.
func NormalizeRefundStatus(s []byte) []byte {
	switch string(s) {
	case "CHANGE":
		return []byte(StatusAbnormal)
	case "FAIL", "REFUNDCLOSE", "REFUND_CLOSE":
		return []byte(StatusClosed)
	}
	return s
}

// FromTradeRow fills e from a trade-bill row (borrowing its slices). Payment
// rows become charges keyed by 商户订单号, AUTH rows charges keyed by the
// out_order_no of their attach, refund rows refunds keyed by 商户退款单号.
func FromTradeRow(row *bill.TradeRow, e *Entry) {
	*e = Entry{TxnID: row.TransactionID, TradeType: row.TradeType, Time: row.Time, Day: bill.DayNumber(row.Time), Fee: row.Fee, Line: row.Line}
	if !row.HasTotal {
		e.Flags |= FlagLegacy
	}
	if row.IsRefund() {
		e.Kind = Refund
		e.Key, e.RefundID, e.OrderNo = row.OutRefundNo, row.RefundID, row.OutTradeNo
		e.Status = NormalizeRefundStatus(row.RefundStatus)
		e.Total, e.Settlement, e.Coupon = row.RefundRequested, row.RefundAmount, row.CashCouponRefund
		e.NoCash = e.Total - e.Settlement
		e.Payer = e.Settlement - e.Coupon
		return
	}
	e.Kind = Charge
	e.Key, e.Status = row.OutTradeNo, row.TradeState
	if string(row.TradeType) == "AUTH" {
		e.Flags |= FlagAuth | FlagPayScore
		if orderID, outOrderNo, ok := ParsePayScoreAttach(row.Attach); ok {
			e.Key, e.OrderNo = outOrderNo, orderID
		} else {
			e.Flags |= FlagAttachInvalid
		}
	}
	e.Total, e.Settlement, e.Coupon = row.Total, row.Settlement, row.Coupon
	e.NoCash = e.Total - e.Settlement
	e.Payer = e.Total - e.Coupon
}
