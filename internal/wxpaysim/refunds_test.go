package wxpaysim_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// refundAnswer is the refund JSON the tests check.
type refundAnswer struct {
	RefundID            string `json:"refund_id"`
	OutRefundNo         string `json:"out_refund_no"`
	TransactionID       string `json:"transaction_id"`
	OutTradeNo          string `json:"out_trade_no"`
	Channel             string `json:"channel"`
	UserReceivedAccount string `json:"user_received_account"`
	SuccessTime         string `json:"success_time"`
	CreateTime          string `json:"create_time"`
	Status              string `json:"status"`
	FundsAccount        string `json:"funds_account"`
	Amount              struct {
		Total            int64 `json:"total"`
		Refund           int64 `json:"refund"`
		PayerTotal       int64 `json:"payer_total"`
		PayerRefund      int64 `json:"payer_refund"`
		SettlementRefund int64 `json:"settlement_refund"`
		SettlementTotal  int64 `json:"settlement_total"`
		DiscountRefund   int64 `json:"discount_refund"`
	} `json:"amount"`
	PromotionDetail []struct {
		PromotionID  string `json:"promotion_id"`
		Type         string `json:"type"`
		Amount       int64  `json:"amount"`
		RefundAmount int64  `json:"refund_amount"`
	} `json:"promotion_detail"`
}

func decodeRefund(t *testing.T, r result) refundAnswer {
	t.Helper()
	var a refundAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("decode refund %s: %v", r.Body, err)
	}
	return a
}

// paidOrder creates a native order and pays it with promos; it returns the
// transaction id.
func (f *fixture) paidOrder(t *testing.T, no string, total int64, notifyURL string, promos ...wxpaysim.Promotion) string {
	t.Helper()
	r := f.call(t, "POST", "/v3/pay/transactions/native", mustJSON(t, prepayBody(f.m, no, total, notifyURL)), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("prepay %s: %d %s", no, r.Status, r.Body)
	}
	res, err := f.sim.PayOrder(t.Context(), wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: no, Promotions: promos})
	if err != nil {
		t.Fatalf("PayOrder(%s): %v", no, err)
	}
	return res.TransactionID
}

func refundBody(key, value, outRefundNo string, refund, total int64, notifyURL string) []byte {
	b, _ := json.Marshal(map[string]any{key: value, "out_refund_no": outRefundNo, "notify_url": notifyURL,
		"amount": map[string]any{"refund": refund, "total": total, "currency": "CNY"}})
	return b
}

