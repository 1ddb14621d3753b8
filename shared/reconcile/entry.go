package reconcile

import (
	"bytes"
	"encoding/binary"
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

// recordBound is an upper bound of e's encoded size.
func recordBound(e *Entry) int {
	return 4 + 1 + 2 + len(e.Key) + 2 + 9*8 + 5*2 + len(e.TxnID) + len(e.RefundID) + len(e.OrderNo) + len(e.TradeType) + len(e.Status)
}

// record layout (little-endian, fixed-width numbers so that decoding is
// plain loads): u32 length of the rest | kind u8 | u16 key length | key |
// u16 flags | 9 × i64 time, day, total, payer, settlement, coupon, nocash,
// fee, line | 5 × (u16 length, bytes) txn, refund id, order no, trade
// type, status.

// appendRecord encodes e at the end of b.
func appendRecord(b []byte, e *Entry) ([]byte, error) {
	if len(e.Key) == 0 || len(e.Key) > maxKeyLen {
		return b, fmt.Errorf("%w: %s key of %d bytes (line %d)", ErrEntry, e.Kind, len(e.Key), e.Line)
	}
	for _, s := range [...][]byte{e.TxnID, e.RefundID, e.OrderNo, e.TradeType, e.Status} {
		if len(s) > maxKeyLen {
			return b, fmt.Errorf("%w: %s %s: a field of %d bytes (line %d)", ErrEntry, e.Kind, e.Key, len(s), e.Line)
		}
	}
	start := len(b)
	n := recordBound(e)
	if cap(b)-start < n {
		b = append(b[:cap(b)], make([]byte, n)...)[:start]
	}
	p := b[start : start+n]
	p[4] = byte(e.Kind)
	binary.LittleEndian.PutUint16(p[5:], uint16(len(e.Key)))
	i := 7 + copy(p[7:], e.Key)
	binary.LittleEndian.PutUint16(p[i:], uint16(e.Flags))
	i += 2
	for _, v := range [...]int64{e.Time, e.Day, e.Total, e.Payer, e.Settlement, e.Coupon, e.NoCash, e.Fee, e.Line} {
		binary.LittleEndian.PutUint64(p[i:], uint64(v))
		i += 8
	}
	for _, s := range [...][]byte{e.TxnID, e.RefundID, e.OrderNo, e.TradeType, e.Status} {
		binary.LittleEndian.PutUint16(p[i:], uint16(len(s)))
		i += 2 + copy(p[i+2:], s)
	}
	binary.LittleEndian.PutUint32(p, uint32(i-4))
	return b[:start+i], nil
}

// recordKey returns the kind byte and key of an encoded record body (the
// bytes after the length prefix): the sort key.
func recordKey(body []byte) (byte, []byte) {
	n := int(binary.LittleEndian.Uint16(body[1:3]))
	return body[0], body[3 : 3+n]
}

// compareRecords orders record bodies by kind, then key bytes (the order
// DynamoDB sorts string keys in).
func compareRecords(a, b []byte) int {
	ka, keyA := recordKey(a)
	kb, keyB := recordKey(b)
	if ka != kb {
		return int(ka) - int(kb)
	}
	return bytes.Compare(keyA, keyB)
}

// errCorruptRecord: a spill file does not decode (disk trouble).
var errCorruptRecord = errors.New("reconcile: corrupt spill record")

// decodeRecord fills e from a record body; slices point into body.
func decodeRecord(body []byte, e *Entry) error {
	kind, key := recordKey(body)
	p := body[3+len(key):]
	if len(p) < 2+9*8 {
		return errCorruptRecord
	}
	e.Kind, e.Key = Kind(kind), key
	e.Flags = Flags(binary.LittleEndian.Uint16(p))
	p = p[2:]
	e.Time = int64(binary.LittleEndian.Uint64(p[0:]))
	e.Day = int64(binary.LittleEndian.Uint64(p[8:]))
	e.Total = int64(binary.LittleEndian.Uint64(p[16:]))
	e.Payer = int64(binary.LittleEndian.Uint64(p[24:]))
	e.Settlement = int64(binary.LittleEndian.Uint64(p[32:]))
	e.Coupon = int64(binary.LittleEndian.Uint64(p[40:]))
	e.NoCash = int64(binary.LittleEndian.Uint64(p[48:]))
	e.Fee = int64(binary.LittleEndian.Uint64(p[56:]))
	e.Line = int64(binary.LittleEndian.Uint64(p[64:]))
	p = p[72:]
	for _, dst := range [...]*[]byte{&e.TxnID, &e.RefundID, &e.OrderNo, &e.TradeType, &e.Status} {
		if len(p) < 2 {
			return errCorruptRecord
		}
		l := int(binary.LittleEndian.Uint16(p))
		if len(p)-2 < l {
			return errCorruptRecord
		}
		*dst, p = p[2:2+l], p[2+l:]
	}
	return nil
}
