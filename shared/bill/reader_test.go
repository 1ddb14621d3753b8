package bill_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill/billtest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// sampleAll is an ALL bill in the no-prepaid layout, shaped like the real
// download (wechatpay-apiv3.md 6.3): CRLF, backticks, a payment with a
// 10.00 no-prepaid coupon and a 5.00 prepaid one, a plain payment, a
// partial refund of the first, a product name with a comma, and the summary.
const sampleAll = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n" +
	"`2026-11-22 10:15:01,`wx8888888888888888,`1900000109,`0,`,`4200000001202611220000000001,`ORDER-A,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`90.00,`15.00,`0,`0,`0.00,`0.00,`,`,`咖啡, 大杯,`attach-a,`0.54000,`0.60%,`100.00,`0.00,`\r\n" +
	"`2026-11-22 11:00:00,`wx8888888888888888,`1900000109,`0,`,`4200000002202611220000000002,`ORDER-B,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`CFT,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`水,`,`0.00000,`0.60%,`0.01,`0.00,`\r\n" +
	"`2026-11-22 18:30:00,`wx8888888888888888,`1900000109,`0,`,`4200000001202611220000000001,`ORDER-A,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50000000012026112200000001,`REFUND-A1,`45.00,`2.50,`ORIGINAL,`SUCCESS,`咖啡, 大杯,`attach-a,`-0.27000,`0.60%,`0.00,`50.00,`\r\n" +
	"总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n" +
	"`3,`90.01,`45.00,`2.50,`0.27000,`100.01,`50.00\r\n"

