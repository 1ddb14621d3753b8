package e2e_test

// WeChat Pay's interface-upgrade acceptance cases for no-prepaid coupons
// (免充值, seed 000: "开通免充值产品功能及如何进行接口升级指引"), run through the
// payments routes with the simulator as WeChat Pay:
//
//   - 1003: a normal JSAPI/APP/Native payment of 5.51 yuan with a 0.01 yuan
//     no-prepaid coupon (the user pays 5.50), then the order query;
//   - 1004: refunds of such an order;
//   - 1005: the day's trade bill with the no-prepaid columns.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// noCashCoupon is the case's 0.01 yuan no-prepaid coupon.
func noCashCoupon(id string, amount int64) wxpaysim.Promotion {
	return wxpaysim.Promotion{Type: "NOCASH", Amount: amount, CouponID: id, StockID: "931386", MerchantContribute: amount}
}

// TestAcceptanceCase1003: 5.51 yuan with a 0.01 yuan NOCASH coupon, paid
// through JSAPI, APP and Native: the ledger stores payer_total 550, the
// NOCASH promotion and settlement_total 550, and the order query (stored and
// live) returns the new fields.
func TestAcceptanceCase1003(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	for _, tradeType := range []string{"JSAPI", "APP", "NATIVE"} {
		t.Run(tradeType, func(t *testing.T) {
			no := "CASE1003" + tradeType
			v := w.payPaid(t, tradeType, no, 551, noCashCoupon("C1003"+tradeType, 1))
			check := func(what string, v orderFigures) {
				t.Helper()
				want := orderFigures{status: "SUCCESS", total: 551, payerTotal: 550, settlement: 550, coupon: 1, noCash: 1,
					promos: "C1003" + tradeType + " NOCASH 1 stock 931386 merchant 1"}
				if v != want {
					t.Errorf("%s:\n got %+v\nwant %+v", what, v, want)
				}
			}
			check("stored order (GET)", figuresOfView(v))
			var row ledger.Order
			if err := w.Store.Get(ctx, ledger.OrderKey(no), &row); err != nil {
				t.Fatal(err)
			}
			check("DynamoDB row", figuresOfOrder(&row))
			if row.TransactionID == "" || row.TransactionID != v.TransactionID {
				t.Errorf("transaction_id: row %q, view %q", row.TransactionID, v.TransactionID)
			}
			live := w.payGetOrder(t, no, "?live=true")
			check("live query", figuresOfView(live))
			if live.Live == nil || live.Live.TradeState != "SUCCESS" || live.Live.Applied || len(live.Live.Differences) != 0 {
				t.Errorf("live: %+v, want SUCCESS agreeing with the ledger", live.Live)
			}
			// WeChat Pay's own query (the case's orderquery step) carries the fields too.
			var q struct {
				Amount struct {
					Total      int64 `json:"total"`
					PayerTotal int64 `json:"payer_total"`
				} `json:"amount"`
				PromotionDetail []ledger.Promotion `json:"promotion_detail"`
			}
			if _, err := w.Client.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/pay/transactions/out-trade-no/" + no,
				Query: url.Values{"mchid": {w.Merchant.MchID}}}, &q); err != nil {
				t.Fatal(err)
			}
			if q.Amount.Total != 551 || q.Amount.PayerTotal != 550 || len(q.PromotionDetail) != 1 || q.PromotionDetail[0].Type != "NOCASH" || q.PromotionDetail[0].Amount != 1 {
				t.Errorf("WeChat Pay query %+v, want 551 / 550 with the NOCASH 1 promotion", q)
			}
		})
	}
}

// orderFigures are the amounts case 1003 checks.
type orderFigures struct {
	status                                        string
	total, payerTotal, settlement, coupon, noCash int64
	promos                                        string
}

func promoText(ps []ledger.Promotion) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s %s %d stock %s merchant %d", p.CouponID, p.Type, p.Amount, p.StockID, p.MerchantContribute))
	}
	return strings.Join(s, "; ")
}

func figuresOfView(v payments.OrderView) orderFigures {
	return orderFigures{status: v.Status, total: v.Amount.Total, payerTotal: v.Amount.PayerTotal, settlement: v.SettlementTotal,
		coupon: v.CouponTotal, noCash: v.NoCashTotal, promos: promoText(v.PromotionDetail)}
}

