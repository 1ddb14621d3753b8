package ledger_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

func promo(id, typ string, amount int64) ledger.Promotion {
	return ledger.Promotion{CouponID: id, Type: typ, Amount: amount}
}

func TestSplitRefund(t *testing.T) {
	tests := []struct {
		name   string
		basis  ledger.RefundBasis
		prior  []int64 // earlier refunds, predicted in sequence
		refund int64
		want   ledger.RefundSplit // Promotions compared as refund amounts below
		promos []int64            // want refund_amount per promotion
	}{
		{
			name:   "seed Q6: 100 yuan order, 10 yuan coupon, refund one 50 yuan item gives 45 back",
			basis:  ledger.RefundBasis{Total: 10000, PayerTotal: 9000, Promotions: []ledger.Promotion{promo("c1", "NOCASH", 1000)}},
			refund: 5000,
			want:   ledger.RefundSplit{Refund: 5000, PayerRefund: 4500, DiscountRefund: 500, SettlementRefund: 4500, SettlementTotal: 9000},
			promos: []int64{500},
		},
		{
			name:   "seed Q6 with a prepaid coupon: same cash back, settlement keeps the coupon part",
			basis:  ledger.RefundBasis{Total: 10000, PayerTotal: 9000, Promotions: []ledger.Promotion{promo("c1", "CASH", 1000)}},
			refund: 5000,
			want:   ledger.RefundSplit{Refund: 5000, PayerRefund: 4500, DiscountRefund: 500, SettlementRefund: 5000, SettlementTotal: 10000},
			promos: []int64{500},
		},
		{
			name:   "case 1004 full refund of 5.51 with a 0.01 NOCASH coupon",
			basis:  ledger.RefundBasis{Total: 551, PayerTotal: 550, Promotions: []ledger.Promotion{promo("c1", "NOCASH", 1)}},
			refund: 551,
			want:   ledger.RefundSplit{Refund: 551, PayerRefund: 550, DiscountRefund: 1, SettlementRefund: 550, SettlementTotal: 550},
			promos: []int64{1},
		},
		{
			name:   "case 1004 partial 3.00: 300x550/551=299.46 rounds to 299, the coupon fen goes back",
			basis:  ledger.RefundBasis{Total: 551, PayerTotal: 550, Promotions: []ledger.Promotion{promo("c1", "NOCASH", 1)}},
			refund: 300,
			want:   ledger.RefundSplit{Refund: 300, PayerRefund: 299, DiscountRefund: 1, SettlementRefund: 299, SettlementTotal: 550},
			promos: []int64{1},
		},
		{
			name:   "case 1004 remainder after 3.00: all cash, the coupon is already back",
			basis:  ledger.RefundBasis{Total: 551, PayerTotal: 550, Promotions: []ledger.Promotion{promo("c1", "NOCASH", 1)}},
			prior:  []int64{300},
			refund: 251,
			want:   ledger.RefundSplit{Refund: 251, PayerRefund: 251, DiscountRefund: 0, SettlementRefund: 251, SettlementTotal: 550},
			promos: []int64{0},
		},
		{
			name:   "partial 1.00: 99.82 rounds to 100, no coupon part yet",
			basis:  ledger.RefundBasis{Total: 551, PayerTotal: 550, Promotions: []ledger.Promotion{promo("c1", "NOCASH", 1)}},
			refund: 100,
			want:   ledger.RefundSplit{Refund: 100, PayerRefund: 100, DiscountRefund: 0, SettlementRefund: 100, SettlementTotal: 550},
			promos: []int64{0},
		},
		{
			name:   "COUPON/DISCOUNT spellings are CASH/NOCASH",
			basis:  ledger.RefundBasis{Total: 1000, PayerTotal: 700, Promotions: []ledger.Promotion{promo("a", "COUPON", 100), promo("b", "DISCOUNT", 200)}},
			refund: 1000,
			want:   ledger.RefundSplit{Refund: 1000, PayerRefund: 700, DiscountRefund: 300, SettlementRefund: 800, SettlementTotal: 800},
			promos: []int64{100, 200},
		},
		{
			name:   "two coupons split by largest remainder, ties to the first",
			basis:  ledger.RefundBasis{Total: 1000, PayerTotal: 800, Promotions: []ledger.Promotion{promo("a", "NOCASH", 100), promo("b", "CASH", 100)}},
			refund: 5, // payer 4, discount 1: 0.5 each, the first gets it
			want:   ledger.RefundSplit{Refund: 5, PayerRefund: 4, DiscountRefund: 1, SettlementRefund: 4, SettlementTotal: 900},
			promos: []int64{1, 0},
		},
		{
			name:   "no promotions: everything is cash",
			basis:  ledger.RefundBasis{Total: 1000, PayerTotal: 1000},
			refund: 333,
			want:   ledger.RefundSplit{Refund: 333, PayerRefund: 333, SettlementRefund: 333, SettlementTotal: 1000},
		},
		{
			name:   "order paid entirely by a coupon",
			basis:  ledger.RefundBasis{Total: 500, PayerTotal: 0, Promotions: []ledger.Promotion{promo("a", "NOCASH", 500)}},
			refund: 200,
			want:   ledger.RefundSplit{Refund: 200, PayerRefund: 0, DiscountRefund: 200, SettlementRefund: 0, SettlementTotal: 0},
			promos: []int64{200},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var prior ledger.Refunded
			for _, p := range tc.prior {
				s, err := ledger.SplitRefund(tc.basis, p, prior)
				if err != nil {
					t.Fatalf("earlier refund %d: %v", p, err)
				}
				prior.Add(s)
			}
			got, err := ledger.SplitRefund(tc.basis, tc.refund, prior)
			if err != nil {
				t.Fatalf("SplitRefund(%+v, %d): %v", tc.basis, tc.refund, err)
			}
			tc.want.Total, tc.want.PayerTotal = tc.basis.Total, tc.basis.PayerTotal
			gotPromos := make([]int64, 0, len(got.Promotions))
			for _, p := range got.Promotions {
				gotPromos = append(gotPromos, p.RefundAmount)
			}
			cmp := got
			cmp.Promotions = nil
			if cmp.Refund != tc.want.Refund || cmp.PayerRefund != tc.want.PayerRefund || cmp.DiscountRefund != tc.want.DiscountRefund ||
				cmp.SettlementRefund != tc.want.SettlementRefund || cmp.SettlementTotal != tc.want.SettlementTotal ||
				cmp.Total != tc.want.Total || cmp.PayerTotal != tc.want.PayerTotal {
				t.Errorf("SplitRefund(%+v, refund %d after %v) =\n %+v\nwant\n %+v", tc.basis, tc.refund, tc.prior, cmp, tc.want)
			}
			if len(tc.promos) > 0 && !slices.Equal(gotPromos, tc.promos) {
				t.Errorf("promotion refund amounts = %v, want %v", gotPromos, tc.promos)
			}
		})
	}
}