// TestRefundOfNoPrepaidCouponOrder is case 1004 at the simulator: the
// 5.51 yuan order paid 5.50 with a 0.01 NOCASH coupon is refunded in two
// parts; the answers, the REFUND.SUCCESS notifications and the queries carry
// the coupon split.
func TestRefundOfNoPrepaidCouponOrder(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	txn := f.paidOrder(t, "REFUND1004A", 551, rc.URL(), wxpaysim.Promotion{Type: "NOCASH", Amount: 1, CouponID: "C1", StockID: "S1"})
	waitFor(t, "TRANSACTION.SUCCESS", func() bool { return len(rc.deliveries()) == 1 })

	steps := []struct {
		no                          string
		refund                      int64
		payer, discount, settlement int64
		couponPart                  int64
	}{
		{"R1004A1", 300, 299, 1, 299, 1}, // 300×550/551 = 299.46 → 299: the coupon fen goes back first
		{"R1004A2", 251, 251, 0, 251, 0},
	}
	for i, st := range steps {
		r := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "REFUND1004A", st.no, st.refund, 551, rc.URL()), nil)
		if r.Status != http.StatusOK || f.verify(r) != nil {
			t.Fatalf("refund %s: %d %s (signature: %v)", st.no, r.Status, r.Body, f.verify(r))
		}
		a := decodeRefund(t, r)
		if a.Status != "PROCESSING" || a.TransactionID != txn || a.OutTradeNo != "REFUND1004A" || !strings.HasPrefix(a.RefundID, "503") ||
			a.Channel != "ORIGINAL" || a.FundsAccount != "AVAILABLE" {
			t.Errorf("refund %s answer %+v, want PROCESSING for %s", st.no, a, txn)
		}
		am := a.Amount
		if am.Total != 551 || am.Refund != st.refund || am.PayerTotal != 550 || am.PayerRefund != st.payer || am.DiscountRefund != st.discount ||
			am.SettlementRefund != st.settlement || am.SettlementTotal != 550 {
			t.Errorf("refund %s amount = %+v, want refund %d payer %d discount %d settlement %d (totals 551/550/550)",
				st.no, am, st.refund, st.payer, st.discount, st.settlement)
		}
		var couponPart int64
		for _, p := range a.PromotionDetail {
			if p.PromotionID != "C1" || p.Type != "DISCOUNT" || p.Amount != 1 {
				t.Errorf("refund %s promotion %+v, want C1 DISCOUNT (the no-prepaid coupon) amount 1", st.no, p)
			}
			couponPart += p.RefundAmount
		}
		if couponPart != st.couponPart {
			t.Errorf("refund %s promotion refund_amount total %d, want %d", st.no, couponPart, st.couponPart)
		}

		waitFor(t, "REFUND.SUCCESS "+st.no, func() bool { return len(rc.deliveries()) == 2+i })
		d := rc.deliveries()[1+i]
		if d.VerifyErr != nil {
			t.Fatalf("notification: %v", d.VerifyErr)
		}
		var env struct {
			EventType string `json:"event_type"`
			Resource  struct {
				OriginalType string `json:"original_type"`
			} `json:"resource"`
		}
		_ = json.Unmarshal(d.Body, &env)
		var n map[string]any
		if err := json.Unmarshal(d.Plain, &n); err != nil {
			t.Fatal(err)
		}
		amount, _ := n["amount"].(map[string]any)
		if env.EventType != "REFUND.SUCCESS" || env.Resource.OriginalType != "refund" || n["refund_status"] != "SUCCESS" ||
			n["out_refund_no"] != st.no || n["success_time"] == "" || amount["payer_refund"] != float64(st.payer) ||
			amount["settlement_refund"] != float64(st.settlement) || amount["refund"] != float64(st.refund) {
			t.Errorf("notification %s %s = %s, want REFUND.SUCCESS with payer_refund %d settlement_refund %d", env.EventType, env.Resource.OriginalType, d.Plain, st.payer, st.settlement)
		}
		if _, has := amount["discount_refund"]; has {
			t.Errorf("REFUND.SUCCESS amount %v carries discount_refund; S6 documents none", amount)
		}

		q := f.call(t, "GET", "/v3/refund/domestic/refunds/"+st.no, nil, nil)
		qa := decodeRefund(t, q)
		if q.Status != http.StatusOK || qa.Status != "SUCCESS" || qa.SuccessTime == "" || qa.Amount.PayerRefund != st.payer || qa.RefundID != a.RefundID {
			t.Errorf("query %s: %d %+v, want SUCCESS with success_time and the same split", st.no, q.Status, qa)
		}
	}
	o := decodeTxn(t, f.call(t, "GET", "/v3/pay/transactions/out-trade-no/REFUND1004A?mchid="+f.m.MchID, nil, nil).Body)
	if o.TradeState != "REFUND" || o.Amount.PayerTotal == nil || *o.Amount.PayerTotal != 550 || len(o.PromotionDetail) != 1 {
		t.Errorf("order after refunds: %+v, want trade_state REFUND with payer_total 550 and the promotion", o)
	}
	r := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "REFUND1004A", "R1004A3", 1, 551, rc.URL()), nil)
	if r.Status != http.StatusBadRequest || r.code() != "INVALID_REQUEST" {
		t.Errorf("refund past the total: %d %s, want 400 INVALID_REQUEST", r.Status, r.Body)
	}
}

