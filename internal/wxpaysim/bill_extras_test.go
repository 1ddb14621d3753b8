package wxpaysim_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
)

type applied struct {
	HashType    string `json:"hash_type"`
	HashValue   string `json:"hash_value"`
	DownloadURL string `json:"download_url"`
}

// fetchBill applies for a bill and downloads it; it returns the answer,
// the raw download and the gunzip error (nil for an intact file).
func fetchBill(t *testing.T, f *fixture, apply string) (applied, []byte, []byte, error) {
	t.Helper()
	r := f.call(t, "GET", apply, nil, nil)
	if r.Status != http.StatusOK || f.verify(r) != nil {
		t.Fatalf("apply %s: %d %s", apply, r.Status, r.Body)
	}
	var ap applied
	if err := json.Unmarshal(r.Body, &ap); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ap.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	d := f.call(t, "GET", u.RequestURI(), nil, nil)
	if d.Status != http.StatusOK {
		t.Fatalf("download: %d %s", d.Status, d.Body)
	}
	zr, err := gzip.NewReader(bytes.NewReader(d.Body))
	if err != nil {
		return ap, d.Body, nil, err
	}
	text, err := io.ReadAll(zr)
	return ap, d.Body, text, err
}

func sha1hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestFundFlowBill(t *testing.T) {
	f := billDay(t)
	if r := f.call(t, "GET", "/v3/bill/fundflowbill?bill_date=2026-11-22&account_type=BASIC&tar_type=GZIP", nil, nil); r.code() != "STATEMENT_CREATING" {
		t.Fatalf("before 09:00 the next day: %d %s, want STATEMENT_CREATING", r.Status, r.Body)
	}
	f.sim.Advance(24 * time.Hour)
	ap, _, text, err := fetchBill(t, f, "/v3/bill/fundflowbill?bill_date=2026-11-22&account_type=BASIC&tar_type=GZIP")
	if err != nil || ap.HashType != "SHA1" || sha1hex(text) != ap.HashValue {
		t.Fatalf("fund-flow bill: %v, hash %s vs %s", err, sha1hex(text), ap.HashValue)
	}
	same, err := f.sim.FundFlowBill(f.m.MchID, "2026-11-22")
	if err != nil || !bytes.Equal(same, text) {
		t.Fatalf("FundFlowBill = %v; want the downloaded file", err)
	}
	b := parseBill(t, text)
	if got := strings.Join(b.header, ","); got != "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),账户结余(元),资金变更提交申请人,备注,业务凭证号" {
		t.Fatalf("header %s", got)
	}
	// Two payments (settlement amounts, the NOCASH coupon not paid in),
	// their fees, the refund; not the unpaid order or the closed refund.
	want := []map[string]string{
		{"业务名称": "交易", "收支类型": "收入", "收支金额(元)": "5.50", "账户结余(元)": "5.50", "业务凭证号": "BILL1003"},
		{"业务名称": "扣除交易手续费", "收支类型": "支出", "收支金额(元)": "0.03", "账户结余(元)": "5.47"},
		{"业务名称": "交易", "收支类型": "收入", "收支金额(元)": "100.00", "账户结余(元)": "105.47", "业务凭证号": "BILLCASH"},
		{"业务名称": "扣除交易手续费", "收支类型": "支出", "收支金额(元)": "0.60", "账户结余(元)": "104.87"},
		{"业务名称": "退款", "收支类型": "支出", "收支金额(元)": "2.99", "账户结余(元)": "101.88", "业务凭证号": "BILLR1", "备注": "退款总金额2.99元;含手续费0.02元"},
	}
	if len(b.rows) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(b.rows), len(want), b.rows)
	}
	for i := range want {
		checkFields(t, "fund-flow row", b.rows[i], want[i])
	}
	checkFields(t, "fund-flow summary", b.summary, map[string]string{"资金流水总笔数": "5", "收入笔数": "2", "收入金额": "105.50", "支出笔数": "3", "支出金额": "3.62"})

	for _, q := range []string{"bill_date=2026-11-22&account_type=OPERATION", "bill_date=2026-11-21&account_type=BASIC"} {
		if r := f.call(t, "GET", "/v3/bill/fundflowbill?"+q, nil, nil); r.code() != "NO_STATEMENT_EXIST" {
			t.Errorf("%s: %d %s, want NO_STATEMENT_EXIST", q, r.Status, r.Body)
		}
	}
	if r := f.call(t, "GET", "/v3/bill/fundflowbill?bill_date=2026-11-22&account_type=SAVINGS", nil, nil); r.code() != "PARAM_ERROR" {
		t.Errorf("unknown account_type: %d %s", r.Status, r.Body)
	}
	// An expired link is refused like the trade bill's.
	r := f.call(t, "GET", "/v3/bill/fundflowbill?bill_date=2026-11-22", nil, nil)
	var ap2 applied
	_ = json.Unmarshal(r.Body, &ap2)
	f.sim.Advance(31 * time.Second)
	u, _ := url.Parse(ap2.DownloadURL)
	if d := f.call(t, "GET", u.RequestURI(), nil, nil); d.code() != "INVALID_REQUEST" {
		t.Errorf("expired fund-flow link: %d %s", d.Status, d.Body)
	}
}

