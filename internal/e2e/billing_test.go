package e2e_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// worldClock is the one clock of a billing world: the simulator, the
// WeChat Pay client and every handler read it, so the world can move to
// the morning after, when the day's bills exist.
type worldClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *worldClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *worldClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = time.Until(t)
}

// billWorld is a whole stack (front door, five handlers, DynamoDB Local,
// simulator, S3 fake behind the real S3 client) starting at 12:00 today,
// Asia/Shanghai.
type billWorld struct {
	*psWorld
	clock *worldClock
	date  string
}

func newBillWorld(t *testing.T) *billWorld {
	t.Helper()
	c := &worldClock{}
	now := time.Now().In(ledger.Shanghai)
	noon := time.Date(now.Year(), now.Month(), now.Day(), 12, 0, 0, 0, ledger.Shanghai)
	c.Set(noon)
	o := stackOptions()
	o.Clock = c.Now
	ps := &psWorld{world: newWorld(t, o)}
	ps.svc, ps.mch = ps.Merchant.ServiceID, ps.Merchant.MchID
	ps.setService(t, wxpaysim.PayScoreService{})
	return &billWorld{psWorld: ps, clock: c, date: noon.Format(time.DateOnly)}
}

// at moves the world to hh:mm the day after the bill date.
func (w *billWorld) at(hh, mm int) {
	d, _ := time.ParseInLocation(time.DateOnly, w.date, ledger.Shanghai)
	w.clock.Set(d.AddDate(0, 0, 1).Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute))
}

// billCall sends an admin request to the billing routes through the front door.
func (w *billWorld) billCall(t *testing.T, method, date, body string) (int, http.Header, billing.RunView, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, w.FrontURL+"/billing/reconciliations/"+date, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	token, err := w.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v billing.RunView
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %d %s", method, date, resp.StatusCode, raw)
	}
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, resp.Header, v, m
}

