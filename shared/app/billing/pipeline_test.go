package billing_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

func (w *world) run() (*billing.Record, error) {
	w.t.Helper()
	return w.h.Pipeline(billing.DefaultBackoff()).Run(context.Background(), w.date, "test")
}

func TestCleanDayReconcilesWithNoDifferences(t *testing.T) {
	w := newWorld(t, func(p *billing.Pipeline) { p.LedgerPageSize = 3 })
	w.cleanDay()
	w.nextMorning()
	w.calls.Reset()
	rec, err := w.run()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rec.Status != billing.StatusDone || rec.Differences != 0 {
		t.Fatalf("record %s", dump(rec))
	}
	var sum reconcile.Summary
	if err := json.Unmarshal([]byte(rec.SummaryJSON), &sum); err != nil {
		t.Fatal(err)
	}
	// 5 payments (one Pay Score AUTH), 4 refunds, matched one for one.
	if sum.Matched != 9 || sum.Bill.Charges != 5 || sum.Bill.Refunds != 4 || sum.Bill.PayScoreCharges != 1 || sum.Ledger.Charges != 5 {
		t.Fatalf("summary %s", dump(sum))
	}
	if sum.Bill.ChargeNoCash != 1200 || sum.Ledger.ChargeNoCash != 1200 || sum.Bill.ChargeCoupon != 2000 || sum.Bill.RefundTotal != 9333 {
		t.Fatalf("coupon sums: bill %+v ledger %+v", sum.Bill, sum.Ledger)
	}
	for _, id := range sum.Identities {
		if !id.OK {
			t.Fatalf("identity %+v fails", id)
		}
	}
	if sum.FundFlow == nil || sum.FundFlow.Computed.Count == 0 || sum.FundFlow.Declared != sum.FundFlow.Computed {
		t.Fatalf("fund flow %+v", sum.FundFlow)
	}
	tb := rec.TradeBill
	if tb == nil || !tb.Verified || !tb.Gzipped || !tb.NoPrepaid || tb.Rows != 9 || tb.SHA1 != tb.HashValue || tb.RawKey == "" {
		t.Fatalf("trade bill %+v", tb)
	}
	// The raw file is the download as served: it gunzips to the hashed text.
	raw := w.object(tb.RawKey)
	text, _, err := bill.Open(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	d := bill.NewDigest(text)
	if _, err := io.Copy(io.Discard, d); err != nil || d.Verify("SHA1", tb.HashValue) != nil {
		t.Fatalf("stored raw bill does not verify: %v", err)
	}
	want, _ := w.sim.TradeBill(w.env.Merchant.MchID, w.date, "ALL")
	if int64(len(want)) != tb.Bytes {
		t.Fatalf("bill bytes %d, the simulator's bill has %d", tb.Bytes, len(want))
	}
	// Reports: JSON with the summary, CSV with only a header, HTML.
	var rep struct {
		Summary     reconcile.Summary      `json:"summary"`
		Differences []reconcile.Difference `json:"differences"`
	}
	if err := json.Unmarshal(w.object(rec.Reports["json"]), &rep); err != nil || rep.Summary.Matched != 9 || len(rep.Differences) != 0 {
		t.Fatalf("report.json: %v %+v", err, rep)
	}
	rows, err := csv.NewReader(bytes.NewReader(w.object(rec.Reports["csv"]))).ReadAll()
	if err != nil || len(rows) != 1 {
		t.Fatalf("differences.csv: %v %v", err, rows)
	}
	if html := string(w.object(rec.Reports["html"])); !strings.Contains(html, "Clean: every row") || !strings.Contains(html, "<svg") {
		t.Fatal("summary.html does not report a clean day with its chart")
	}
	// The ledger was read with paged Queries only: 5 orders at 3 a page is
	// 2 pages, 1 Pay Score order 1 page, 4 refunds 2 pages; no GetItem.
	if q, g := w.calls.Count("Query"), w.calls.Count("GetItem"); q != 5 || g != 0 || rec.Ledger.Queries != 5 || rec.Ledger.Gets != 0 {
		t.Fatalf("ledger reads: %d Query, %d GetItem (stats %+v); want 5 paged Queries and no GetItem", q, g, rec.Ledger)
	}
	// The payment and Pay Score indexes were merged (ORDER-PS-1 sorts
	// between the payments' keys): every entry reached the reconciler in
	// key order and was joined as it came.
	if rec.Ledger.OutOfOrder != 0 || rec.Ledger.Items[billing.DayKindPayScore] != 1 {
		t.Fatalf("ledger stats %+v: want every entry in key order", rec.Ledger)
	}
	// Every pair was matched on its encoded values (the ledger's records
	// and the simulator's bill rows encode alike: payments with CASH and
	// NOCASH coupons, partial refunds, the Pay Score AUTH row).
	if rec.Ledger.MatchedFast != sum.Matched {
		t.Fatalf("%d of %d pairs matched by the fast join", rec.Ledger.MatchedFast, sum.Matched)
	}
	// GET answers the stored record.
	status, body := w.invoke(http.MethodGet, "/billing/reconciliations/"+w.date, w.date, "")
	if status != http.StatusOK || body["status"] != billing.StatusDone || body["summary"] == nil || body["first_differences"] != nil || body["differences"] != float64(0) {
		t.Fatalf("GET: %d %v", status, body)
	}
	// An EMF line per class, all zero.
	emf := w.emf.String()
	for _, c := range reconcile.Classes() {
		if !strings.Contains(emf, `"Class":"`+string(c)+`","Function":"billing","ReconciliationDifferences":0`) {
			t.Errorf("no zero EMF metric for class %s", c)
		}
	}
}

// TestDiscrepanciesThroughThePipeline injects discrepancies into the ledger
// (DynamoDB) or the simulator's bill and checks the pipeline's findings.
func TestDiscrepanciesThroughThePipeline(t *testing.T) {
	tests := []struct {
		name   string
		inject func(w *world)
		want   map[reconcile.Class]int
		gets   int // GetItem lookups expected
	}{
		{"order missing from the ledger", func(w *world) {
			del(w, ledger.OrderKey("ORDER-PLAIN"))
		}, map[reconcile.Class]int{reconcile.MissingInLedger: 1}, 2},
		{"ledger order WeChat never billed", func(w *world) {
			w.put(ledger.OrderKey("ORDER-GHOST"), ledger.DayIndex("PAY", w.date), "ORDER-GHOST", ledger.Order{OutTradeNo: "ORDER-GHOST",
				TransactionID: "4200009999", Status: ledger.TradeSuccess, Total: 100, PayerTotal: 100, SettlementTotal: 100,
				SuccessTime: w.date + "T13:00:00+08:00"})
		}, map[reconcile.Class]int{reconcile.MissingInBill: 1}, 0},
		{"total", func(w *world) { set(w, ledger.OrderKey("ORDER-CASH"), "total", 10001) }, map[reconcile.Class]int{reconcile.AmountTotal: 1}, 0},
		{"payer", func(w *world) { set(w, ledger.OrderKey("ORDER-NOCASH"), "payer_total", 9100) }, map[reconcile.Class]int{reconcile.AmountPayer: 1}, 0},
		{"settlement", func(w *world) { set(w, ledger.OrderKey("ORDER-BOTH"), "settlement_total", 2000) },
			map[reconcile.Class]int{reconcile.AmountSettlement: 1}, 0},
		{"coupon split", func(w *world) { set(w, ledger.OrderKey("ORDER-BOTH"), "nocash_total", 0) },
			map[reconcile.Class]int{reconcile.AmountCouponSplit: 1}, 0},
		{"refund status", func(w *world) { set(w, ledger.RefundKey("REFUND-NOCASH-1"), "status", ledger.RefundProcessing) },
			map[reconcile.Class]int{reconcile.StatusMismatch: 1}, 0},
		{"paid in WeChat, NOTPAY in the ledger", func(w *world) {
			// The notification never arrived: the order is unpaid and in no day index.
			w.put(ledger.OrderKey("ORDER-PLAIN"), "", "", ledger.Order{OutTradeNo: "ORDER-PLAIN", Status: ledger.TradeNotPay, Total: 1})
		}, map[reconcile.Class]int{reconcile.StatusMismatch: 1}, 1},
		{"cross day", func(w *world) {
			var o ledger.Order
			_ = w.env.Store.Get(context.Background(), ledger.OrderKey("ORDER-CASH"), &o)
			next := nextDay(w.date)
			w.put(ledger.OrderKey("ORDER-CASH"), ledger.DayIndex("PAY", next), "ORDER-CASH", o)
		}, map[reconcile.Class]int{reconcile.CrossDay: 1}, 1},
		{"unindexed refund", func(w *world) {
			var r ledger.RefundRecord
			_ = w.env.Store.Get(context.Background(), ledger.RefundKey("REFUND-CASH-1"), &r)
			w.put(ledger.RefundKey("REFUND-CASH-1"), "", "", r)
		}, map[reconcile.Class]int{reconcile.Unindexed: 1}, 1},
		{"transaction id", func(w *world) {
			set(w, ledger.OrderKey("ORDER-PLAIN"), "transaction_id", "4200000000000000000000000000")
		},
			map[reconcile.Class]int{reconcile.ReferenceMismatch: 1}, 0},
		{"pay score order id", func(w *world) {
			set(w, ledger.PayScoreOrderKey("ORDER-PS-1"), "order_id", "1000000000201911060000000000")
		},
			map[reconcile.Class]int{reconcile.ReferenceMismatch: 1}, 0},
		{"duplicate bill row", func(w *world) {
			must(t, w.sim.SetBillFault(wxpaysim.BillFault{Kind: wxpaysim.KindBillDuplicateRow, Bill: "tradebill"}))
		}, map[reconcile.Class]int{reconcile.Duplicate: 1}, 0},
		{"AUTH row without wxzff attach", func(w *world) {
			must(t, w.sim.SetBillFault(wxpaysim.BillFault{Kind: wxpaysim.KindBillAuthAttach, Bill: "tradebill"}))
		}, map[reconcile.Class]int{reconcile.PayScoreAttach: 1, reconcile.MissingInBill: 1}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.cleanDay()
			tc.inject(w)
			w.nextMorning()
			w.calls.Reset()
			rec, err := w.run()
			if err != nil {
				t.Fatal(err)
			}
			got := map[reconcile.Class]int{}
			for c, n := range rec.ByClass {
				if n > 0 {
					got[reconcile.Class(c)] = int(n)
				}
			}
			if !maps.Equal(got, tc.want) {
				var first []reconcile.Difference
				_ = json.Unmarshal([]byte(rec.FirstJSON), &first)
				t.Fatalf("classes %v, want %v\n%s", got, tc.want, dump(first))
			}
			if g := w.calls.Count("GetItem"); g != tc.gets {
				t.Fatalf("%d GetItem calls, want %d (lookups only for unmatched bill rows)", g, tc.gets)
			}
			rows, err := csv.NewReader(bytes.NewReader(w.object(rec.Reports["csv"]))).ReadAll()
			if err != nil || int64(len(rows)-1) != rec.Differences {
				t.Fatalf("differences.csv has %d rows for %d differences (%v)", len(rows)-1, rec.Differences, err)
			}
		})
	}
}