func figuresOfOrder(o *ledger.Order) orderFigures {
	return orderFigures{status: string(o.Status), total: o.Total, payerTotal: o.PayerTotal, settlement: o.SettlementTotal,
		coupon: o.CouponTotal, noCash: o.NoCashTotal, promos: promoText(o.Promotions)}
}

// TestAcceptanceCase1004: refunds of orders paid with a coupon. For every
// refund the split predicted before WeChat Pay is asked equals the
// simulator's; every REFUND.SUCCESS is delivered twice and applied once; the
// order's refund state adds up. Rows: the case's 5.51/0.01 order refunded
// in full and in two parts, and the seed's Q6 example (100 yuan order, 10
// yuan coupon, one 50 yuan item refunded: 45 yuan back to the user).
func TestAcceptanceCase1004(t *testing.T) {
	tests := []struct {
		name           string
		total          int64
		coupon         wxpaysim.Promotion
		refunds        []int64
		wantPayer      []int64
		wantSettlement []int64
	}{
		{"1004 full refund of 5.51 with a 0.01 NOCASH coupon", 551, noCashCoupon("C1004A", 1), []int64{551}, []int64{550}, []int64{550}},
		{"1004 partial 3.00 then the rest", 551, noCashCoupon("C1004B", 1), []int64{300, 251}, []int64{299, 251}, []int64{299, 251}},
		{"seed Q6: 100 yuan order, 10 yuan coupon, refund 50 gives 45", 10000, noCashCoupon("CQ6", 1000), []int64{5000}, []int64{4500}, []int64{4500}},
		{"seed Q6 with a prepaid coupon, both items refunded", 10000, wxpaysim.Promotion{Type: "CASH", Amount: 1000, CouponID: "CQ6CASH", WechatpayContribute: 1000},
			[]int64{5000, 5000}, []int64{4500, 4500}, []int64{5000, 5000}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, stackOptions())
			ctx := context.Background()
			no := fmt.Sprintf("CASE1004%d", i)
			w.payPaid(t, "JSAPI", no, tc.total, tc.coupon)
			w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, PathPrefix: "REFUND.", Kind: wxpaysim.KindNotifyDuplicate, Count: len(tc.refunds)})
			var sumRefund, sumPayer int64
			for k, amount := range tc.refunds {
				rno := fmt.Sprintf("%sR%d", no, k)
				r, st, e := w.payRefund(t, map[string]any{"out_trade_no": no, "out_refund_no": rno, "refund": amount, "reason": "退货一件"})
				if st != http.StatusOK {
					t.Fatalf("refund %d: %d %+v", amount, st, e)
				}
				p := r.Prediction
				if p.PayerRefund != tc.wantPayer[k] || p.SettlementRefund != tc.wantSettlement[k] || p.DiscountRefund != amount-tc.wantPayer[k] {
					t.Errorf("refund %d predicted %+v, want payer_refund %d settlement_refund %d", amount, p, tc.wantPayer[k], tc.wantSettlement[k])
				}
				// The simulator's split, as WeChat Pay's refund query returns it.
				var sim struct {
					Amount struct {
						PayerRefund      int64 `json:"payer_refund"`
						DiscountRefund   int64 `json:"discount_refund"`
						SettlementRefund int64 `json:"settlement_refund"`
						SettlementTotal  int64 `json:"settlement_total"`
					} `json:"amount"`
					PromotionDetail []struct {
						PromotionID  string `json:"promotion_id"`
						Type         string `json:"type"`
						RefundAmount int64  `json:"refund_amount"`
					} `json:"promotion_detail"`
				}
				if _, err := w.Client.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/refund/domestic/refunds/" + rno}, &sim); err != nil {
					t.Fatal(err)
				}
				if sim.Amount.PayerRefund != p.PayerRefund || sim.Amount.DiscountRefund != p.DiscountRefund ||
					sim.Amount.SettlementRefund != p.SettlementRefund || sim.Amount.SettlementTotal != p.SettlementTotal {
					t.Errorf("refund %d: simulator split %+v, predicted %+v", amount, sim.Amount, p)
				}
				var simCoupon, predCoupon int64
				for _, sp := range sim.PromotionDetail {
					if sp.PromotionID != tc.coupon.CouponID || ledger.NormalizeCouponType(sp.Type) != tc.coupon.Type {
						t.Errorf("simulator promotion %+v, want %s %s", sp, tc.coupon.CouponID, tc.coupon.Type)
					}
					simCoupon += sp.RefundAmount
				}
				for _, pp := range p.PromotionDetail {
					predCoupon += pp.RefundAmount
				}
				if simCoupon != predCoupon || predCoupon != p.DiscountRefund {
					t.Errorf("refund %d: coupon refund_amount simulator %d, predicted %d (discount %d)", amount, simCoupon, predCoupon, p.DiscountRefund)
				}
				w.payEvents(t, "REFUND.SUCCESS", 2*(k+1)) // each notification twice
				g := w.payGetRefund(t, rno, "")
				if g.Status != "SUCCESS" || g.SuccessTime == "" || !g.Prediction.Checked || !g.Prediction.Matches || g.Amount.PayerRefund != tc.wantPayer[k] {
					t.Errorf("refund %s after REFUND.SUCCESS: %+v", rno, g)
				}
				sumRefund += amount
				sumPayer += tc.wantPayer[k]
			}
			// Every REFUND.SUCCESS was delivered twice and applied once.
			ids := map[string]int{}
			for _, d := range w.Sim.Deliveries() {
				if d.EventType == "REFUND.SUCCESS" {
					ids[d.NotificationID]++
				}
			}
			if len(ids) != len(tc.refunds) {
				t.Errorf("%d REFUND.SUCCESS notifications, want %d", len(ids), len(tc.refunds))
			}
			for id, n := range ids {
				got := notificationOutcomes(w, id)
				sort.Strings(got)
				if n != 2 || !slices.Equal(got, []string{"accepted", "duplicate"}) {
					t.Errorf("notification %s: %d deliveries, outcomes %v; want 2 deliveries, accepted once and a duplicate", id, n, got)
				}
			}
			v := w.payGetOrder(t, no, "")
			wantState := "PARTIAL"
			if sumRefund == tc.total {
				wantState = "FULL"
			}
			if v.Status != "REFUND" || v.Refunds == nil || v.Refunds.State != wantState || v.Refunds.Succeeded != sumRefund ||
				v.Refunds.PayerRefunded != sumPayer || v.Refunds.Refundable != tc.total-sumRefund || v.Refunds.Processing != 0 {
				t.Errorf("order after the refunds: status %s refunds %+v; want REFUND %s, succeeded %d, payer refunded %d",
					v.Status, v.Refunds, wantState, sumRefund, sumPayer)
			}
		})
	}
}