// cleanDay drives a day through the real handlers: payments with prepaid
// (CASH) and no-prepaid (NOCASH) coupons, partial refunds of them, and a
// Pay Score order deducted by WeChat Pay (an AUTH row in the bill).
func (w *billWorld) cleanDay(t *testing.T) {
	t.Helper()
	w.payPaid(t, "JSAPI", "E2EBILLCASH", 10000, wxpaysim.Promotion{Type: "CASH", Amount: 500})
	w.payPaid(t, "NATIVE", "E2EBILLNOCASH", 10000, noCashCoupon("E2ENC1", 1000))
	w.payPaid(t, "APP", "E2EBILLBOTH", 2000, wxpaysim.Promotion{Type: "CASH", Amount: 300}, noCashCoupon("E2ENC2", 200))
	w.payPaid(t, "NATIVE", "E2EBILLPLAIN", 1)
	refunds := [][3]any{{"E2EBILLCASH", "E2EREFCASH1", int64(3000)}, {"E2EBILLNOCASH", "E2EREFNOCASH1", int64(5000)},
		{"E2EBILLBOTH", "E2EREFBOTH1", int64(1000)}, {"E2EBILLBOTH", "E2EREFBOTH2", int64(333)}}
	for _, r := range refunds {
		if _, st, e := w.payRefund(t, map[string]any{"out_trade_no": r[0], "out_refund_no": r[1], "refund": r[2]}); st != http.StatusOK {
			t.Fatalf("refund %v: %d %+v", r, st, e)
		}
	}
	w.payEvents(t, "REFUND.SUCCESS", len(refunds))
	// Pay Score: authorize, create, complete, WeChat deducts, USER_PAID.
	w.authorize(t, "oE2EBill_1", "")
	w.create(t, "E2EPSBILL1", "oE2EBill_1")
	w.complete(t, "E2EPSBILL1", 3000, 3000)
	res, err := w.Sim.DeductPayScore(context.Background(), wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "E2EPSBILL1"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(t, res.NotificationID)
}

// morning moves to 10:00 the next day: the day's bills exist.
func (w *billWorld) morning(t *testing.T) {
	t.Helper()
	w.at(10, 0)
}

func (w *billWorld) object(t *testing.T, key string) []byte {
	t.Helper()
	b, ok := w.S3.Object(stack.BillsBucket, key)
	if !ok {
		t.Fatalf("no object %s in %v", key, w.S3.Keys(stack.BillsBucket))
	}
	return b
}

func TestBillingCleanDayEndToEnd(t *testing.T) {
	w := newBillWorld(t)
	w.cleanDay(t)
	w.morning(t)
	before := w.calls.Count("GetItem")
	status, _, v, raw := w.billCall(t, http.MethodPost, w.date, "")
	if status != http.StatusOK || v.Status != billing.StatusDone || v.Differences != 0 || raw["differences"] != float64(0) {
		t.Fatalf("POST: %d %s", status, dump(raw))
	}
	s := v.Summary
	// 4 payments + 1 Pay Score deduction, 4 refunds: all matched.
	if s == nil || s.Matched != 9 || s.Bill.Charges != 5 || s.Bill.PayScoreCharges != 1 || s.Ledger.PayScoreCharges != 1 || s.Bill.Refunds != 4 {
		t.Fatalf("summary %s", dump(s))
	}
	if s.Bill.ChargeNoCash != 1200 || s.Ledger.ChargeNoCash != 1200 || s.Bill.ChargeCoupon != 2000 || s.Ledger.ChargeCoupon != 2000 ||
		s.Bill.RefundTotal != 9333 || s.Bill.RefundSettlement != s.Ledger.RefundSettlement || s.Bill.RefundPayer != s.Ledger.RefundPayer {
		t.Fatalf("sums: bill %+v ledger %+v", s.Bill, s.Ledger)
	}
	for _, id := range s.Identities {
		if !id.OK {
			t.Fatalf("identity %+v", id)
		}
	}
	if s.FundFlow == nil || s.FundFlow.Computed.IncomeCount != 5 || s.FundFlow.Declared != s.FundFlow.Computed {
		t.Fatalf("fund flow %+v", s.FundFlow)
	}
	// The ledger was read by paged Queries on the day indexes, no GetItem.
	if g := w.calls.Count("GetItem") - before; g != 0 || v.Ledger == nil || v.Ledger.Gets != 0 || v.Ledger.Queries < 3 {
		t.Fatalf("ledger reads: %d GetItem, stats %+v", g, v.Ledger)
	}
	// The raw bill kept is the download: it gunzips to the simulator's bill.
	text, _, err := bill.Open(bytes.NewReader(w.object(t, v.TradeBill.RawKey)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(text)
	want, _ := w.Sim.TradeBill(w.mch, w.date, "ALL")
	if err != nil || !bytes.Equal(got, want) || !v.TradeBill.Verified {
		t.Fatalf("raw bill (%v) differs from the simulator's, or unverified (%+v)", err, v.TradeBill)
	}
	if !strings.Contains(string(got), "`AUTH,") || !strings.Contains(string(got), "wxzff|") {
		t.Fatal("the bill has no Pay Score AUTH row")
	}
	for _, k := range []string{"json", "csv", "html"} {
		if len(w.object(t, v.Reports[k])) == 0 {
			t.Fatalf("report %s empty", k)
		}
	}
	// GET answers the same record.
	status, _, again, _ := w.billCall(t, http.MethodGet, w.date, "")
	if status != http.StatusOK || again.RunID != v.RunID || again.Summary == nil || again.Summary.Matched != 9 {
		t.Fatalf("GET: %d %+v", status, again.Record)
	}
}

func TestBillingDiscrepanciesEndToEnd(t *testing.T) {
	tests := []struct {
		name   string
		inject func(t *testing.T, w *billWorld)
		want   map[reconcile.Class]int64
	}{
		{"ledger total edited", func(t *testing.T, w *billWorld) {
			if err := w.Store.Update(context.Background(), &store.Update{Key: ledger.OrderKey("E2EBILLCASH"), Set: map[string]any{"total": 10001},
				MustExist: true}); err != nil {
				t.Fatal(err)
			}
		}, map[reconcile.Class]int64{reconcile.AmountTotal: 1}},
		{"refund still PROCESSING in the ledger", func(t *testing.T, w *billWorld) {
			if err := w.Store.Update(context.Background(), &store.Update{Key: ledger.RefundKey("E2EREFBOTH2"), Set: map[string]any{"status": "PROCESSING"},
				MustExist: true}); err != nil {
				t.Fatal(err)
			}
		}, map[reconcile.Class]int64{reconcile.StatusMismatch: 1}},
		{"payment the ledger never heard of", func(t *testing.T, w *billWorld) {
			if err := w.Store.Delete(context.Background(), &store.Delete{Key: ledger.OrderKey("E2EBILLPLAIN"), MustExist: true}); err != nil {
				t.Fatal(err)
			}
		}, map[reconcile.Class]int64{reconcile.MissingInLedger: 1}},
		{"duplicated bill row", func(t *testing.T, w *billWorld) {
			if err := w.Sim.SetBillFault(wxpaysim.BillFault{Kind: wxpaysim.KindBillDuplicateRow, Bill: "tradebill"}); err != nil {
				t.Fatal(err)
			}
		}, map[reconcile.Class]int64{reconcile.Duplicate: 1}},
		{"AUTH row without its wxzff attach", func(t *testing.T, w *billWorld) {
			if err := w.Sim.SetBillFault(wxpaysim.BillFault{Kind: wxpaysim.KindBillAuthAttach, Bill: "tradebill"}); err != nil {
				t.Fatal(err)
			}
		}, map[reconcile.Class]int64{reconcile.PayScoreAttach: 1, reconcile.MissingInBill: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newBillWorld(t)
			w.cleanDay(t)
			w.morning(t)
			tc.inject(t, w)
			status, _, v, raw := w.billCall(t, http.MethodPost, w.date, "{}")
			got := map[reconcile.Class]int64{}
			for c, n := range v.ByClass {
				if n > 0 {
					got[reconcile.Class(c)] = n
				}
			}
			if status != http.StatusOK || !maps.Equal(got, tc.want) {
				t.Fatalf("POST: %d classes %v, want %v\n%s", status, got, tc.want, dump(raw))
			}
			rows, err := csv.NewReader(bytes.NewReader(w.object(t, v.Reports["csv"]))).ReadAll()
			if err != nil || int64(len(rows)-1) != v.Differences || len(v.FirstDiffs) == 0 {
				t.Fatalf("differences.csv: %d rows (%v), %d differences", len(rows)-1, err, v.Differences)
			}
		})
	}
}

func TestBillingCorruptBillsEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		kind wxpaysim.FaultKind
		code string
	}{
		{wxpaysim.KindBillHashMismatch, "HASH_MISMATCH"},
		{wxpaysim.KindBillTruncatedGzip, "TRUNCATED"},
		{wxpaysim.KindBillUnknownColumn, "UNKNOWN_LAYOUT"},
		{wxpaysim.KindBillBadAmount, "BAD_AMOUNT"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			w := newBillWorld(t)
			w.payPaid(t, "NATIVE", "E2EBILLONE", 100)
			w.at(10, 0)
			if err := w.Sim.SetBillFault(wxpaysim.BillFault{Kind: tc.kind, Bill: "tradebill"}); err != nil {
				t.Fatal(err)
			}
			status, _, _, raw := w.billCall(t, http.MethodPost, w.date, "")
			if status != http.StatusBadGateway || raw["code"] != billing.CodeBillRejected || !strings.Contains(raw["message"].(string), tc.code) {
				t.Fatalf("POST: %d %v", status, raw)
			}
			status, _, v, _ := w.billCall(t, http.MethodGet, w.date, "")
			if status != http.StatusOK || v.Status != billing.StatusFailed || v.ErrorCode != tc.code || v.ResultRunID != "" || v.Summary != nil ||
				v.TradeBill == nil || v.TradeBill.RawKey == "" {
				t.Fatalf("GET after the failure: %d %s", status, dump(v))
			}
			if len(w.object(t, v.TradeBill.RawKey)) == 0 {
				t.Fatal("raw file not kept")
			}
			for _, k := range w.S3.Keys(stack.BillsBucket) {
				if strings.HasPrefix(k, "reports/") {
					t.Fatalf("a rejected bill produced report %s", k)
				}
			}
		})
	}
}