func TestRefundErrors(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	txn := f.paidOrder(t, "REFUNDERR01", 1000, rc.URL())
	if r := f.call(t, "POST", "/v3/pay/transactions/native", mustJSON(t, prepayBody(f.m, "REFUNDERR02", 1000, rc.URL())), nil); r.Status != 200 {
		t.Fatalf("prepay: %d %s", r.Status, r.Body)
	}
	first := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "REFUNDERR01", "RERR1", 100, 1000, rc.URL()), nil)
	if first.Status != http.StatusOK {
		t.Fatalf("refund: %d %s", first.Status, first.Body)
	}
	raw := func(m map[string]any) []byte { return mustJSON(t, m) }
	amount := func(refund, total int64, currency string) map[string]any {
		return map[string]any{"refund": refund, "total": total, "currency": currency}
	}
	tests := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"no order number", raw(map[string]any{"out_refund_no": "X1", "amount": amount(1, 1000, "CNY")}), 400, "PARAM_ERROR"},
		{"no out_refund_no", raw(map[string]any{"out_trade_no": "REFUNDERR01", "amount": amount(1, 1000, "CNY")}), 400, "PARAM_ERROR"},
		{"bad out_refund_no", raw(map[string]any{"out_trade_no": "REFUNDERR01", "out_refund_no": "空", "amount": amount(1, 1000, "CNY")}), 400, "PARAM_ERROR"},
		{"zero refund", refundBody("out_trade_no", "REFUNDERR01", "X2", 0, 1000, ""), 400, "PARAM_ERROR"},
		{"negative refund", refundBody("out_trade_no", "REFUNDERR01", "X3", -5, 1000, ""), 400, "PARAM_ERROR"},
		{"no total", raw(map[string]any{"out_trade_no": "REFUNDERR01", "out_refund_no": "X4", "amount": map[string]any{"refund": 1, "currency": "CNY"}}), 400, "PARAM_ERROR"},
		{"total differs from the order", refundBody("out_trade_no", "REFUNDERR01", "X5", 1, 999, ""), 400, "PARAM_ERROR"},
		{"currency", raw(map[string]any{"out_trade_no": "REFUNDERR01", "out_refund_no": "X6", "amount": amount(1, 1000, "USD")}), 400, "PARAM_ERROR"},
		{"unknown order", refundBody("out_trade_no", "NOSUCHORDER", "X7", 1, 1000, ""), 404, "RESOURCE_NOT_EXISTS"},
		{"unknown transaction", refundBody("transaction_id", "4200000000000000000000000000", "X8", 1, 1000, ""), 404, "RESOURCE_NOT_EXISTS"},
		{"unpaid order", refundBody("out_trade_no", "REFUNDERR02", "X9", 1, 1000, ""), 400, "INVALID_REQUEST"},
		{"more than refundable", refundBody("out_trade_no", "REFUNDERR01", "X10", 901, 1000, ""), 400, "INVALID_REQUEST"},
		{"out_refund_no reused with another amount", refundBody("out_trade_no", "REFUNDERR01", "RERR1", 101, 1000, rc.URL()), 400, "INVALID_REQUEST"},
		{"notify_url with a query", refundBody("out_trade_no", "REFUNDERR01", "X11", 1, 1000, "https://example.com/n?x=1"), 400, "PARAM_ERROR"},
		{"bad funds_account", raw(map[string]any{"out_trade_no": "REFUNDERR01", "out_refund_no": "X12", "funds_account": "BASIC", "amount": amount(1, 1000, "CNY")}), 400, "PARAM_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, "POST", "/v3/refund/domestic/refunds", tc.body, nil)
			if r.Status != tc.status || r.code() != tc.code {
				t.Fatalf("POST refunds %s: %d %s, want %d %s", tc.body, r.Status, r.Body, tc.status, tc.code)
			}
			if err := f.verify(r); err != nil {
				t.Errorf("error answer not signed: %v", err)
			}
		})
	}
	// The same request again is the same refund; by transaction_id too.
	again := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("transaction_id", txn, "RERR1", 100, 1000, rc.URL()), nil)
	if a, b := decodeRefund(t, first), decodeRefund(t, again); again.Status != 200 || a.RefundID != b.RefundID {
		t.Errorf("same refund again: %d %s, want 200 with refund_id %s", again.Status, again.Body, a.RefundID)
	}
	if r := f.call(t, "GET", "/v3/refund/domestic/refunds/NOSUCHREFUND", nil, nil); r.Status != 404 || r.code() != "RESOURCE_NOT_EXISTS" {
		t.Errorf("query unknown refund: %d %s, want 404 RESOURCE_NOT_EXISTS", r.Status, r.Body)
	}
}

