package ledger

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
)

// Refund calculator errors; test them with errors.Is.
var (
	// ErrRefundAmount: the refund is zero or negative.
	ErrRefundAmount = errors.New("ledger: refund amount must be positive")
	// ErrRefundExceeds: earlier refunds plus this one exceed the order total.
	ErrRefundExceeds = errors.New("ledger: refund exceeds the refundable amount")
	// ErrOrderAmounts: the order's amounts do not add up (total, payer_total
	// and promotions), so no split can be predicted.
	ErrOrderAmounts = errors.New("ledger: order amounts are inconsistent")
)

// RefundBasis is the paid transaction a refund is computed against.
type RefundBasis struct {
	Total      int64       // amount.total: the order (标价) amount
	PayerTotal int64       // amount.payer_total: what the user paid = Total - Σ promotions
	Promotions []Promotion // promotion_detail of the payment
}

// PromotionRefund is one promotion's share of a refund (the refund's
// promotion_detail entry).
type PromotionRefund struct {
	PromotionID  string `json:"promotion_id" dynamodbav:"promotion_id"`
	Scope        string `json:"scope,omitempty" dynamodbav:"scope,omitempty"`
	Type         string `json:"type" dynamodbav:"type"` // CASH or NOCASH (normalised)
	Amount       int64  `json:"amount" dynamodbav:"amount"`
	RefundAmount int64  `json:"refund_amount" dynamodbav:"refund_amount"`
}

// RefundSplit is how one refund divides between the user's cash and the
// coupons, and what it takes out of the merchant's settlement.
type RefundSplit struct {
	Refund           int64 `json:"refund"`            // requested, in order (标价) terms
	PayerRefund      int64 `json:"payer_refund"`      // cash back to the user
	DiscountRefund   int64 `json:"discount_refund"`   // coupon part = Refund - PayerRefund
	SettlementRefund int64 `json:"settlement_refund"` // Refund - NOCASH coupon part
	SettlementTotal  int64 `json:"settlement_total"`  // Total - NOCASH coupon amounts
	Total            int64 `json:"total"`
	PayerTotal       int64 `json:"payer_total"`
	// Promotions lists every promotion of the payment with its share of
	// this refund (0 when it takes none).
	Promotions []PromotionRefund `json:"promotion_detail,omitempty"`
}

// Refunded is what the earlier refunds of the same transaction took, not
// counting refunds that were closed or rejected (they returned nothing).
type Refunded struct {
	Refund      int64
	PayerRefund int64
	Promotions  map[string]int64 // refund_amount so far, by promotion (coupon) id
}

// Add accumulates one earlier refund.
func (r *Refunded) Add(s RefundSplit) {
	r.Refund += s.Refund
	r.PayerRefund += s.PayerRefund
	if r.Promotions == nil {
		r.Promotions = map[string]int64{}
	}
	for _, p := range s.Promotions {
		r.Promotions[p.PromotionID] += p.RefundAmount
	}
}

// SplitRefund predicts how WeChat Pay splits a refund of an order paid with
// coupons (wechatpay-apiv3.md 5.3; the seed's Q6): the refund is requested in
// order terms and the user gets it back in the proportion they paid,
//
//	payer_refund = refund × payer_total / total
//
// e.g. a 100 yuan order with a 10 yuan coupon refunds 45 yuan of a 50 yuan
// item. The coupon part (discount_refund) goes back to the promotions in
// proportion to their amounts; settlement_refund is the refund less the
// no-prepaid (NOCASH) coupon part, because that part never reached the
// merchant's settlement.
//
// Rounding (WeChat does not document it; UNCONFIRMED): the payer share is
// computed on the running total of refunds and rounded to the nearest fen
// (half up), and each refund gets the difference from the previous running
// share. Nearest-fen is the unbiased reading of "refund × paid/total"; doing
// it on the running total makes partial refunds add up exactly: refunding the
// whole order in any number of pieces returns exactly payer_total to the user
// and exactly each coupon's amount to it, never a fen more or less, and
// every refund's discount_refund stays within 0..refund. The coupon part is
// split across promotions by largest remainder (ties to the earlier
// promotion), capped by what each promotion still has unrefunded.
func SplitRefund(b RefundBasis, refund int64, prior Refunded) (RefundSplit, error) {
	if refund <= 0 {
		return RefundSplit{}, fmt.Errorf("%w: %d", ErrRefundAmount, refund)
	}
	if b.Total <= 0 {
		return RefundSplit{}, fmt.Errorf("%w: total %d", ErrOrderAmounts, b.Total)
	}
	var couponSum, noCashSum int64
	seen := map[string]bool{}
	for _, p := range b.Promotions {
		if p.Amount < 0 {
			return RefundSplit{}, fmt.Errorf("%w: promotion %s amount %d", ErrOrderAmounts, p.CouponID, p.Amount)
		}
		if seen[p.CouponID] {
			return RefundSplit{}, fmt.Errorf("%w: promotion %s listed twice", ErrOrderAmounts, p.CouponID)
		}
		seen[p.CouponID] = true
		couponSum += p.Amount
		if NormalizeCouponType(p.Type) == CouponNoCash {
			noCashSum += p.Amount
		}
	}
	if b.PayerTotal < 0 || b.PayerTotal+couponSum != b.Total {
		return RefundSplit{}, fmt.Errorf("%w: total %d != payer_total %d + promotions %d", ErrOrderAmounts, b.Total, b.PayerTotal, couponSum)
	}
	if prior.Refund < 0 || prior.PayerRefund < 0 || prior.PayerRefund > b.PayerTotal {
		return RefundSplit{}, fmt.Errorf("%w: earlier refunds %d (payer %d)", ErrOrderAmounts, prior.Refund, prior.PayerRefund)
	}
	if prior.Refund+refund > b.Total {
		return RefundSplit{}, fmt.Errorf("%w: %d requested, %d of %d already refunded", ErrRefundExceeds, refund, prior.Refund, b.Total)
	}

	// Payer share on the running total, nearest fen, then the difference.
	payer := mulDivRound(prior.Refund+refund, b.PayerTotal, b.Total) - prior.PayerRefund
	payer = max(0, min(payer, refund, b.PayerTotal-prior.PayerRefund))
	discount := refund - payer
	// What the coupons still have unrefunded bounds their part; the user's
	// cash takes the rest (only reachable when earlier refunds deviated).
	caps := make([]int64, len(b.Promotions))
	var room int64
	for i, p := range b.Promotions {
		caps[i] = max(0, p.Amount-prior.Promotions[p.CouponID])
		room += caps[i]
	}
	if discount > room {
		payer += discount - room
		discount = room
	}
	if payer > b.PayerTotal-prior.PayerRefund {
		return RefundSplit{}, fmt.Errorf("%w: nothing left to refund to the user or the coupons", ErrOrderAmounts)
	}

	shares := allocate(discount, b.Promotions, caps, couponSum)
	s := RefundSplit{Refund: refund, PayerRefund: payer, DiscountRefund: discount, Total: b.Total, PayerTotal: b.PayerTotal,
		SettlementTotal: b.Total - noCashSum}
	var noCashRefund int64
	for i, p := range b.Promotions {
		t := NormalizeCouponType(p.Type)
		if t == CouponNoCash {
			noCashRefund += shares[i]
		}
		s.Promotions = append(s.Promotions, PromotionRefund{PromotionID: p.CouponID, Scope: p.Scope, Type: t, Amount: p.Amount, RefundAmount: shares[i]})
	}
	s.SettlementRefund = refund - noCashRefund
	return s, nil
}