func readAllTrade(t *testing.T, text string) ([]bill.TradeRow, *bill.Reader) {
	t.Helper()
	r, err := bill.NewReader(strings.NewReader(text))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var rows []bill.TradeRow
	for {
		row, err := r.NextTrade()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextTrade after %d rows: %v", len(rows), err)
		}
		c := *row
		// Keep copies: the slices are only valid until the next call.
		c.OutTradeNo, c.TransactionID, c.OutRefundNo, c.RefundID = clone(row.OutTradeNo), clone(row.TransactionID), clone(row.OutRefundNo), clone(row.RefundID)
		c.Description, c.TradeState, c.RefundStatus, c.Attach = clone(row.Description), clone(row.TradeState), clone(row.RefundStatus), clone(row.Attach)
		rows = append(rows, c)
	}
	return rows, r
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func TestReaderSampleAll(t *testing.T) {
	rows, r := readAllTrade(t, sampleAll)
	if r.Kind() != bill.KindTrade || !r.NoPrepaidLayout() {
		t.Fatalf("kind %v, no-prepaid %v; want trade, true", r.Kind(), r.NoPrepaidLayout())
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	a, b, ref := rows[0], rows[1], rows[2]
	wantTime, _ := time.ParseInLocation(time.DateTime, "2026-11-22 10:15:01", ledger.Shanghai)
	checks := []struct {
		name      string
		got, want any
	}{
		{"a.Time", a.Time, wantTime.Unix()},
		{"a.OutTradeNo", string(a.OutTradeNo), "ORDER-A"},
		{"a.TransactionID", string(a.TransactionID), "4200000001202611220000000001"},
		{"a.Settlement", a.Settlement, int64(9000)},
		{"a.Coupon", a.Coupon, int64(1500)},
		{"a.Total", a.Total, int64(10000)},
		{"a.Fee", a.Fee, int64(54000)},
		{"a.Description (comma inside)", string(a.Description), "咖啡, 大杯"},
		{"a.RefundID (0 -> empty)", string(a.RefundID), ""},
		{"a.IsRefund", a.IsRefund(), false},
		{"b.Total", b.Total, int64(1)},
		{"b.Attach (empty)", string(b.Attach), ""},
		{"ref.IsRefund", ref.IsRefund(), true},
		{"ref.OutRefundNo", string(ref.OutRefundNo), "REFUND-A1"},
		{"ref.RefundAmount", ref.RefundAmount, int64(4500)},
		{"ref.CashCouponRefund", ref.CashCouponRefund, int64(250)},
		{"ref.RefundRequested", ref.RefundRequested, int64(5000)},
		{"ref.Fee (negative)", ref.Fee, int64(-27000)},
		{"ref.RefundStatus", string(ref.RefundStatus), "SUCCESS"},
		{"ref.Line", ref.Line, int64(4)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if m := r.SummaryMismatches(); len(m) != 0 {
		t.Errorf("summary mismatches on a consistent bill: %+v", m)
	}
	decl, comp := r.TradeTotals()
	if decl != comp || decl.Count != 3 || decl.Total != 10001 || decl.Fee != 27000 {
		t.Errorf("totals declared %+v computed %+v; want equal, 3 rows, 100.01, fee 0.27000", decl, comp)
	}
}

// TestReaderLayouts writes the same rows in every layout and reads them
// back by header name.
func TestReaderLayouts(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 30, 0, 0, ledger.Shanghai)
	pay := billtest.Row{Time: at, AppID: "wx1", MchID: "1900000109", TransactionID: "4200000001", OutTradeNo: "O1", OpenID: "o1",
		TradeType: "JSAPI", State: "SUCCESS", BankType: "OTHERS", Settlement: 900, Coupon: 300, Total: 1000, Description: "d", Fee: 540}
	ref := billtest.Row{Time: at.Add(time.Hour), AppID: "wx1", MchID: "1900000109", TransactionID: "4200000001", OutTradeNo: "O1",
		TradeType: "JSAPI", State: "REFUND", RefundID: "5000001", OutRefundNo: "R1", RefundAmount: 450, CashRefund: 100, RefundReq: 500,
		RefundStatus: "SUCCESS", Fee: -270, RefundApplyTime: at.Add(time.Hour), RefundSuccessTime: at.Add(2 * time.Hour)}
	tests := []struct {
		layout    billtest.Layout
		rows      []billtest.Row
		noPrepaid bool
		check     func(t *testing.T, rows []bill.TradeRow)
	}{
		{billtest.NoPrepaid, []billtest.Row{pay, ref}, true, func(t *testing.T, rows []bill.TradeRow) {
			if rows[0].Total != 1000 || rows[0].Settlement != 900 || !rows[0].HasTotal || rows[1].RefundRequested != 500 || rows[1].RefundAmount != 450 {
				t.Errorf("no-prepaid rows %+v", rows)
			}
		}},
		{billtest.Legacy, []billtest.Row{legacy(pay), legacy(ref)}, false, func(t *testing.T, rows []bill.TradeRow) {
			// 总金额 is 应结订单金额; without 订单金额 the total is the settlement.
			if rows[0].Settlement != 1000 || rows[0].Total != 1000 || rows[0].HasTotal || rows[0].Coupon != 300 ||
				rows[1].RefundRequested != 500 || rows[1].CashCouponRefund != 100 {
				t.Errorf("legacy rows %+v", rows)
			}
		}},
		{billtest.SuccessOnly, []billtest.Row{pay}, true, func(t *testing.T, rows []bill.TradeRow) {
			if rows[0].Total != 1000 || rows[0].Fee != 540 || len(rows[0].OutRefundNo) != 0 {
				t.Errorf("success rows %+v", rows)
			}
		}},
		{billtest.RefundOnly, []billtest.Row{ref}, true, func(t *testing.T, rows []bill.TradeRow) {
			if rows[0].RefundApplyTime != at.Add(time.Hour).Unix() || rows[0].RefundSuccessTime != at.Add(2*time.Hour).Unix() ||
				string(rows[0].OutRefundNo) != "R1" || rows[0].RefundAmount != 450 {
				t.Errorf("refund rows %+v", rows)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(layoutName(tc.layout), func(t *testing.T) {
			rows, r := readAllTrade(t, string(billtest.Trade(tc.layout, tc.rows)))
			if len(rows) != len(tc.rows) {
				t.Fatalf("%d rows, want %d", len(rows), len(tc.rows))
			}
			if r.NoPrepaidLayout() != tc.noPrepaid {
				t.Errorf("NoPrepaidLayout = %v, want %v", r.NoPrepaidLayout(), tc.noPrepaid)
			}
			if m := r.SummaryMismatches(); len(m) != 0 {
				t.Errorf("summary mismatches: %+v", m)
			}
			tc.check(t, rows)
		})
	}
}

func legacy(r billtest.Row) billtest.Row {
	r.Settlement, r.Total, r.RefundAmount = r.Total, 0, r.RefundReq // no no-prepaid coupons before the switch
	return r
}

func layoutName(l billtest.Layout) string {
	return [...]string{"no-prepaid", "legacy", "success", "refund"}[l]
}

func TestReaderFundFlow(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, ledger.Shanghai)
	text := billtest.FundBill([]billtest.FundRow{
		{Time: at, BizOrderNo: "4200000001", FlowNo: "F1", BizName: "交易", BizType: "交易", Income: true, Amount: 9000, Balance: 9000, Applicant: "system"},
		{Time: at.Add(time.Hour), BizOrderNo: "5000001", FlowNo: "F2", BizName: "退款", BizType: "退款", Amount: 4500, Balance: 4500,
			Applicant: "1900000109API", Note: "退款总金额45.00元;含手续费0.27元", Voucher: "R1"},
	})
	r, err := bill.NewReader(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind() != bill.KindFundFlow {
		t.Fatalf("kind %v, want fundflow", r.Kind())
	}
	var got []bill.FundRow
	for {
		f, err := r.NextFund()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c := *f
		c.Voucher, c.Note = clone(f.Voucher), clone(f.Note)
		got = append(got, c)
	}
	if len(got) != 2 || !got[0].Income || got[0].Amount != 9000 || got[1].Income || got[1].Amount != 4500 || string(got[1].Voucher) != "R1" ||
		!strings.Contains(string(got[1].Note), "含手续费") || got[1].Balance != 4500 {
		t.Fatalf("fund rows %+v", got)
	}
	decl, comp := r.FundTotals()
	if decl != comp || decl.IncomeCount != 1 || decl.Expense != 4500 || len(r.SummaryMismatches()) != 0 {
		t.Fatalf("fund totals declared %+v computed %+v", decl, comp)
	}
	if _, err := r.NextTrade(); !errors.Is(err, bill.ErrKind) {
		t.Fatalf("NextTrade on a fund-flow bill: %v, want ErrKind", err)
	}
	// Full-width parentheses (v2 docs) read the same.
	fw := strings.Replace(strings.Replace(string(text), "收支金额(元)", "收支金额（元）", 1), "账户结余(元)", "账户结余（元）", 1)
	if r2, err := bill.NewReader(strings.NewReader(fw)); err != nil || r2.Kind() != bill.KindFundFlow {
		t.Fatalf("full-width header: %v", err)
	}
}

func TestReaderTolerates(t *testing.T) {
	base := strings.ReplaceAll(sampleAll, "\r\n", "\n")
	tests := map[string]string{
		"LF line ends":          base,
		"UTF-8 BOM":             "\xEF\xBB\xBF" + sampleAll,
		"title line":            "微信支付交易账单\r\n" + sampleAll,
		"blank lines":           strings.Replace(sampleAll, "总交易单数", "\r\n总交易单数", 1) + "\r\n\r\n",
		"no final newline":      strings.TrimSuffix(sampleAll, "\r\n"),
		"spaces around values":  strings.Replace(sampleAll, "`90.00,", "` 90.00 ,", 1),
		"header spaces":         strings.Replace(sampleAll, "交易时间,公众账号ID", " 交易时间 , 公众账号ID", 1),
		"reordered columns":     reorder(sampleAll),
		"legacy sub-mch header": strings.Replace(sampleAll, "特约商户号", "子商户号", 1),
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			rows, r := readAllTrade(t, text)
			if len(rows) != 3 || rows[0].Settlement != 9000 || rows[2].RefundAmount != 4500 || string(rows[0].OutTradeNo) != "ORDER-A" {
				t.Fatalf("rows %+v", rows)
			}
			if m := r.SummaryMismatches(); len(m) != 0 {
				t.Fatalf("summary mismatches %+v", m)
			}
		})
	}
}

// reorder swaps the first two columns in the header and every row: the
// reader must follow the header, not positions.
func reorder(text string) string {
	lines := strings.Split(text, "\r\n")
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "总交易单数") || (i > 0 && strings.HasPrefix(l, "`3,")) {
			continue
		}
		sep := ","
		if strings.HasPrefix(l, "`") {
			sep = ",`"
			l = l[1:]
		}
		f := strings.Split(l, sep)
		f[0], f[1] = f[1], f[0]
		l = strings.Join(f, sep)
		if sep == ",`" {
			l = "`" + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\r\n")
}

func TestReaderRejects(t *testing.T) {
	hdr := strings.SplitN(sampleAll, "\r\n", 2)[0]
	rows := strings.Split(sampleAll, "\r\n")
	tests := []struct {
		name string
		text string
		want error
		line int64
	}{
		{"empty file", "", bill.ErrLayout, 0},
		{"not a bill", "hello,world\r\n", bill.ErrLayout, 1},
		{"unknown column", strings.Replace(sampleAll, "费率备注", "新列", 1), bill.ErrLayout, 1},
		{"duplicate column", strings.Replace(sampleAll, "费率备注", "费率", 1), bill.ErrLayout, 1},
		{"missing required column", strings.Replace(sampleAll, "微信订单号,", "", 1), bill.ErrLayout, 1},
		{"legacy and current name together", strings.Replace(sampleAll, "费率备注", "总金额", 1), bill.ErrLayout, 1},
		{"unknown summary column", strings.Replace(sampleAll, "申请退款总金额", "别的总额", 1), bill.ErrLayout, 5},
		{"row without backtick read as summary", hdr + "\r\n" + strings.TrimPrefix(rows[1], "`") + "\r\n", bill.ErrLayout, 2},
		{"too few fields", strings.Replace(sampleAll, ",`0.60%,`100.00,`0.00,`\r\n", ",`0.60%,`100.00,`0.00\r\n", 1), bill.ErrFormat, 2},
		{"too many fields", strings.Replace(sampleAll, ",`0.60%,`100.00,`0.00,`\r\n", ",`0.60%,`100.00,`0.00,`,`x\r\n", 1), bill.ErrFormat, 2},
		{"no summary (truncated)", strings.Join(rows[:3], "\r\n") + "\r\n", bill.ErrFormat, 3},
		{"truncated in the middle of a row", sampleAll[:len(hdr)+60], bill.ErrFormat, 2},
		{"summary header without values", strings.Join(rows[:5], "\r\n") + "\r\n", bill.ErrFormat, 5},
		{"data after the summary", sampleAll + rows[1] + "\r\n", bill.ErrFormat, 7},
		{"two summaries", sampleAll + rows[4] + "\r\n" + rows[5] + "\r\n", bill.ErrFormat, 7},
		{"bad amount text", strings.Replace(sampleAll, "`90.00,", "`90.0O,", 1), bill.ErrAmount, 2},
		{"three decimals", strings.Replace(sampleAll, "`90.00,", "`90.001,", 1), bill.ErrAmount, 2},
		{"empty amount", strings.Replace(sampleAll, "`90.00,", "`,", 1), bill.ErrAmount, 2},
		{"fee with six decimals", strings.Replace(sampleAll, "`0.54000,", "`0.540000,", 1), bill.ErrAmount, 2},
		{"bad summary amount", strings.Replace(sampleAll, "`90.01,", "`90.01元,", 1), bill.ErrAmount, 6},
		{"bad summary count", strings.Replace(sampleAll, "`3,`90.01", "`three,`90.01", 1), bill.ErrFormat, 6},
		{"bad time", strings.Replace(sampleAll, "`2026-11-22 11:00:00", "`2026-11-22T11:00:00", 1), bill.ErrFormat, 3},
		{"line too long", hdr + "\r\n`" + strings.Repeat("x", bill.MaxLineBytes) + "\r\n", bill.ErrFormat, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := readToEnd(tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var pe *bill.ParseError
			if !errors.As(err, &pe) || pe.Line != tc.line {
				t.Fatalf("err = %v, want a ParseError at line %d", err, tc.line)
			}
			if strings.Contains(err.Error(), "oUpF8uMuAJO") {
				t.Fatalf("error %q quotes an openid", err)
			}
		})
	}
}

func readToEnd(text string) error {
	r, err := bill.NewReader(strings.NewReader(text))
	if err != nil {
		return err
	}
	for {
		_, err := r.NextTrade()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestSummaryMismatches(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, ledger.Shanghai)
	var b strings.Builder
	w := billtest.NewWriter(&b, billtest.NoPrepaid, true)
	_ = w.Write(billtest.Row{Time: at, TransactionID: "T1", OutTradeNo: "O1", TradeType: "JSAPI", State: "SUCCESS", Settlement: 100, Total: 100, Fee: 60})
	wrong := w.Totals()
	wrong.Count, wrong.Settlement, wrong.Fee = 2, 101, 61
	_ = w.CloseWith(wrong)
	_, r := readAllTrade(t, b.String())
	got := r.SummaryMismatches()
	want := []bill.SummaryMismatch{
		{Column: "总交易单数", Declared: 2, Computed: 1, Unit: "count"},
		{Column: "应结订单总金额", Declared: 101, Computed: 100, Unit: "fen"},
		{Column: "手续费总金额", Declared: 61, Computed: 60, Unit: "fee"},
	}
	if len(got) != len(want) {
		t.Fatalf("mismatches %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mismatch %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestReaderAllocationsDoNotGrowWithRows: reading allocates per file, not
// per row (the hot path parses amounts and times from the bytes).
func TestReaderAllocationsDoNotGrowWithRows(t *testing.T) {
	small, large := genBill(10), genBill(5000)
	count := func(text []byte) float64 {
		return testing.AllocsPerRun(5, func() {
			r, err := bill.NewReader(bytes.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := r.NextTrade(); err != nil {
					if err != io.EOF {
						t.Fatal(err)
					}
					return
				}
			}
		})
	}
	a, b := count(small), count(large)
	if b-a > 2 {
		t.Fatalf("allocations: %v for 10 rows, %v for 5000 rows; want no per-row allocation", a, b)
	}
}

func genBill(n int) []byte {
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, ledger.Shanghai)
	var b bytes.Buffer
	w := billtest.NewWriter(&b, billtest.NoPrepaid, true)
	for i := 0; i < n; i++ {
		_ = w.Write(billtest.Row{Time: at.Add(time.Duration(i) * time.Second), AppID: "wx8888888888888888", MchID: "1900000109",
			TransactionID: "42000000012026112200" + pad(i), OutTradeNo: "ORDER" + pad(i), OpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
			TradeType: "JSAPI", State: "SUCCESS", BankType: "OTHERS", Settlement: 990, Coupon: 10, Total: 1000, Description: "商品", Fee: 594})
	}
	_ = w.Close()
	return b.Bytes()
}

func pad(i int) string {
	s := "0000000000" + itoa(i)
	return s[len(s)-10:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
