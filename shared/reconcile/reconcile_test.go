package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill/billtest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
)

const date = "2026-11-22"

func at(clock string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, date+" "+clock, ledger.Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

// day is one side-by-side fixture: the bill rows, the ledger rows of the
// day index, the ledger rows only findable by key, and a summary override.
type day struct {
	rows     []billtest.Row
	orders   []ledger.Order
	refunds  []ledger.RefundRecord
	payscore []ledger.PayScoreOrder
	// byKey holds ledger entries outside the day index (for Lookup).
	byKey   map[string]reconcile.Entry
	summary *billtest.Totals
	layout  billtest.Layout
}

// cleanDay: CASH and NOCASH coupon payments, partial refunds with both
// coupon kinds, a Pay Score deduction (AUTH) and a Pay Score order the user
// paid actively (JSAPI, 商户订单号 = out_order_no).
func cleanDay() *day {
	d := &day{byKey: map[string]reconcile.Entry{}}
	pay := func(no, txn, tt, clock string, total int64, promos ...ledger.Promotion) {
		coupon, noCash, settlement := ledger.Settlement(total, promos)
		d.orders = append(d.orders, ledger.Order{OutTradeNo: no, TransactionID: txn, TradeType: tt, Status: ledger.TradeSuccess, Total: total,
			PayerTotal: total - coupon, SettlementTotal: settlement, CouponTotal: coupon, NoCashTotal: noCash, Promotions: promos,
			SuccessTime: ledger.WechatTime(at(clock))})
		d.rows = append(d.rows, billtest.Row{Time: at(clock), AppID: "wx8888888888888888", MchID: "1900000109", TransactionID: txn,
			OutTradeNo: no, OpenID: "o-user", TradeType: tt, State: "SUCCESS", BankType: "OTHERS", Settlement: settlement, Coupon: coupon,
			Total: total, Description: "商品", Fee: settlement * 6})
	}
	pay("O1", "4200000001", "JSAPI", "09:00:00", 10000, ledger.Promotion{CouponID: "C1", Type: "CASH", Amount: 500})
	pay("O2", "4200000002", "NATIVE", "10:30:00", 10000, ledger.Promotion{CouponID: "C2", Type: "NOCASH", Amount: 1000})
	pay("O3", "4200000003", "APP", "12:00:00", 2000, ledger.Promotion{CouponID: "C3", Type: "CASH", Amount: 300},
		ledger.Promotion{CouponID: "C4", Type: "NOCASH", Amount: 200})
	pay("O4", "4200000004", "MWEB", "23:40:00", 1)
	refund := func(no, id, order, txn, clock string, refund, payer, discount, settlement int64) {
		d.refunds = append(d.refunds, ledger.RefundRecord{OutRefundNo: no, RefundID: id, OutTradeNo: order, OrderKind: ledger.KindOrder,
			TransactionID: txn, Status: ledger.RefundSuccess, Refund: refund, PayerRefund: payer, DiscountRefund: discount,
			SettlementRefund: settlement, CreateTime: ledger.WechatTime(at(clock))})
		noCash := refund - settlement
		d.rows = append(d.rows, billtest.Row{Time: at(clock), AppID: "wx8888888888888888", MchID: "1900000109", TransactionID: txn,
			OutTradeNo: order, TradeType: "JSAPI", State: "REFUND", RefundID: id, OutRefundNo: no, RefundAmount: settlement,
			CashRefund: discount - noCash, RefundReq: refund, RefundStatus: "SUCCESS", Fee: -settlement * 6})
	}
	// 50.00 of O2 (10.00 no-prepaid coupon): 45.00 to the user, 5.00 back to the NOCASH coupon.
	refund("R1", "5000001", "O2", "4200000002", "15:00:00", 5000, 4500, 500, 4500)
	// 10.00 of O3: 7.50 to the user, 1.50 CASH + 1.00 NOCASH coupon.
	refund("R2", "5000002", "O3", "4200000003", "16:00:00", 1000, 750, 250, 900)
	// Pay Score: an automatic deduction (AUTH, WeChat's out_trade_no, attach)...
	d.payscore = append(d.payscore, ledger.PayScoreOrder{OutOrderNo: "PSO1", OrderID: "1000000000201911061234567890", State: ledger.PayScoreDone,
		StateDescription: ledger.PayScoreUserPaid, TotalAmount: 3000, PaidAmount: 3000, TransactionID: "4200000101", PaidTime: "20261122180000"})
	d.rows = append(d.rows, billtest.Row{Time: at("18:00:00"), MchID: "1900000109", TransactionID: "4200000101", OutTradeNo: "1000202611220000000001",
		TradeType: "AUTH", State: "SUCCESS", Settlement: 3000, Total: 3000, Attach: "wxzff|1000000000201911061234567890|PSO1", Fee: 18000})
	// ...and an order the user paid actively (JSAPI, 商户订单号 = out_order_no).
	d.payscore = append(d.payscore, ledger.PayScoreOrder{OutOrderNo: "PSO2", OrderID: "1000000000201911069999999999", State: ledger.PayScoreDone,
		StateDescription: ledger.PayScoreUserPaid, TotalAmount: 2500, PaidAmount: 2500, TransactionID: "4200000102", PaidTime: "20261122190000"})
	d.rows = append(d.rows, billtest.Row{Time: at("19:00:00"), MchID: "1900000109", TransactionID: "4200000102", OutTradeNo: "PSO2",
		TradeType: "JSAPI", State: "SUCCESS", Settlement: 2500, Total: 2500, Fee: 15000})
	return d
}

type lookupMap map[string]reconcile.Entry

func (m lookupMap) Find(_ context.Context, kind reconcile.Kind, key string) (*reconcile.Entry, bool, error) {
	e, ok := m[kind.String()+"/"+key]
	if !ok {
		return nil, false, nil
	}
	return &e, true, nil
}

type result struct {
	sum       *reconcile.Summary
	diffs     []reconcile.Difference
	fastJoins int64 // pairs matched by the live join's fast path
}

func (r result) classes() map[reconcile.Class]int {
	out := map[reconcile.Class]int{}
	for _, d := range r.diffs {
		out[d.Class]++
	}
	return out
}

// run reconciles d and returns the findings. It runs the day twice, with
// the live join's fast path and without it, and fails unless both give the
// same differences and summary: every test of a finding is also a test
// that the fast path changes nothing.
func run(t *testing.T, d *day, chunkBytes int) result {
	t.Helper()
	res := runOnce(t, d, chunkBytes, true)
	slow := runOnce(t, d, chunkBytes, false)
	if !reflect.DeepEqual(res.diffs, slow.diffs) || !reflect.DeepEqual(res.sum, slow.sum) {
		t.Fatalf("the fast path changes the findings:\nfast %+v\n%+v\nslow %+v\n%+v", res.diffs, res.sum, slow.diffs, slow.sum)
	}
	return res
}

func runOnce(t *testing.T, d *day, chunkBytes int, fast bool) result {
	t.Helper()
	dayNo, _ := bill.DayOf(date)
	var res result
	rec, err := reconcile.New(reconcile.Options{Date: date, Lookup: lookupMap(d.byKey), TempDir: t.TempDir(), ChunkBytes: chunkBytes,
		Sink: func(x reconcile.Difference) error { res.diffs = append(res.diffs, x); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if !fast {
		reconcile.DisableFastJoin(rec)
	}
	var b bytes.Buffer
	w := billtest.NewWriter(&b, d.layout, true)
	for _, r := range d.rows {
		_ = w.Write(r)
	}
	if d.summary != nil {
		_ = w.CloseWith(*d.summary)
	} else {
		_ = w.Close()
	}
	br, err := bill.NewReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	for {
		row, err := br.NextTrade()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.AddBillRow(row); err != nil {
			t.Fatal(err)
		}
	}
	decl, _ := br.TradeTotals()
	rec.BillSummary("trade", &decl, br.SummaryMismatches())
	for i := range d.orders {
		e := reconcile.OrderEntry(&d.orders[i], dayNo)
		must(t, rec.AddLedger(&e))
	}
	for i := range d.refunds {
		e := reconcile.RefundEntry(&d.refunds[i], dayNo)
		must(t, rec.AddLedger(&e))
	}
	for i := range d.payscore {
		e, err := reconcile.PayScoreEntry(&d.payscore[i], dayNo)
		must(t, err)
		must(t, rec.AddLedger(&e))
	}
	res.sum, err = rec.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res.fastJoins = rec.MatchedFast()
	return res
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCleanDayHasNoDifferences(t *testing.T) {
	for _, chunk := range []int{0, 200} { // in memory, and spilled to many runs
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			res := run(t, cleanDay(), chunk)
			if len(res.diffs) != 0 || res.sum.Differences != 0 || !res.sum.Clean() {
				t.Fatalf("clean day: %d differences: %+v", len(res.diffs), res.diffs)
			}
			s := res.sum
			if s.Matched != 8 || s.Bill.Charges != 6 || s.Bill.Refunds != 2 || s.Bill.PayScoreCharges != 1 || s.Ledger.PayScoreCharges != 2 {
				t.Fatalf("summary %+v", s)
			}
			// The fast path matches the pairs that need no report of
			// their own; the rest take the general path.
			if res.fastJoins < 4 || res.fastJoins > s.Matched {
				t.Fatalf("%d of %d pairs matched by the fast path", res.fastJoins, s.Matched)
			}
			// Bill and ledger sums agree field by field.
			want := reconcile.SideTotals{Charges: 6, ChargeTotal: 10000 + 10000 + 2000 + 1 + 3000 + 2500, ChargeCoupon: 500 + 1000 + 500,
				ChargeNoCash: 1000 + 200, Refunds: 2, RefundTotal: 6000, RefundSettlement: 5400, RefundCashCoupon: 150, RefundNoCash: 600, RefundPayer: 5250}
			want.ChargeSettlement = want.ChargeTotal - want.ChargeNoCash
			want.ChargePayer = want.ChargeTotal - want.ChargeCoupon
			got := s.Bill
			got.Fee, got.PayScoreCharges = 0, 0
			if got != want {
				t.Fatalf("bill totals\n got %+v\nwant %+v", got, want)
			}
			led := s.Ledger
			led.PayScoreCharges = 0
			if led != want {
				t.Fatalf("ledger totals\n got %+v\nwant %+v", led, want)
			}
			for _, id := range s.Identities {
				if !id.OK {
					t.Fatalf("identity %+v fails on the clean day", id)
				}
			}
			if s.Hourly[10].Charges != 1 || s.Hourly[10].ChargeAmount != 10000 || s.Hourly[15].Refunds != 1 || s.Hourly[15].RefundAmount != 5000 {
				t.Fatalf("hourly %+v", s.Hourly)
			}
		})
	}
}

// TestEachClassIsFound injects one discrepancy per class into the clean day
// and checks it is found and classified, and that nothing else is reported
// (the only extra finding allowed is the one the injection implies, listed).
func TestEachClassIsFound(t *testing.T) {
	dayNo, _ := bill.DayOf(date)
	tests := []struct {
		class  reconcile.Class
		inject func(d *day)
		want   map[reconcile.Class]int
		key    string
	}{
		{reconcile.MissingInLedger, func(d *day) { d.orders = slices.Delete(d.orders, 0, 1) }, nil, "O1"},
		{reconcile.MissingInBill, func(d *day) {
			d.orders = append(d.orders, ledger.Order{OutTradeNo: "O9", TransactionID: "4200000009", Status: ledger.TradeSuccess, Total: 700,
				PayerTotal: 700, SettlementTotal: 700, SuccessTime: ledger.WechatTime(at("13:00:00"))})
		}, nil, "O9"},
		{reconcile.AmountTotal, func(d *day) { d.orders[0].Total++ }, nil, "O1"},
		{reconcile.AmountPayer, func(d *day) { d.orders[1].PayerTotal -= 100 }, nil, "O2"},
		{reconcile.AmountSettlement, func(d *day) { d.refunds[0].SettlementRefund = 5000; d.refunds[0].DiscountRefund = 0 }, nil, "R1"},
		{reconcile.AmountCouponSplit, func(d *day) { d.orders[2].NoCashTotal = 0 }, nil, "O3"},
		{reconcile.StatusMismatch, func(d *day) { d.refunds[1].Status = ledger.RefundProcessing }, nil, "R2"},
		{reconcile.Duplicate, func(d *day) { d.rows = append(d.rows, d.rows[3]) }, nil, "O4"},
		{reconcile.CrossDay, func(d *day) {
			// Paid at 23:59:59 on the 22nd, filed by the ledger under the 23rd.
			o := d.orders[0]
			d.orders = slices.Delete(d.orders, 0, 1)
			e := reconcile.OrderEntry(&o, dayNo+1)
			d.byKey["charge/O1"] = e
		}, nil, "O1"},
		{reconcile.ReferenceMismatch, func(d *day) { d.payscore[0].OrderID = "1000000000201911060000000000" }, nil, "PSO1"},
		{reconcile.PayScoreAttach, func(d *day) { d.rows[6].Attach = "wxzff|PSO1" },
			map[reconcile.Class]int{reconcile.PayScoreAttach: 1, reconcile.MissingInBill: 1}, "1000202611220000000001"},
		{reconcile.Unindexed, func(d *day) {
			r := d.refunds[0]
			d.refunds = slices.Delete(d.refunds, 0, 1)
			d.byKey["refund/R1"] = reconcile.RefundEntry(&r, dayNo)
		}, nil, "R1"},
		{reconcile.BillIdentity, func(d *day) {
			// 应结订单金额 above 订单金额, and a ledger that says the same: only
			// the bill's own contradiction is left.
			d.rows[3].Settlement, d.rows[3].Coupon = 2, 0
			d.orders[3].SettlementTotal, d.orders[3].NoCashTotal = 2, -1
		}, nil, "O4"},
		{reconcile.BillSummary, func(d *day) {
			var b bytes.Buffer
			w := billtest.NewWriter(&b, billtest.NoPrepaid, true)
			for _, r := range d.rows {
				_ = w.Write(r)
			}
			tot := w.Totals()
			tot.Total++
			d.summary = &tot
		}, nil, "订单总金额"},
	}
	seen := map[reconcile.Class]bool{}
	for _, tc := range tests {
		t.Run(string(tc.class), func(t *testing.T) {
			seen[tc.class] = true
			d := cleanDay()
			tc.inject(d)
			want := tc.want
			if want == nil {
				want = map[reconcile.Class]int{tc.class: 1}
			}
			res := run(t, d, 0)
			if got := res.classes(); !maps.Equal(got, want) {
				t.Fatalf("classes = %v, want %v; differences %+v", got, want, res.diffs)
			}
			found := false
			for _, x := range res.diffs {
				found = found || (x.Class == tc.class && x.Key == tc.key)
			}
			if !found {
				t.Fatalf("no %s difference for key %s in %+v", tc.class, tc.key, res.diffs)
			}
			if res.sum.ByClass[tc.class] != int64(want[tc.class]) {
				t.Fatalf("summary by class %v, want %d %s", res.sum.ByClass, want[tc.class], tc.class)
			}
		})
	}
	for _, c := range reconcile.Classes() {
		if !seen[c] {
			t.Errorf("class %s has no injection row", c)
		}
	}
}

func TestDifferencesCarryTheFacts(t *testing.T) {
	d := cleanDay()
	d.orders[1].SettlementTotal = 9100 // ledger thinks the NOCASH coupon was 9.00
	d.orders[1].NoCashTotal = 900
	res := run(t, d, 0)
	want := []reconcile.Difference{
		{Class: reconcile.AmountSettlement, Kind: "charge", Key: "O2", TransactionID: "4200000002", Side: "both", Field: "settlement",
			Bill: "90.00", Ledger: "91.00", DeltaFen: -100, Line: 3},
		{Class: reconcile.AmountCouponSplit, Kind: "charge", Key: "O2", TransactionID: "4200000002", Side: "both", Field: "nocash",
			Bill: "10.00", Ledger: "9.00", DeltaFen: 100, Line: 3},
	}
	if !slices.Equal(res.diffs, want) {
		t.Fatalf("differences\n got %+v\nwant %+v", res.diffs, want)
	}
}

func TestCrossDayNearMidnight(t *testing.T) {
	d := cleanDay()
	// The ledger has a payment at 23:58 the bill does not list: it belongs
	// to the next bill, not a missing row.
	d.orders = append(d.orders, ledger.Order{OutTradeNo: "O8", TransactionID: "4200000008", Status: ledger.TradeSuccess, Total: 100,
		PayerTotal: 100, SettlementTotal: 100, SuccessTime: ledger.WechatTime(at("23:58:00"))})
	// A bill row whose time is on the next day.
	next := d.rows[0]
	next.OutTradeNo, next.TransactionID, next.Time = "O7", "4200000007", at("23:59:59").Add(2*time.Second)
	d.rows = append(d.rows, next)
	o7 := d.orders[0]
	o7.OutTradeNo, o7.TransactionID, o7.SuccessTime = "O7", "4200000007", ledger.WechatTime(next.Time)
	d.orders = append(d.orders, o7)
	res := run(t, d, 0)
	if got := res.classes(); !maps.Equal(got, map[reconcile.Class]int{reconcile.CrossDay: 2}) {
		t.Fatalf("classes %v: %+v", got, res.diffs)
	}
}

func TestPayScoreDeductedInParts(t *testing.T) {
	d := cleanDay()
	// PSO1 collected as 20.00 + 10.00: two AUTH rows with their own transactions.
	first := d.rows[6]
	first.Settlement, first.Total, first.Fee = 2000, 2000, 12000
	second := first
	second.TransactionID, second.OutTradeNo, second.Settlement, second.Total, second.Fee, second.Time =
		"4200000100", "1000202611220000000000", 1000, 1000, 6000, at("17:00:00")
	d.rows[6] = first
	d.rows = append(d.rows, second)
	res := run(t, d, 0)
	if len(res.diffs) != 0 {
		t.Fatalf("a Pay Score order paid in two deductions: %+v", res.diffs)
	}
}

func TestLegacyLayoutReconciles(t *testing.T) {
	d := cleanDay()
	d.layout = billtest.Legacy
	// The legacy layout predates no-prepaid coupons: keep only CASH ones.
	d.rows, d.orders, d.refunds, d.payscore = d.rows[:1], d.orders[:1], nil, nil
	d.rows[0].Settlement = d.rows[0].Total
	res := run(t, d, 0)
	if len(res.diffs) != 0 || res.sum.Matched != 1 {
		t.Fatalf("legacy layout: matched %d, differences %+v", res.sum.Matched, res.diffs)
	}
}

// orders generates payment orders for a day, a second apart from start:
// the i-th is keyed key(i) with total 100 + i%totalMod, and of every
// notInBill-th the bill has no row, every badTotal-th bill row is 0.01
// off, every notInLedger-th order is only in the bill (0: none).
type orders struct {
	key                              func(i int) string
	txnPrefix, start                 string
	totalMod                         int
	notInBill, badTotal, notInLedger int
}

func (g orders) addTo(d *day, n int) {
	every := func(i, k int) bool { return k > 0 && i%k == 0 }
	for i := 0; i < n; i++ {
		no, total, paid := g.key(i), int64(100+i%g.totalMod), at(g.start).Add(time.Duration(i)*time.Second)
		o := ledger.Order{OutTradeNo: no, TransactionID: g.txnPrefix + no, TradeType: "JSAPI", Status: ledger.TradeSuccess, Total: total,
			PayerTotal: total, SettlementTotal: total, SuccessTime: ledger.WechatTime(paid)}
		if !every(i, g.notInBill) {
			r := billtest.Row{Time: paid, TransactionID: o.TransactionID, OutTradeNo: no, TradeType: "JSAPI", State: "SUCCESS",
				Settlement: total, Total: total}
			if every(i, g.badTotal) {
				r.Total++
				r.Settlement++
			}
			d.rows = append(d.rows, r)
		}
		if !every(i, g.notInLedger) {
			d.orders = append(d.orders, o)
		}
	}
}

// TestSpillMatchesMemory: a larger random day gives the same findings
// whether it fits in memory or is spilled to dozens of runs.
func TestSpillMatchesMemory(t *testing.T) {
	d := cleanDay()
	// Every 13th is missing from the bill, every 17th disagrees on the total.
	orders{key: func(i int) string { return fmt.Sprintf("X%05d", (i*7919)%2000) }, txnPrefix: "43", start: "08:00:00", totalMod: 977,
		notInBill: 13, badTotal: 17}.addTo(d, 2000)
	mem, disk := run(t, d, 0), run(t, d, 512)
	if !slices.Equal(mem.diffs, disk.diffs) {
		t.Fatalf("spilled run differs: %d vs %d differences", len(mem.diffs), len(disk.diffs))
	}
	if mem.classes()[reconcile.MissingInBill] != 154 || mem.classes()[reconcile.AmountTotal] == 0 {
		t.Fatalf("classes %v", mem.classes())
	}
}

// TestLedgerOrderDoesNotChangeFindings: the ledger is joined while it
// arrives when it comes in key order, and buffered when it does not; the
// findings must be the same for any order, spilled or not, including
// repeated ledger keys (of a matched key, of a key the bill lacks) that
// arrive next to their first copy or long after it.
func TestLedgerOrderDoesNotChangeFindings(t *testing.T) {
	d := cleanDay()
	// Every 11th is missing from the bill, every 19th disagrees on the
	// total, and every 23rd is only in the bill.
	orders{key: func(i int) string { return fmt.Sprintf("Y%04d", i) }, txnPrefix: "44", start: "07:00:00", totalMod: 97,
		notInBill: 11, badTotal: 19, notInLedger: 23}.addTo(d, 600)
	dayNo, _ := bill.DayOf(date)
	var entries []reconcile.Entry
	for i := range d.orders {
		entries = append(entries, reconcile.OrderEntry(&d.orders[i], dayNo))
	}
	for i := range d.refunds {
		entries = append(entries, reconcile.RefundEntry(&d.refunds[i], dayNo))
	}
	for i := range d.payscore {
		e, err := reconcile.PayScoreEntry(&d.payscore[i], dayNo)
		must(t, err)
		entries = append(entries, e)
	}
	// Repeats: of matched keys (O1, Y0001) and of keys the bill lacks
	// (Y0011, Y0022).
	for _, no := range []string{"O1", "Y0001", "Y0011", "Y0022"} {
		i := slices.IndexFunc(entries, func(e reconcile.Entry) bool { return string(e.Key) == no })
		entries = append(entries, entries[i])
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b reconcile.Entry) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		return bytes.Compare(a.Key, b.Key)
	})
	reversed := slices.Clone(sorted)
	slices.Reverse(reversed)
	shuffled := slices.Clone(sorted)
	for i := range shuffled {
		j := (i * 7919) % len(shuffled)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	// "as added": payments, refunds, then Pay Score orders (out of order,
	// as the ledger reader's indexes come), then the repeats, long after
	// their first copy; "key order": repeats right after it.
	orders := map[string][]reconcile.Entry{"as added": entries, "key order": sorted, "reversed": reversed, "shuffled": shuffled}
	key := func(x reconcile.Difference) string {
		return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%d", x.Class, x.Kind, x.Key, x.Side, x.Field, x.Bill, x.Ledger, x.DeltaFen)
	}
	var want []string
	var wantSum *reconcile.Summary
	for _, name := range []string{"key order", "as added", "reversed", "shuffled"} {
		for _, chunk := range []int{0, 700} {
			res := runLedger(t, d, chunk, orders[name])
			got := make([]string, len(res.diffs))
			for i, x := range res.diffs {
				got[i] = key(x)
			}
			slices.Sort(got)
			if want == nil {
				want, wantSum = got, res.sum
				c := res.classes()
				if c[reconcile.Duplicate] != 4 || c[reconcile.MissingInBill] == 0 || c[reconcile.MissingInLedger] == 0 || c[reconcile.AmountTotal] == 0 {
					t.Fatalf("key order: classes %v", c)
				}
				continue
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, chunk %d: %d differences, key order %d:\n%v\nwant\n%v", name, chunk, len(got), len(want), got, want)
			}
			if res.sum.Matched != wantSum.Matched || res.sum.Ledger != wantSum.Ledger || res.sum.Bill != wantSum.Bill ||
				!maps.Equal(res.sum.ByClass, wantSum.ByClass) || !slices.Equal(res.sum.Identities, wantSum.Identities) {
				t.Errorf("%s, chunk %d: summary %+v, key order %+v", name, chunk, res.sum, wantSum)
			}
		}
	}
}

// runLedger reconciles d's bill against the given ledger entries, added in
// their order.
func runLedger(t *testing.T, d *day, chunkBytes int, entries []reconcile.Entry) result {
	t.Helper()
	var res result
	rec, err := reconcile.New(reconcile.Options{Date: date, Lookup: lookupMap(d.byKey), TempDir: t.TempDir(), ChunkBytes: chunkBytes,
		Sink: func(x reconcile.Difference) error { res.diffs = append(res.diffs, x); return nil }})
	must(t, err)
	defer rec.Close()
	addBill(t, rec, billtest.Trade(d.layout, d.rows))
	for i := range entries {
		// A copy whose buffers are overwritten after the call: the
		// reconciler must not keep the caller's slices.
		e := entries[i]
		e.Key, e.TxnID = slices.Clone(e.Key), slices.Clone(e.TxnID)
		must(t, rec.AddLedger(&e))
		clear(e.Key)
		clear(e.TxnID)
	}
	if rec.LedgerEntries() != int64(len(entries)) {
		t.Fatalf("LedgerEntries %d, added %d", rec.LedgerEntries(), len(entries))
	}
	res.sum, err = rec.Finish(context.Background())
	must(t, err)
	return res
}

func TestOptionsAndEntries(t *testing.T) {
	if _, err := reconcile.New(reconcile.Options{Date: "2026-02-30"}); err == nil {
		t.Fatal("New accepted 2026-02-30")
	}
	rec, err := reconcile.New(reconcile.Options{Date: date, TempDir: t.TempDir()})
	must(t, err)
	defer rec.Close()
	if err := rec.AddLedger(&reconcile.Entry{Kind: reconcile.Charge}); err == nil {
		t.Fatal("an entry without a key was accepted")
	}
	if err := rec.AddLedger(&reconcile.Entry{Kind: reconcile.Charge, Key: []byte(strings.Repeat("k", 2000))}); err == nil {
		t.Fatal("an oversized key was accepted")
	}
	for _, tc := range []struct {
		attach       string
		order, outNo string
		ok           bool
	}{
		{"wxzff|1000|PSO1", "1000", "PSO1", true},
		{"wxzff|1000|", "", "", false},
		{"wxzff||PSO1", "", "", false},
		{"wxzff|1000|PSO1|x", "", "", false},
		{"zff|1000|PSO1", "", "", false},
	} {
		o, n, ok := reconcile.ParsePayScoreAttach([]byte(tc.attach))
		if ok != tc.ok || string(o) != tc.order || string(n) != tc.outNo {
			t.Errorf("ParsePayScoreAttach(%q) = %q, %q, %v; want %q, %q, %v", tc.attach, o, n, ok, tc.order, tc.outNo, tc.ok)
		}
	}
}

func TestNoLedgerValidatesTheBillAlone(t *testing.T) {
	d := cleanDay()
	d.rows = append(d.rows, d.rows[0])            // a duplicate
	d.rows[3].Settlement, d.rows[3].Coupon = 2, 0 // 应结订单金额 above 订单金额
	d.orders, d.refunds, d.payscore = nil, nil, nil
	rec, err := reconcile.New(reconcile.Options{Date: date, NoLedger: true, TempDir: t.TempDir()})
	must(t, err)
	defer rec.Close()
	addBill(t, rec, billtest.Trade(billtest.NoPrepaid, d.rows))
	sum, err := rec.Finish(context.Background())
	must(t, err)
	want := map[reconcile.Class]int64{reconcile.Duplicate: 1, reconcile.BillIdentity: 1}
	if !maps.Equal(sum.ByClass, want) || sum.Matched != 0 || sum.Bill.Charges != 7 {
		t.Fatalf("bill-only validation: %v, matched %d, bill %+v", sum.ByClass, sum.Matched, sum.Bill)
	}
}

// addBill adds every row of a trade bill's text to rec.
func addBill(t *testing.T, rec *reconcile.Reconciler, text []byte) {
	t.Helper()
	br, err := bill.NewReader(bytes.NewReader(text))
	must(t, err)
	for {
		row, err := br.NextTrade()
		if err == io.EOF {
			return
		}
		must(t, err)
		must(t, rec.AddBillRow(row))
	}
}