// allocate splits amount across promotions in proportion to their amounts
// (largest remainder, ties to the earlier one), never above caps.
func allocate(amount int64, promos []Promotion, caps []int64, weightSum int64) []int64 {
	out := make([]int64, len(promos))
	if amount == 0 || weightSum == 0 {
		return out
	}
	type rem struct {
		i    int
		frac *big.Int
	}
	rems := make([]rem, 0, len(promos))
	left := amount
	for i, p := range promos {
		q, r := new(big.Int).QuoRem(new(big.Int).Mul(big.NewInt(amount), big.NewInt(p.Amount)), big.NewInt(weightSum), new(big.Int))
		out[i] = min(q.Int64(), caps[i])
		left -= out[i]
		rems = append(rems, rem{i, r})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].frac.Cmp(rems[b].frac) > 0 })
	for left > 0 {
		moved := false
		for _, r := range rems {
			if left == 0 {
				break
			}
			if out[r.i] < caps[r.i] {
				out[r.i]++
				left--
				moved = true
			}
		}
		if !moved {
			break // caps exhausted; the caller sized amount to fit
		}
	}
	return out
}

// mulDivRound is a×b/c rounded to the nearest integer, halves up, for
// non-negative a, b and positive c, exact for any int64 inputs.
func mulDivRound(a, b, c int64) int64 {
	n := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	n.Mul(n, big.NewInt(2)).Add(n, big.NewInt(c))
	return n.Quo(n, big.NewInt(2*c)).Int64()
}

// RefundDifferences compares WeChat Pay's split of a refund with the
// prediction and describes every difference; nil means they agree. Promotion types are compared after normalisation
// (COUPON/DISCOUNT vs CASH/NOCASH).
func RefundDifferences(predicted, actual RefundSplit) []string {
	var d []string
	cmp := func(name string, p, a int64) {
		if p != a {
			d = append(d, fmt.Sprintf("%s: predicted %d, WeChat Pay %d", name, p, a))
		}
	}
	cmp("refund", predicted.Refund, actual.Refund)
	cmp("payer_refund", predicted.PayerRefund, actual.PayerRefund)
	cmp("discount_refund", predicted.DiscountRefund, actual.DiscountRefund)
	cmp("settlement_refund", predicted.SettlementRefund, actual.SettlementRefund)
	if len(actual.Promotions) == 0 {
		return d // WeChat's answer carried no promotion detail to compare
	}
	got := map[string]PromotionRefund{}
	for _, p := range actual.Promotions {
		got[p.PromotionID] = p
	}
	for _, p := range predicted.Promotions {
		a, ok := got[p.PromotionID]
		switch {
		case !ok && p.RefundAmount != 0:
			d = append(d, fmt.Sprintf("promotion %s: predicted refund_amount %d, WeChat Pay has no entry", p.PromotionID, p.RefundAmount))
		case ok && a.RefundAmount != p.RefundAmount:
			d = append(d, fmt.Sprintf("promotion %s: predicted refund_amount %d, WeChat Pay %d", p.PromotionID, p.RefundAmount, a.RefundAmount))
		case ok && NormalizeCouponType(a.Type) != p.Type:
			d = append(d, fmt.Sprintf("promotion %s: type %s, WeChat Pay %s", p.PromotionID, p.Type, a.Type))
		}
		delete(got, p.PromotionID)
	}
	ids := make([]string, 0, len(got))
	for id := range got {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if got[id].RefundAmount != 0 {
			d = append(d, fmt.Sprintf("promotion %s: WeChat Pay refunded %d, not predicted", id, got[id].RefundAmount))
		}
	}
	return d
}