// TestRefundOutcomes: the admin switch holds refunds, and resolving them
// sends REFUND.ABNORMAL then REFUND.CLOSED; a closed refund frees its amount.
func TestRefundOutcomes(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	f.paidOrder(t, "REFUNDOUT01", 1000, rc.URL(), wxpaysim.Promotion{Type: "CASH", Amount: 100, CouponID: "CC"})
	waitFor(t, "payment notification", func() bool { return len(rc.deliveries()) == 1 })
	if st := f.admin(t, "POST", "/sim/refunds/outcome", map[string]any{"mchid": f.m.MchID, "out_trade_no": "REFUNDOUT01", "outcome": "PROCESSING"}, nil); st != 200 {
		t.Fatalf("set outcome: %d", st)
	}
	if st := f.admin(t, "POST", "/sim/refunds/outcome", map[string]any{"mchid": f.m.MchID, "out_trade_no": "REFUNDOUT01", "outcome": "LOST"}, nil); st != 400 {
		t.Fatalf("set bogus outcome: %d, want 400", st)
	}
	r := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "REFUNDOUT01", "ROUT1", 1000, 1000, rc.URL()), nil)
	if a := decodeRefund(t, r); r.Status != 200 || a.Status != "PROCESSING" || a.Amount.PayerRefund != 900 || a.Amount.SettlementRefund != 1000 ||
		len(a.PromotionDetail) != 1 || a.PromotionDetail[0].Type != "COUPON" || a.PromotionDetail[0].RefundAmount != 100 {
		t.Fatalf("held refund: %d %+v, want PROCESSING payer 900 settlement 1000 and COUPON 100", r.Status, a)
	}
	if q := decodeRefund(t, f.call(t, "GET", "/v3/refund/domestic/refunds/ROUT1", nil, nil)); q.Status != "PROCESSING" {
		t.Errorf("held refund queried as %s, want PROCESSING", q.Status)
	}
	for _, st := range []string{"ABNORMAL", "CLOSED"} {
		var out struct {
			NotificationID string `json:"notification_id"`
		}
		if code := f.admin(t, "POST", "/sim/refunds/resolve", map[string]any{"mchid": f.m.MchID, "out_refund_no": "ROUT1", "status": st}, &out); code != 200 || out.NotificationID == "" {
			t.Fatalf("resolve %s: %d %+v", st, code, out)
		}
		if err := wait(t, f.sim, out.NotificationID); err != nil {
			t.Fatalf("REFUND.%s: %v", st, err)
		}
		last := rc.deliveries()[len(rc.deliveries())-1]
		if !strings.Contains(string(last.Body), `"event_type":"REFUND.`+st+`"`) || !strings.Contains(string(last.Plain), `"refund_status":"`+st+`"`) {
			t.Errorf("notification %s / %s, want REFUND.%s", last.Body, last.Plain, st)
		}
	}
	if _, err := f.sim.ResolveRefund(t.Context(), f.m.MchID, "ROUT1", "SUCCESS"); err == nil {
		t.Error("a CLOSED refund became SUCCESS")
	}
	if code := f.admin(t, "POST", "/sim/refunds/resolve", map[string]any{"mchid": f.m.MchID, "out_refund_no": "NOPE", "status": "SUCCESS"}, nil); code != 404 {
		t.Errorf("resolve unknown refund: %d, want 404", code)
	}
	// The closed refund gave its amount back: the whole order is refundable.
	if err := f.sim.SetRefundOutcome(f.m.MchID, "REFUNDOUT01", "SUCCESS"); err != nil {
		t.Fatal(err)
	}
	r = f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "REFUNDOUT01", "ROUT2", 1000, 1000, rc.URL()), nil)
	if a := decodeRefund(t, r); r.Status != 200 || a.Amount.PayerRefund != 900 || a.Amount.DiscountRefund != 100 {
		t.Errorf("refund after a closed one: %d %s, want 200 with payer 900 discount 100", r.Status, r.Body)
	}
}