func TestSplitRefundRejects(t *testing.T) {
	basis := ledger.RefundBasis{Total: 551, PayerTotal: 550, Promotions: []ledger.Promotion{promo("c1", "NOCASH", 1)}}
	tests := []struct {
		name   string
		basis  ledger.RefundBasis
		prior  ledger.Refunded
		refund int64
		want   error
	}{
		{"zero", basis, ledger.Refunded{}, 0, ledger.ErrRefundAmount},
		{"negative", basis, ledger.Refunded{}, -1, ledger.ErrRefundAmount},
		{"more than the order", basis, ledger.Refunded{}, 552, ledger.ErrRefundExceeds},
		{"more than what is left", basis, ledger.Refunded{Refund: 300, PayerRefund: 299, Promotions: map[string]int64{"c1": 1}}, 252, ledger.ErrRefundExceeds},
		{"payer_total does not add up", ledger.RefundBasis{Total: 551, PayerTotal: 551, Promotions: basis.Promotions}, ledger.Refunded{}, 1, ledger.ErrOrderAmounts},
		{"zero total", ledger.RefundBasis{}, ledger.Refunded{}, 1, ledger.ErrOrderAmounts},
		{"duplicate promotion", ledger.RefundBasis{Total: 10, PayerTotal: 8, Promotions: []ledger.Promotion{promo("a", "CASH", 1), promo("a", "CASH", 1)}}, ledger.Refunded{}, 1, ledger.ErrOrderAmounts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ledger.SplitRefund(tc.basis, tc.refund, tc.prior)
			if !errors.Is(err, tc.want) {
				t.Fatalf("SplitRefund(%+v, %d, %+v) = %+v, %v; want error %v", tc.basis, tc.refund, tc.prior, got, err, tc.want)
			}
		})
	}
}

// TestSplitRefundInPiecesAddsUp: however an order is refunded in pieces, the
// user gets back exactly payer_total, every coupon exactly its amount, the
// settlement exactly settlement_total, and no piece is ever negative.
func TestSplitRefundInPiecesAddsUp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		total := 1 + r.Int64N(100000)
		var promos []ledger.Promotion
		left := total
		for i := 0; i < r.IntN(4) && left > 0; i++ {
			a := 1 + r.Int64N(min(left, 1+total/3))
			left -= a
			promos = append(promos, promo(fmt.Sprint("p", i), []string{"CASH", "NOCASH"}[r.IntN(2)], a))
		}
		basis := ledger.RefundBasis{Total: total, PayerTotal: left, Promotions: promos}
		_, noCash, settlement := ledger.Settlement(total, promos)
		var prior ledger.Refunded
		var settled int64
		for prior.Refund < total {
			amount := 1 + r.Int64N(total-prior.Refund)
			if r.IntN(3) == 0 {
				amount = total - prior.Refund
			}
			s, err := ledger.SplitRefund(basis, amount, prior)
			if err != nil {
				t.Fatalf("basis %+v prior %+v refund %d: %v", basis, prior, amount, err)
			}
			var sum int64
			for _, p := range s.Promotions {
				if p.RefundAmount < 0 {
					t.Fatalf("basis %+v refund %d: negative promotion share %+v", basis, amount, p)
				}
				sum += p.RefundAmount
			}
			if s.PayerRefund < 0 || s.DiscountRefund < 0 || s.PayerRefund+s.DiscountRefund != amount || sum != s.DiscountRefund {
				t.Fatalf("basis %+v refund %d: split %+v does not add up (promotions %d)", basis, amount, s, sum)
			}
			settled += s.SettlementRefund
			prior.Add(s)
		}
		if prior.PayerRefund != left {
			t.Fatalf("basis %+v: payer got back %d in pieces, paid %d", basis, prior.PayerRefund, left)
		}
		for _, p := range promos {
			if prior.Promotions[p.CouponID] != p.Amount {
				t.Fatalf("basis %+v: promotion %s got back %d, amount %d", basis, p.CouponID, prior.Promotions[p.CouponID], p.Amount)
			}
		}
		if settled != settlement || settlement != total-noCash {
			t.Fatalf("basis %+v: settlement refunds add up to %d, settlement_total %d", basis, settled, settlement)
		}
	}
}