// TestAcceptanceCase1005: the day's simulated trade bill carries the 1003
// payment and the 1004 refunds with the no-prepaid columns, each matching
// the ledger (the billing function reconciles exactly these rows).
func TestAcceptanceCase1005(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	paid := w.payPaid(t, "JSAPI", "CASE1005A", 551, noCashCoupon("C1005", 1))
	cash := w.payPaid(t, "NATIVE", "CASE1005B", 10000, wxpaysim.Promotion{Type: "CASH", Amount: 1000, CouponID: "C1005CASH", WechatpayContribute: 1000})
	w.payCreate(t, payOrderBody("NATIVE", "CASE1005C", 777)) // never paid: not in the bill
	for k, amount := range []int64{300, 251} {
		if _, st, e := w.payRefund(t, map[string]any{"out_trade_no": "CASE1005A", "out_refund_no": fmt.Sprintf("CASE1005R%d", k), "refund": amount}); st != http.StatusOK {
			t.Fatalf("refund: %d %+v", st, e)
		}
	}
	w.payEvents(t, "REFUND.SUCCESS", 2)

	var refunds [2]ledger.RefundRecord
	for k := range refunds {
		if err := w.Store.Get(ctx, ledger.RefundKey(fmt.Sprintf("CASE1005R%d", k)), &refunds[k]); err != nil {
			t.Fatal(err)
		}
	}
	// Rows are dated by payment success and refund creation (Shanghai).
	rows := map[string]map[string]string{}
	days := map[string]bool{}
	for _, d := range []string{dayOf(t, paid.SuccessTime), dayOf(t, cash.SuccessTime), dayOf(t, refunds[0].CreatedAt), dayOf(t, refunds[1].CreatedAt)} {
		days[d] = true
	}
	for day := range days {
		text, err := w.Sim.TradeBill(w.Merchant.MchID, day, "ALL")
		if err != nil {
			t.Fatal(err)
		}
		header, detail := parseTradeBill(t, text)
		for _, col := range []string{"应结订单金额", "代金券金额", "充值券退款金额", "订单金额", "申请退款金额", "退款金额"} {
			if !slices.Contains(header, col) {
				t.Fatalf("bill header %v lacks the no-prepaid column %s", header, col)
			}
		}
		for _, r := range detail {
			rows[r["交易状态"]+" "+r["商户订单号"]+" "+r["商户退款单号"]] = r
		}
	}
	if len(rows) != 4 {
		t.Errorf("bill rows %v, want the two payments and the two refunds only", rows)
	}
	checkRow := func(key string, want map[string]string) {
		t.Helper()
		r, ok := rows[key]
		if !ok {
			t.Fatalf("no bill row %q in %v", key, rows)
		}
		for col, v := range want {
			if r[col] != v {
				t.Errorf("bill row %q: %s = %q, want %q", key, col, r[col], v)
			}
		}
	}
	checkRow("SUCCESS CASE1005A 0", map[string]string{"微信订单号": paid.TransactionID, "交易类型": "JSAPI", "商户号": w.Merchant.MchID,
		"应结订单金额": yuanText(paid.SettlementTotal), "代金券金额": yuanText(paid.CouponTotal), "订单金额": yuanText(paid.Amount.Total),
		"用户标识": payOpenID})
	checkRow("SUCCESS CASE1005A 0", map[string]string{"应结订单金额": "5.50", "代金券金额": "0.01", "订单金额": "5.51"})
	checkRow("SUCCESS CASE1005B 0", map[string]string{"应结订单金额": "100.00", "代金券金额": "10.00", "订单金额": "100.00"})
	for k, want := range []struct{ applied, settled string }{{"3.00", "2.99"}, {"2.51", "2.51"}} {
		r := refunds[k]
		checkRow("REFUND CASE1005A "+r.OutRefundNo, map[string]string{"微信订单号": paid.TransactionID, "微信退款单号": r.RefundID,
			"申请退款金额": yuanText(r.Refund), "退款金额": yuanText(r.SettlementRefund), "充值券退款金额": "0.00", "退款状态": "SUCCESS",
			"应结订单金额": "0.00"})
		checkRow("REFUND CASE1005A "+r.OutRefundNo, map[string]string{"申请退款金额": want.applied, "退款金额": want.settled})
	}
	// Today's bill is not generated yet: the billing pipeline fetches it
	// tomorrow after 09:00 (Shanghai).
	_, err := w.Client.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/bill/tradebill",
		Query: url.Values{"bill_date": {dayOf(t, paid.SuccessTime)}, "bill_type": {"ALL"}, "tar_type": {"GZIP"}}}, nil)
	if !wxpay.IsCode(err, "STATEMENT_CREATING") {
		t.Errorf("applying for today's bill: %v, want STATEMENT_CREATING", err)
	}
}

func dayOf(t *testing.T, rfc3339 string) string {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		t.Fatalf("time %q: %v", rfc3339, err)
	}
	return ledger.Day(tm)
}

func yuanText(fen int64) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }

// parseTradeBill splits a trade bill (wechatpay-apiv3.md 6.3) into its
// header and detail rows keyed by column, backticks stripped.
func parseTradeBill(t *testing.T, text []byte) ([]string, []map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("bill too short:\n%s", text)
	}
	header := strings.Split(lines[0], ",")
	var rows []map[string]string
	for _, l := range lines[1 : len(lines)-2] {
		vals := strings.Split(l, ",")
		if len(vals) != len(header) {
			t.Fatalf("bill row %q: %d fields for %d columns", l, len(vals), len(header))
		}
		r := map[string]string{}
		for i, v := range vals {
			if !strings.HasPrefix(v, "`") {
				t.Fatalf("bill field %q lacks the leading backtick", v)
			}
			r[header[i]] = strings.TrimSpace(strings.TrimPrefix(v, "`"))
		}
		rows = append(rows, r)
	}
	return header, rows
}