func TestBillFaults(t *testing.T) {
	const apply = "/v3/bill/tradebill?bill_date=2026-11-22&bill_type=ALL&tar_type=GZIP"
	tests := []struct {
		kind  wxpaysim.FaultKind
		check func(t *testing.T, ap applied, raw, text []byte, gzErr error)
	}{
		{wxpaysim.KindBillHashMismatch, func(t *testing.T, ap applied, _, text []byte, gzErr error) {
			if gzErr != nil || sha1hex(text) == ap.HashValue {
				t.Fatalf("hash_value %s matches the file (%v)", ap.HashValue, gzErr)
			}
		}},
		{wxpaysim.KindBillTruncatedGzip, func(t *testing.T, ap applied, raw, _ []byte, gzErr error) {
			if !errors.Is(gzErr, io.ErrUnexpectedEOF) {
				t.Fatalf("gunzip = %v, want io.ErrUnexpectedEOF (%d bytes)", gzErr, len(raw))
			}
		}},
		{wxpaysim.KindBillUnknownColumn, func(t *testing.T, ap applied, _, text []byte, gzErr error) {
			if gzErr != nil || sha1hex(text) != ap.HashValue || !strings.Contains(string(text), "费率说明") || strings.Contains(string(text), "费率备注") {
				t.Fatalf("header not changed consistently (%v)", gzErr)
			}
		}},
		{wxpaysim.KindBillBadAmount, func(t *testing.T, ap applied, _, text []byte, gzErr error) {
			if gzErr != nil || sha1hex(text) != ap.HashValue || !strings.Contains(string(text), "`1,000.00,") {
				t.Fatalf("amount not changed consistently (%v)", gzErr)
			}
		}},
		{wxpaysim.KindBillDuplicateRow, func(t *testing.T, ap applied, _, text []byte, gzErr error) {
			if gzErr != nil || sha1hex(text) != ap.HashValue {
				t.Fatalf("hash %v", gzErr)
			}
			lines := strings.Split(string(text), "\r\n")
			if lines[1] != lines[2] || !strings.HasPrefix(lines[len(lines)-2], "`5,`114.00,") {
				t.Fatalf("first row not repeated or summary not recounted:\n%s", text)
			}
		}},
		{wxpaysim.KindBillAuthAttach, func(t *testing.T, ap applied, _, text []byte, gzErr error) {
			if gzErr != nil || sha1hex(text) != ap.HashValue || strings.Contains(string(text), "wxzff|") || !strings.Contains(string(text), "`AUTH,") {
				t.Fatalf("AUTH attach not changed consistently (%v):\n%s", gzErr, text)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			f := billDay(t)
			if _, err := f.sim.RecordPaidTransaction(context.Background(), wxpaysim.PaidTransaction{MchID: f.m.MchID, Total: 300,
				Attach: "wxzff|1000000000201911061234567890|PSO-1"}); err != nil {
				t.Fatal(err)
			}
			f.sim.Advance(24 * time.Hour)
			if f.admin(t, "POST", "/sim/bills/faults", map[string]any{"mchid": f.m.MchID, "kind": tc.kind, "bill": "tradebill", "count": 1}, nil) != http.StatusOK {
				t.Fatal("admin fault refused")
			}
			ap, raw, text, gzErr := fetchBill(t, f, apply)
			tc.check(t, ap, raw, text, gzErr)
			// Counted faults fire once; the next bill is intact.
			if tc.kind == wxpaysim.KindBillHashMismatch || tc.kind == wxpaysim.KindBillTruncatedGzip {
				ap, _, text, err := fetchBill(t, f, apply)
				if err != nil || sha1hex(text) != ap.HashValue {
					t.Fatalf("second bill after a Count 1 fault: %v", err)
				}
			}
			f.sim.ClearFaults()
			ap, _, text, err := fetchBill(t, f, apply)
			if err != nil || sha1hex(text) != ap.HashValue || strings.Contains(string(text), "费率说明") {
				t.Fatalf("after ClearFaults: %v", err)
			}
		})
	}
	f := billDay(t)
	if err := f.sim.SetBillFault(wxpaysim.BillFault{Kind: "bill_gremlin"}); !errors.Is(err, wxpaysim.ErrInvalid) {
		t.Fatalf("unknown bill fault kind: %v", err)
	}
	if err := f.sim.SetBillFault(wxpaysim.BillFault{Kind: wxpaysim.KindBillHashMismatch, Bill: "invoice"}); !errors.Is(err, wxpaysim.ErrInvalid) {
		t.Fatalf("unknown bill: %v", err)
	}
}

// TestPayScoreDeductionInBills: a Pay Score deduction is an AUTH row of the
// trade bill, with WeChat's own 商户订单号 and attach
// wxzff|<service order id>|<out_order_no> (wechatpay-apiv3.md 2.7), and a
// 收入 of the fund-flow bill.
func TestPayScoreDeductionInBills(t *testing.T) {
	f := newPayScoreFixture(t)
	openid := "oPSBILL0000000000000000000001"
	f.authorize(t, openid)
	r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSBILL1", openid))
	var created struct {
		OrderID string `json:"order_id"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &created) != nil || created.OrderID == "" {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder/PSBILL1/complete", f.completeBody(4200, 4200)); r.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	res, err := f.sim.DeductPayScore(t.Context(), wxpaysim.PayScoreDeduction{MchID: f.m.MchID, OutOrderNo: "PSBILL1"})
	if err != nil || res.TransactionID == "" {
		t.Fatalf("deduct: %+v %v", res, err)
	}
	date := f.sim.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	f.sim.Advance(33 * time.Hour)
	for i := 0; i < 2; i++ { // applying twice adds the transaction once
		ap, _, text, err := fetchBill(t, f.fixture, "/v3/bill/tradebill?bill_date="+date+"&tar_type=GZIP")
		if err != nil || sha1hex(text) != ap.HashValue {
			t.Fatalf("trade bill: %v", err)
		}
		b := parseBill(t, text)
		if len(b.rows) != 1 {
			t.Fatalf("%d rows, want the one deduction: %v", len(b.rows), b.rows)
		}
		checkFields(t, "AUTH row", b.rows[0], map[string]string{"交易类型": "AUTH", "交易状态": "SUCCESS", "微信订单号": res.TransactionID,
			"商户数据包": "wxzff|" + created.OrderID + "|PSBILL1", "订单金额": "42.00", "应结订单金额": "42.00", "用户标识": openid})
		if no := b.rows[0]["商户订单号"]; no == "PSBILL1" || !strings.HasPrefix(no, "1000") {
			t.Fatalf("商户订单号 %q: want one WeChat generated", no)
		}
	}
	text, err := f.sim.FundFlowBill(f.m.MchID, date)
	if err != nil || !strings.Contains(string(text), "`"+res.TransactionID+",") || !strings.Contains(string(text), "`收入,`42.00,") {
		t.Fatalf("fund-flow bill lacks the deduction (%v):\n%s", err, text)
	}
}