func TestRefundDifferences(t *testing.T) {
	predicted := ledger.RefundSplit{Refund: 551, PayerRefund: 550, DiscountRefund: 1, SettlementRefund: 550,
		Promotions: []ledger.PromotionRefund{{PromotionID: "c1", Type: "NOCASH", Amount: 1, RefundAmount: 1}}}
	tests := []struct {
		name   string
		actual ledger.RefundSplit
		want   int
	}{
		{"equal, DISCOUNT spelling", ledger.RefundSplit{Refund: 551, PayerRefund: 550, DiscountRefund: 1, SettlementRefund: 550,
			Promotions: []ledger.PromotionRefund{{PromotionID: "c1", Type: "DISCOUNT", Amount: 1, RefundAmount: 1}}}, 0},
		{"no promotion detail to compare", ledger.RefundSplit{Refund: 551, PayerRefund: 550, DiscountRefund: 1, SettlementRefund: 550}, 0},
		{"payer gets one fen more", ledger.RefundSplit{Refund: 551, PayerRefund: 551, DiscountRefund: 0, SettlementRefund: 551,
			Promotions: []ledger.PromotionRefund{{PromotionID: "c1", Type: "NOCASH", Amount: 1, RefundAmount: 0}}}, 4},
		{"unknown promotion refunded", ledger.RefundSplit{Refund: 551, PayerRefund: 550, DiscountRefund: 1, SettlementRefund: 550,
			Promotions: []ledger.PromotionRefund{{PromotionID: "c1", Type: "NOCASH", Amount: 1, RefundAmount: 1}, {PromotionID: "x", RefundAmount: 3}}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ledger.RefundDifferences(predicted, tc.actual)
			if len(got) != tc.want {
				t.Fatalf("RefundDifferences(%+v, %+v) = %q, want %d differences", predicted, tc.actual, got, tc.want)
			}
		})
	}
}

func TestRefundRecordDifferences(t *testing.T) {
	predicted := ledger.RefundRecord{RequestDigest: "d", Refund: 300, Total: 551, PayerTotal: 550, PredictedPayerRefund: 299,
		PredictedDiscountRefund: 1, PredictedSettlementRefund: 299,
		PredictedPromotions: []ledger.PromotionRefund{{PromotionID: "c1", Type: "NOCASH", Amount: 1, RefundAmount: 1}}}
	tests := []struct {
		name string
		edit func(r *ledger.RefundRecord)
		want int
	}{
		{"nothing from WeChat Pay yet", func(r *ledger.RefundRecord) {}, 0},
		{"answer agrees", func(r *ledger.RefundRecord) {
			r.RefundID, r.Submitted, r.PayerRefund, r.DiscountRefund, r.SettlementRefund = "50", true, 299, 1, 299
			r.PromotionRefunds = []ledger.PromotionRefund{{PromotionID: "c1", Type: "NOCASH", Amount: 1, RefundAmount: 1}}
		}, 0},
		{"answer differs", func(r *ledger.RefundRecord) {
			r.RefundID, r.Submitted, r.PayerRefund, r.DiscountRefund, r.SettlementRefund = "50", true, 300, 0, 300
		}, 3},
		{"only the notification, agreeing (no discount_refund, no settlement_refund)", func(r *ledger.RefundRecord) {
			r.RefundID, r.PayerRefund = "50", 299
		}, 0},
		{"only the notification, payer differs", func(r *ledger.RefundRecord) {
			r.RefundID, r.PayerRefund, r.SettlementRefund = "50", 300, 300
		}, 3},
		{"made outside the payments API: nothing predicted", func(r *ledger.RefundRecord) {
			r.RequestDigest, r.RefundID, r.PayerRefund = "", "50", 1
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := predicted
			tc.edit(&r)
			if got := r.Differences(); len(got) != tc.want {
				t.Fatalf("Differences() of %+v = %q, want %d", r, got, tc.want)
			}
		})
	}
}