func del(w *world, k store.Key) {
	w.t.Helper()
	if err := w.env.Store.Delete(context.Background(), &store.Delete{Key: k, MustExist: true}); err != nil {
		w.t.Fatal(err)
	}
}

func set(w *world, k store.Key, attr string, v any) {
	w.t.Helper()
	if err := w.env.Store.Update(context.Background(), &store.Update{Key: k, Set: map[string]any{attr: v}, MustExist: true}); err != nil {
		w.t.Fatal(err)
	}
}

func nextDay(date string) string {
	d, _ := time.ParseInLocation(time.DateOnly, date, ledger.Shanghai)
	return d.AddDate(0, 0, 1).Format(time.DateOnly)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptBillsFailLoudly: every damaged download fails the run with a
// classified error, writes no reconciliation result, and keeps the raw file.
func TestCorruptBillsFailLoudly(t *testing.T) {
	tests := []struct {
		kind wxpaysim.FaultKind
		code string
		want error
	}{
		{wxpaysim.KindBillHashMismatch, "HASH_MISMATCH", bill.ErrHashMismatch},
		{wxpaysim.KindBillTruncatedGzip, "TRUNCATED", bill.ErrTruncated},
		{wxpaysim.KindBillUnknownColumn, "UNKNOWN_LAYOUT", bill.ErrLayout},
		{wxpaysim.KindBillBadAmount, "BAD_AMOUNT", bill.ErrAmount},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			w := newWorld(t)
			w.cleanDay()
			w.nextMorning()
			// A good run first: its result must survive the failed one.
			good, err := w.run()
			if err != nil {
				t.Fatal(err)
			}
			must(t, w.sim.SetBillFault(wxpaysim.BillFault{Kind: tc.kind, Bill: "tradebill"}))
			reportsBefore := w.keys("reports/")
			rec, err := w.run()
			var rj *billing.RejectedError
			if !errors.As(err, &rj) || rj.Code != tc.code || !errors.Is(err, tc.want) {
				t.Fatalf("run error %v, want a %s rejection wrapping %v", err, tc.code, tc.want)
			}
			if rec.Status != billing.StatusFailed || rec.ErrorCode != tc.code || !strings.Contains(rec.Error, rj.RawKey) {
				t.Fatalf("record %s", dump(rec))
			}
			if after := w.keys("reports/"); !slices.Equal(after, reportsBefore) {
				t.Fatalf("a failed run wrote reports: %v -> %v", reportsBefore, after)
			}
			if len(w.object(rj.RawKey)) == 0 || !strings.HasPrefix(rj.RawKey, "bills/"+w.date+"/"+rec.RunID+"/") {
				t.Fatalf("raw file %s not kept", rj.RawKey)
			}
			stored := w.record()
			if stored.Status != billing.StatusFailed || stored.ResultRunID != good.RunID || stored.Differences != 0 ||
				stored.Reports["json"] != good.Reports["json"] || stored.TradeBill == nil || stored.TradeBill.RawKey != rj.RawKey {
				t.Fatalf("stored record after the failure %s", dump(stored))
			}
			if !strings.Contains(w.emf.String(), `"Reason":"`+tc.code+`"`) {
				t.Fatalf("no BillRejected metric for %s", tc.code)
			}
			// POST answers 502 with the code and where the raw file is.
			w.clock.Advance(time.Minute)
			must(t, w.sim.SetBillFault(wxpaysim.BillFault{Kind: tc.kind, Bill: "tradebill"}))
			status, body := w.invoke(http.MethodPost, "/billing/reconciliations/"+w.date, w.date, "")
			if status != http.StatusBadGateway || body["code"] != billing.CodeBillRejected || !strings.Contains(fmt.Sprint(body["message"]), tc.code) {
				t.Fatalf("POST: %d %v", status, body)
			}
		})
	}
}