func TestBillingNotReadyEndToEnd(t *testing.T) {
	w := newBillWorld(t)
	w.payPaid(t, "NATIVE", "E2EBILLEARLY", 100)
	w.at(8, 0) // bills are generated from 09:00
	status, hdr, v, _ := w.billCall(t, http.MethodPost, w.date, "")
	if status != http.StatusAccepted || v.Status != billing.StatusPending || v.RetryAfterS <= 0 || hdr.Get("Retry-After") == "" {
		t.Fatalf("POST before 09:00: %d %+v", status, v.Record)
	}
	if keys := w.S3.Keys(stack.BillsBucket); len(keys) != 0 {
		t.Fatalf("a pending run stored %v", keys)
	}
	w.at(10, 0)
	if status, _, v, _ := w.billCall(t, http.MethodPost, w.date, ""); status != http.StatusOK || v.Status != billing.StatusDone || v.Differences != 0 {
		t.Fatalf("POST at 10:00: %d %+v", status, v.Record)
	}
}

func TestBillingRejectsBadDatesWithoutCallingWeChat(t *testing.T) {
	w := newBillWorld(t)
	w.at(10, 0)
	n := len(w.Sim.Requests())
	today := ledger.Day(w.clock.Now())
	for _, date := range []string{today, "2026-02-30", "not-a-date", ledger.Day(w.clock.Now().AddDate(0, -4, 0))} {
		status, _, _, raw := w.billCall(t, http.MethodPost, date, "")
		if status != http.StatusBadRequest || raw["code"] != "PARAM_ERROR" {
			t.Errorf("POST %s: %d %v, want 400 PARAM_ERROR", date, status, raw)
		}
	}
	if status, _, _, raw := w.billCall(t, http.MethodPost, w.date, `{"force":true}`); status != http.StatusBadRequest {
		t.Errorf("unknown body field: %d %v", status, raw)
	}
	if got := len(w.Sim.Requests()) - n; got != 0 {
		t.Fatalf("rejected requests reached WeChat Pay: %d calls", got)
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}
