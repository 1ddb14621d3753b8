package reconcile

// Class is a kind of difference between WeChat Pay's bill and the ledger.
type Class string

// Difference classes. Every difference found belongs to exactly one.
const (
	// MissingInLedger: a bill row whose key the ledger does not know at all.
	MissingInLedger Class = "missing_in_ledger"
	// MissingInBill: a ledger entry of the day that the bill does not list.
	MissingInBill Class = "missing_in_bill"
	// AmountTotal: 订单金额 vs total (refunds: 申请退款金额 vs refund).
	AmountTotal Class = "amount_total"
	// AmountPayer: what the user paid, 订单金额 − 代金券金额 vs payer_total
	// (refunds: 退款金额 − 充值券退款金额 vs payer_refund).
	AmountPayer Class = "amount_payer"
	// AmountSettlement: 应结订单金额 vs settlement_total (refunds: 退款金额 vs
	// settlement_refund).
	AmountSettlement Class = "amount_settlement"
	// AmountCouponSplit: the coupons split differently: 代金券金额 vs
	// CASH + NOCASH, or 订单金额 − 应结订单金额 vs the NOCASH amount (the
	// seed's identities 订单金额 = 应结订单金额 + 免充值券金额 and
	// 代金券金额 = 充值券金额 + 免充值券金额); refunds: 充值券退款金额 vs the
	// CASH part of discount_refund.
	AmountCouponSplit Class = "amount_coupon_split"
	// StatusMismatch: the bill's state disagrees with the ledger's (a paid
	// row for an order the ledger still has NOTPAY, a refund SUCCESS in one
	// and PROCESSING in the other).
	StatusMismatch Class = "status_mismatch"
	// Duplicate: the same business key twice on one side (a bill row
	// repeated, or two ledger entries with one key).
	Duplicate Class = "duplicate"
	// CrossDay: the two sides file the movement under different Shanghai
	// days (paid just before midnight, recorded after).
	CrossDay Class = "cross_day"
	// ReferenceMismatch: the key matches but another identifier does not
	// (transaction_id, refund_id, the refund's out_trade_no, the Pay Score
	// order id of an AUTH row's attach, the trade type).
	ReferenceMismatch Class = "reference_mismatch"
	// PayScoreAttach: an AUTH row whose 商户数据包 is not
	// wxzff|<service order id>|<out_order_no>, so it cannot be matched.
	PayScoreAttach Class = "payscore_attach_invalid"
	// Unindexed: the ledger has the entry and agrees on its day, but it is
	// missing from the day index reconciliation reads (found by key).
	Unindexed Class = "unindexed"
	// BillIdentity: a bill row contradicts itself (应结订单金额 above 订单金额,
	// 代金券金额 below the no-prepaid part, 退款金额 above 申请退款金额...).
	BillIdentity Class = "bill_identity"
	// BillSummary: a bill's summary section disagrees with its rows.
	BillSummary Class = "bill_summary"
)

// Classes lists every class in report order.
func Classes() []Class {
	return []Class{MissingInLedger, MissingInBill, AmountTotal, AmountPayer, AmountSettlement, AmountCouponSplit, StatusMismatch,
		Duplicate, CrossDay, ReferenceMismatch, PayScoreAttach, Unindexed, BillIdentity, BillSummary}
}

// Side names where a value or a duplicate comes from.
const (
	SideBill   = "bill"
	SideLedger = "ledger"
	SideBoth   = "both"
)

// Difference is one finding. Money values in Bill and Ledger are yuan text
// ("12.34"); DeltaFen is bill − ledger in fen for amount classes.
type Difference struct {
	Class         Class  `json:"class"`
	Kind          string `json:"kind"` // charge, refund, or summary
	Key           string `json:"key"`  // out_trade_no / out_order_no / out_refund_no, or the summary column
	TransactionID string `json:"transaction_id,omitempty"`
	Side          string `json:"side"`
	Field         string `json:"field,omitempty"`
	Bill          string `json:"bill,omitempty"`
	Ledger        string `json:"ledger,omitempty"`
	DeltaFen      int64  `json:"delta_fen,omitempty"`
	Line          int64  `json:"bill_line,omitempty"`
	Detail        string `json:"detail,omitempty"`
}

// Sink receives differences as they are found.
type Sink func(Difference) error