func TestNotReadyIsRetriedWithBackoff(t *testing.T) {
	w2 := newWorld(t, func(p *billing.Pipeline) {
		p.NotReady = billing.Backoff{Attempts: 4, Initial: 10 * time.Minute, Max: 40 * time.Minute}
	})
	w2.cleanDay()
	w2.at(8, 35)
	rec2, err := w2.run()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// 08:35 creating -> wait 10m -> 08:45 creating -> wait 20m -> 09:05 ready.
	if !slices.Equal(w2.sleeps, []time.Duration{10 * time.Minute, 20 * time.Minute}) || rec2.Status != billing.StatusDone || rec2.Differences != 0 {
		t.Fatalf("sleeps %v, record %s", w2.sleeps, dump(rec2))
	}
	if n := w2.billRequests("/v3/bill/tradebill"); n != 3 {
		t.Fatalf("%d trade bill applies, want 3", n)
	}
}

func TestNotReadyStaysPending(t *testing.T) {
	w := newWorld(t)
	w.cleanDay()
	w.at(7, 0)
	rec, err := w.run()
	var nr *billing.NotReadyError
	if !errors.As(err, &nr) || nr.Attempts != 4 {
		t.Fatalf("run = %v, want NotReadyError after 4 attempts", err)
	}
	// 30 s, 60 s, 120 s: bounded, doubling, capped at Max.
	if !slices.Equal(w.sleeps, []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute}) {
		t.Fatalf("sleeps %v", w.sleeps)
	}
	if rec.Status != billing.StatusPending || w.record().Status != billing.StatusPending || w.record().ErrorCode != "NOT_READY" {
		t.Fatalf("record %s", dump(w.record()))
	}
	if len(w.keys("")) != 0 {
		t.Fatalf("a pending run stored %v", w.keys(""))
	}
	// The schedule reports it as an error (Lambda retries the invocation)...
	_, err = w.h.Handle(context.Background(), billing.Event{Schedule: &billing.ScheduleInput{Job: billing.JobDailyBills, BillDate: w.date}})
	if !errors.As(err, &nr) {
		t.Fatalf("scheduled run = %v, want NotReadyError", err)
	}
	// ...and the API as 202 with a retry hint, not a failure.
	status, body := w.invoke(http.MethodPost, "/billing/reconciliations/"+w.date, w.date, "{}")
	if status != http.StatusAccepted || body["status"] != billing.StatusPending || body["retry_after_seconds"] == nil {
		t.Fatalf("POST: %d %v", status, body)
	}
	// A deadline too close for the next wait stops the waiting early.
	w.sleeps = nil
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := w.h.Pipeline(billing.DefaultBackoff()).Run(ctx, w.date, "test"); !errors.As(err, &nr) || nr.Attempts != 1 || len(w.sleeps) != 0 {
		t.Fatalf("near the deadline: %v after sleeps %v, want NotReadyError without waiting", err, w.sleeps)
	}
}

