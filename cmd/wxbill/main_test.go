package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill/billtest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

var day = time.Date(2026, 11, 22, 0, 0, 0, 0, ledger.Shanghai)

func rows() []billtest.Row {
	return []billtest.Row{
		{Time: day.Add(9 * time.Hour), AppID: "wx1", MchID: "1900000109", TransactionID: "4200000001", OutTradeNo: "O1", OpenID: "o1",
			TradeType: "JSAPI", State: "SUCCESS", BankType: "OTHERS", Settlement: 9000, Coupon: 1500, Total: 10000, Description: "咖啡", Fee: 54000},
		{Time: day.Add(10 * time.Hour), AppID: "wx1", MchID: "1900000109", TransactionID: "4200000002", OutTradeNo: "O2", OpenID: "o2",
			TradeType: "NATIVE", State: "SUCCESS", BankType: "CFT", Settlement: 500, Total: 500, Description: "水", Fee: 3000},
		{Time: day.Add(11 * time.Hour), AppID: "wx1", MchID: "1900000109", TransactionID: "4200000001", OutTradeNo: "O1", TradeType: "JSAPI",
			State: "REFUND", RefundID: "5000001", OutRefundNo: "R1", RefundAmount: 4500, CashRefund: 250, RefundReq: 5000, RefundStatus: "SUCCESS", Fee: -27000},
	}
}

func write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, getenv env, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, getenv, &out, &errOut)
	return code, out.String(), errOut.String()
}

func noEnv(string) string { return "" }

func TestValidateBillAlone(t *testing.T) {
	plain := billtest.Trade(billtest.NoPrepaid, rows())
	legacyRows := rows()[1:2] // before no-prepaid coupons: no 订单金额 column
	wrong := func() []byte {
		var b bytes.Buffer
		w := billtest.NewWriter(&b, billtest.NoPrepaid, true)
		for _, r := range rows() {
			_ = w.Write(r)
		}
		tot := w.Totals()
		tot.Count++
		_ = w.CloseWith(tot)
		return b.Bytes()
	}()
	tests := []struct {
		name   string
		file   []byte
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"no-prepaid layout, plain", plain, nil, exitClean, []string{"no-prepaid", "3 rows", "CLEAN", "免充值 10.00"}, ""},
		{"gzipped with its hash", billtest.Gzip(plain), []string{"--hash", billtest.SHA1(plain)}, exitClean, []string{"gzip", "verified", "CLEAN"}, ""},
		{"legacy layout (before no-prepaid)", billtest.Trade(billtest.Legacy, legacyRows), nil, exitClean, []string{"legacy", "1 rows", "CLEAN"}, ""},
		{"summary disagrees with the rows", wrong, nil, exitDifferences, []string{"DISAGREES", "bill_summary=1"}, ""},
		{"hash mismatch", billtest.Gzip(plain), []string{"--hash", billtest.SHA1([]byte("x"))}, exitFailed, nil, "SHA-1"},
		{"truncated gzip", billtest.Gzip(plain)[:100], []string{"--date", "2026-11-22"}, exitFailed, nil, "truncated"},
		{"bad amount", bytes.Replace(plain, []byte("`90.00,"), []byte("`90.0O,"), 1), nil, exitFailed, nil, "line 2"},
		{"unknown column", bytes.Replace(plain, []byte("费率备注"), []byte("备注2"), 1), []string{"--date", "2026-11-22"}, exitFailed, nil, "unknown column layout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"reconcile", "--bill", write(t, "bill", tc.file), "--ledger", "none", "--out", out}, tc.args...)
			code, stdout, stderr := runCmd(t, noEnv, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr)
			}
			_, statErr := os.Stat(filepath.Join(out, "summary.html"))
			if wrote := statErr == nil; wrote != (tc.code != exitFailed) {
				t.Errorf("reports written = %v for exit %d", wrote, code)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"check"}, {"reconcile"}, {"reconcile", "--bill", "x", "--ledger", "maybe"},
		{"reconcile", "--bill", "x", "--date", "2026-02-30", "--ledger", "none"}, {"reconcile", "--bill", "x", "--date", "2026-11-22"}} {
		if code, _, stderr := runCmd(t, noEnv, args...); code != exitFailed || stderr == "" {
			t.Errorf("wxbill %v: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

func TestReconcileAgainstTheLedger(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	db, table := ddblocal.NewTable(t)
	st := ddbstore.New(db, table)
	ctx := context.Background()
	put := func(k store.Key, idx string, sk string, v any) {
		if err := st.Put(ctx, &store.Put{Key: k, Index: store.IndexKey{PK: idx, SK: sk}, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	put(ledger.OrderKey("O1"), ledger.DayIndex("PAY", "2026-11-22"), "O1", ledger.Order{OutTradeNo: "O1", TransactionID: "4200000001",
		TradeType: "JSAPI", Status: ledger.TradeRefund, Total: 10000, PayerTotal: 8500, SettlementTotal: 9000, CouponTotal: 1500, NoCashTotal: 1000,
		SuccessTime: "2026-11-22T09:00:00+08:00"})
	put(ledger.OrderKey("O2"), ledger.DayIndex("PAY", "2026-11-22"), "O2", ledger.Order{OutTradeNo: "O2", TransactionID: "4200000002",
		TradeType: "NATIVE", Status: ledger.TradeSuccess, Total: 500, PayerTotal: 500, SettlementTotal: 500, SuccessTime: "2026-11-22T10:00:00+08:00"})
	put(ledger.RefundKey("R1"), ledger.DayIndex("REFUND", "2026-11-22"), "R1", ledger.RefundRecord{OutRefundNo: "R1", OutTradeNo: "O1",
		OrderKind: ledger.KindOrder, TransactionID: "4200000001", RefundID: "5000001", Status: ledger.RefundSuccess, Refund: 5000,
		PayerRefund: 4250, DiscountRefund: 750, SettlementRefund: 4500, CreateTime: "2026-11-22T11:00:00+08:00"})
	getenv := func(k string) string {
		return map[string]string{"DYNAMODB_ENDPOINT": os.Getenv(ddblocal.EnvEndpoint), "TABLE_NAME": table}[k]
	}
	file := write(t, "tradebill.csv.gz", billtest.Gzip(billtest.Trade(billtest.NoPrepaid, rows())))
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runCmd(t, getenv, "reconcile", "--bill", file, "--out", out)
	if code != exitClean || !strings.Contains(stdout, "matched 3") || !strings.Contains(stdout, "CLEAN") {
		t.Fatalf("clean day: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The ledger loses O2: the bill's row is found missing.
	if err := st.Delete(ctx, &store.Delete{Key: ledger.OrderKey("O2"), MustExist: true}); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCmd(t, getenv, "reconcile", "--bill", file, "--out", out, "--date", "2026-11-22")
	if code != exitDifferences || !strings.Contains(stdout, "missing_in_ledger=1") {
		t.Fatalf("missing order: exit %d\n%s", code, stdout)
	}
	f, err := os.ReadFile(filepath.Join(out, "differences.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(f)).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][0] != "missing_in_ledger" || recs[1][2] != "O2" {
		t.Fatalf("differences.csv %v %v", recs, err)
	}
}
