package reconcile

import "github.com/wxpay-serverless/wxpay-serverless/shared/bill"

// SideTotals are one side's counts and sums (fen; Fee in bill.FeeUnit).
type SideTotals struct {
	Charges          int64 `json:"charges"`
	PayScoreCharges  int64 `json:"payscore_charges"`
	ChargeTotal      int64 `json:"charge_total"`
	ChargePayer      int64 `json:"charge_payer"`
	ChargeSettlement int64 `json:"charge_settlement"`
	ChargeCoupon     int64 `json:"charge_coupon"`
	ChargeNoCash     int64 `json:"charge_nocash"`
	Refunds          int64 `json:"refunds"`
	RefundTotal      int64 `json:"refund_total"`
	RefundPayer      int64 `json:"refund_payer"`
	RefundSettlement int64 `json:"refund_settlement"`
	RefundCashCoupon int64 `json:"refund_cash_coupon"`
	RefundNoCash     int64 `json:"refund_nocash"`
	Fee              int64 `json:"fee,omitempty"`
}

// Hour is one hour of the day in the bill (Asia/Shanghai).
type Hour struct {
	Charges      int64 `json:"charges"`
	ChargeAmount int64 `json:"charge_amount"`
	Refunds      int64 `json:"refunds"`
	RefundAmount int64 `json:"refund_amount"`
}

// SummaryMismatch is a bill summary figure that disagrees with its rows.
type SummaryMismatch struct {
	Bill string `json:"bill"` // trade or fundflow
	bill.SummaryMismatch
}

// Identity is one of the seed's amount identities checked over the day's
// matched payments (seed Q7: 订单金额 = 应结订单金额 + 免充值券金额;
// 代金券金额 = 充值券金额 + 免充值券金额), with the no-prepaid and prepaid
// coupon amounts taken from the ledger's promotion detail.
type Identity struct {
	Name  string `json:"name"`
	Left  int64  `json:"left"`
	Right int64  `json:"right"`
	OK    bool   `json:"ok"`
}

// FundFlow summarises the fund-flow bill of the day (when one was read).
type FundFlow struct {
	Account  string          `json:"account"`
	Declared bill.FundTotals `json:"declared"`
	Computed bill.FundTotals `json:"computed"`
}

// Summary is the outcome of a reconciliation.
type Summary struct {
	Date              string            `json:"bill_date"`
	Bill              SideTotals        `json:"bill"`
	Ledger            SideTotals        `json:"ledger"`
	BillDeclared      *bill.TradeTotals `json:"bill_declared,omitempty"`
	Matched           int64             `json:"matched"`
	Differences       int64             `json:"differences"`
	ByClass           map[Class]int64   `json:"by_class"`
	SummaryMismatches []SummaryMismatch `json:"summary_mismatches,omitempty"`
	Identities        []Identity        `json:"identities"`
	Hourly            [24]Hour          `json:"hourly"`
	Lookups           int               `json:"lookups"`
	FundFlow          *FundFlow         `json:"fundflow,omitempty"`

	matchedCharges identitySums
}

type identitySums struct {
	billTotal, billSettlement, billCoupon, ledgerNoCash, ledgerCash int64
}

func (s *identitySums) add(b, l *Entry) {
	s.billTotal += b.Total
	s.billSettlement += b.Settlement
	s.billCoupon += b.Coupon
	s.ledgerNoCash += l.NoCash
	s.ledgerCash += l.Coupon - l.NoCash
}

func (r *Reconciler) finishIdentities() {
	m := r.sum.matchedCharges
	r.sum.Identities = []Identity{
		{Name: "订单金额 = 应结订单金额 + 免充值券金额", Left: m.billTotal, Right: m.billSettlement + m.ledgerNoCash},
		{Name: "代金券金额 = 充值券金额 + 免充值券金额", Left: m.billCoupon, Right: m.ledgerCash + m.ledgerNoCash},
	}
	for i := range r.sum.Identities {
		r.sum.Identities[i].OK = r.sum.Identities[i].Left == r.sum.Identities[i].Right
	}
}

// Clean reports whether the day reconciled without a single difference.
func (s *Summary) Clean() bool { return s.Differences == 0 }