func TestNoStatementExist(t *testing.T) {
	// Nothing happened that day on either side: an empty day.
	w := newWorld(t)
	w.nextMorning()
	rec, err := w.run()
	if err != nil || rec.Status != billing.StatusEmpty || rec.Differences != 0 || !rec.TradeBill.NoStatement {
		t.Fatalf("empty day: %v %s", err, dump(rec))
	}
	// WeChat Pay has no bill but the ledger has a payment: not an empty day.
	w2 := newWorld(t)
	w2.put(ledger.OrderKey("ORDER-LOST"), ledger.DayIndex("PAY", w2.date), "ORDER-LOST", ledger.Order{OutTradeNo: "ORDER-LOST",
		TransactionID: "4200001111", Status: ledger.TradeSuccess, Total: 500, PayerTotal: 500, SettlementTotal: 500,
		SuccessTime: w2.date + "T12:00:00+08:00"})
	w2.nextMorning()
	rec, err = w2.run()
	if err != nil || rec.Status != billing.StatusDone || rec.ByClass[string(reconcile.MissingInBill)] != 1 || rec.Differences != 1 {
		t.Fatalf("ledger has a payment WeChat does not: %v %s", err, dump(rec))
	}
}

func TestExpiredLinkIsAppliedAgain(t *testing.T) {
	w := newWorld(t)
	w.cleanDay()
	w.nextMorning()
	w.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, PathPrefix: "/v3/billdownload/file", Status: http.StatusBadRequest,
		Code: "INVALID_REQUEST", Count: 1})
	rec, err := w.run()
	if err != nil || rec.Status != billing.StatusDone || rec.Differences != 0 {
		t.Fatalf("run: %v %s", err, dump(rec))
	}
	if n := w.billRequests("/v3/bill/tradebill"); n != 2 {
		t.Fatalf("%d trade bill applies, want 2 (the expired link is applied for again)", n)
	}
}