// TestRecordedTransactionRefund: a Pay Score style transaction recorded
// outside prepay is queryable by transaction_id and refundable through it.
func TestRecordedTransactionRefund(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	var res wxpaysim.PaidTransactionResult
	if st := f.admin(t, "POST", "/sim/transactions", map[string]any{"mchid": f.m.MchID, "total": 3000, "attach": "wxzff|x|PS1"}, &res); st != 200 || res.TransactionID == "" {
		t.Fatalf("record transaction: %d %+v", st, res)
	}
	if st := f.admin(t, "POST", "/sim/transactions", map[string]any{"mchid": f.m.MchID, "total": 0}, nil); st != 400 {
		t.Errorf("record a zero transaction: %d, want 400", st)
	}
	q := decodeTxn(t, f.call(t, "GET", "/v3/pay/transactions/id/"+res.TransactionID+"?mchid="+f.m.MchID, nil, nil).Body)
	if q.TradeType != "AUTH" || q.TradeState != "SUCCESS" || q.OutTradeNo != res.OutTradeNo || q.Amount.Total != 3000 {
		t.Errorf("recorded transaction queried as %+v, want AUTH SUCCESS 3000 %s", q, res.OutTradeNo)
	}
	r := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("transaction_id", res.TransactionID, "RPS1", 1000, 3000, rc.URL()), nil)
	if a := decodeRefund(t, r); r.Status != 200 || a.OutTradeNo != res.OutTradeNo || a.Amount.PayerRefund != 1000 {
		t.Errorf("refund by transaction_id: %d %s", r.Status, r.Body)
	}
}

// TestRefundSplitMatchesPrediction: for random orders with CASH and NOCASH
// coupons refunded in random pieces, the simulator's split equals what
// ledger.SplitRefund predicts from the order and the earlier refunds.
func TestRefundSplitMatchesPrediction(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	rnd := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 25; i++ {
		total := 2 + rnd.Int64N(20000)
		var promos []wxpaysim.Promotion
		var basis ledger.RefundBasis
		left := total - 1
		for j := 0; j < rnd.IntN(4) && left > 0; j++ {
			a := 1 + rnd.Int64N(min(left, 1+total/3))
			left -= a
			p := wxpaysim.Promotion{CouponID: fmt.Sprintf("C%d_%d", i, j), Type: []string{"CASH", "NOCASH"}[rnd.IntN(2)], Amount: a}
			promos = append(promos, p)
			basis.Promotions = append(basis.Promotions, ledger.Promotion{CouponID: p.CouponID, Type: p.Type, Amount: a})
		}
		basis.Total, basis.PayerTotal = total, left+1
		no := fmt.Sprintf("SPLIT%06d", i)
		f.paidOrder(t, no, total, rc.URL(), promos...)
		var prior ledger.Refunded
		for k := 0; prior.Refund < total && k < 6; k++ {
			amount := 1 + rnd.Int64N(total-prior.Refund)
			want, err := ledger.SplitRefund(basis, amount, prior)
			if err != nil {
				t.Fatal(err)
			}
			r := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", no, fmt.Sprintf("%sR%d", no, k), amount, total, rc.URL()), nil)
			if r.Status != 200 {
				t.Fatalf("refund %d of %s: %d %s", amount, no, r.Status, r.Body)
			}
			a := decodeRefund(t, r)
			got := ledger.RefundSplit{Refund: a.Amount.Refund, PayerRefund: a.Amount.PayerRefund, DiscountRefund: a.Amount.DiscountRefund,
				SettlementRefund: a.Amount.SettlementRefund}
			for _, p := range a.PromotionDetail {
				got.Promotions = append(got.Promotions, ledger.PromotionRefund{PromotionID: p.PromotionID, Type: p.Type, Amount: p.Amount, RefundAmount: p.RefundAmount})
			}
			if d := ledger.RefundDifferences(want, got); d != nil || a.Amount.SettlementTotal != want.SettlementTotal {
				t.Fatalf("order %+v after %+v, refund %d: simulator %s differs from the prediction %+v: %q", basis, prior, amount, r.Body, want, d)
			}
			prior.Add(want)
		}
	}
}