func TestOneRunPerDate(t *testing.T) {
	w := newWorld(t)
	w.cleanDay()
	w.nextMorning()
	before := w.billRequests("/v3/")
	// A run in progress holds the date.
	must(t, w.env.Store.Put(context.Background(), &store.Put{Key: billing.RunKey(w.date), Value: map[string]any{"bill_date": w.date,
		"status": billing.StatusRunning, "run_id": "other", "lease_until": ledger.WechatTime(w.clock.Now().Add(5 * time.Minute))}}))
	if _, err := w.run(); !errors.Is(err, billing.ErrRunning) {
		t.Fatalf("run = %v, want ErrRunning", err)
	}
	status, body := w.invoke(http.MethodPost, "/billing/reconciliations/"+w.date, w.date, "")
	if status != http.StatusConflict || body["code"] != billing.CodeRunInProgress {
		t.Fatalf("POST: %d %v", status, body)
	}
	if n := w.billRequests("/v3/") - before; n != 0 {
		t.Fatalf("%d WeChat requests while another run held the date", n)
	}
	// Once its lease has expired, the date can be run again.
	w.clock.Advance(6 * time.Minute)
	if rec, err := w.run(); err != nil || rec.Status != billing.StatusDone {
		t.Fatalf("after the lease: %v", err)
	}
}

func TestRoutesRejectBadInputWithoutCallingWeChat(t *testing.T) {
	w := newWorld(t)
	w.nextMorning()
	today := ledger.Day(w.clock.Now())
	old := ledger.Day(w.clock.Now().AddDate(0, -3, -2))
	tests := []struct {
		method, date, body string
		status             int
		code               string
	}{
		{http.MethodPost, "2026-02-30", "", http.StatusBadRequest, "PARAM_ERROR"},
		{http.MethodPost, "20261122", "", http.StatusBadRequest, "PARAM_ERROR"},
		{http.MethodPost, today, "", http.StatusBadRequest, "PARAM_ERROR"},
		{http.MethodPost, nextDay(today), "", http.StatusBadRequest, "PARAM_ERROR"},
		{http.MethodPost, old, "", http.StatusBadRequest, "PARAM_ERROR"},
		{http.MethodPost, w.date, `{"force":true}`, http.StatusBadRequest, "PARAM_ERROR"},
		{http.MethodPost, w.date, `{`, http.StatusBadRequest, "INVALID_REQUEST"},
		{http.MethodGet, "2026-13-01", "", http.StatusBadRequest, "PARAM_ERROR"},
		{http.MethodGet, w.date, "", http.StatusNotFound, "NOT_FOUND"},
	}
	for _, tc := range tests {
		status, body := w.invoke(tc.method, "/billing/reconciliations/"+tc.date, tc.date, tc.body)
		if status != tc.status || body["code"] != tc.code || body["message"] == "" {
			t.Errorf("%s %s %s: %d %v; want %d %s", tc.method, tc.date, tc.body, status, body, tc.status, tc.code)
		}
	}
	if n := len(w.sim.Requests()); n != 0 {
		t.Fatalf("rejected input reached WeChat Pay: %d requests", n)
	}
}

func TestNotConfigured(t *testing.T) {
	w := newWorld(t)
	h := billing.New(w.env.Deps) // no WeChat client, no bill storage
	out, err := h.Handle(context.Background(), billing.Event{Schedule: &billing.ScheduleInput{Job: billing.JobDailyBills, ScheduledTime: "2026-11-23T02:00:00Z"}})
	res, _ := out.(*billing.JobResult)
	if err != nil || res == nil || res.Status != billing.StatusNotConfigured || res.BillDate != "2026-11-22" || !strings.Contains(res.Error, "BILLS_BUCKET") {
		t.Fatalf("schedule without configuration: %+v, %v", res, err)
	}
}
