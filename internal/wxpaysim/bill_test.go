package wxpaysim_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// parsedBill is a trade bill split the way 6.3 describes: header, detail
// rows (backticks stripped), summary header, summary row.
type parsedBill struct {
	header, summaryHeader []string
	rows                  []map[string]string
	summary               map[string]string
}

func parseBill(t *testing.T, text []byte) parsedBill {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(text), "\r\n"), "\r\n")
	if len(lines) < 3 {
		t.Fatalf("bill has %d lines, want header, summary header and summary at least:\n%s", len(lines), text)
	}
	var b parsedBill
	b.header = strings.Split(lines[0], ",")
	b.summaryHeader = strings.Split(lines[len(lines)-2], ",")
	field := func(v string) string {
		if !strings.HasPrefix(v, "`") {
			t.Fatalf("field %q does not start with a backtick", v)
		}
		return strings.TrimSpace(strings.TrimPrefix(v, "`"))
	}
	for _, l := range lines[1 : len(lines)-2] {
		vals := strings.Split(l, ",")
		if len(vals) != len(b.header) {
			t.Fatalf("row %q has %d fields, header %d", l, len(vals), len(b.header))
		}
		row := map[string]string{}
		for i, v := range vals {
			row[b.header[i]] = field(v)
		}
		b.rows = append(b.rows, row)
	}
	vals := strings.Split(lines[len(lines)-1], ",")
	if len(vals) != len(b.summaryHeader) {
		t.Fatalf("summary %q has %d fields, header %d", lines[len(lines)-1], len(vals), len(b.summaryHeader))
	}
	b.summary = map[string]string{}
	for i, v := range vals {
		b.summary[b.summaryHeader[i]] = field(v)
	}
	return b
}

func (b parsedBill) row(t *testing.T, status, outTradeNo, outRefundNo string) map[string]string {
	t.Helper()
	for _, r := range b.rows {
		if r["交易状态"] == status && r["商户订单号"] == outTradeNo && (outRefundNo == "" || r["商户退款单号"] == outRefundNo) {
			return r
		}
	}
	t.Fatalf("no %s row for %s %s in %v", status, outTradeNo, outRefundNo, b.rows)
	return nil
}

func checkFields(t *testing.T, what string, row map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if row[k] != v {
			t.Errorf("%s: %s = %q, want %q (row %v)", what, k, row[k], v, row)
		}
	}
}

// billDay sets up a simulator whose clock starts at 2026-11-22 10:00
// Shanghai, with a day of payments and refunds: the case 1003 order (5.51,
// 0.01 NOCASH coupon) refunded 3.00, an order with a 10 yuan prepaid
// coupon, an unpaid order, and a closed refund.
func billDay(t *testing.T) *fixture {
	t.Helper()
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001, Now: func() time.Time { return start }}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	f.paidOrder(t, "BILL1003", 551, rc.URL(), wxpaysim.Promotion{Type: "NOCASH", Amount: 1, CouponID: "N1"})
	f.sim.Advance(time.Minute)
	f.paidOrder(t, "BILLCASH", 10000, rc.URL(), wxpaysim.Promotion{Type: "CASH", Amount: 1000, CouponID: "C1"})
	if r := f.call(t, "POST", "/v3/pay/transactions/native", mustJSON(t, prepayBody(f.m, "BILLUNPAID", 100, rc.URL())), nil); r.Status != 200 {
		t.Fatal(r.Status)
	}
	f.sim.Advance(time.Minute)
	if r := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "BILL1003", "BILLR1", 300, 551, rc.URL()), nil); r.Status != 200 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	if err := f.sim.SetRefundOutcome(f.m.MchID, "BILLCASH", "CLOSED"); err != nil {
		t.Fatal(err)
	}
	if r := f.call(t, "POST", "/v3/refund/domestic/refunds", refundBody("out_trade_no", "BILLCASH", "BILLRCLOSED", 500, 10000, rc.URL()), nil); r.Status != 200 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	return f
}

func TestTradeBillApplyAndDownload(t *testing.T) {
	f := billDay(t)
	f.sim.Advance(24 * time.Hour) // 2026-11-23 10:02: yesterday's bill exists

	r := f.call(t, "GET", "/v3/bill/tradebill?bill_date=2026-11-22&bill_type=ALL&tar_type=GZIP", nil, nil)
	if r.Status != http.StatusOK || f.verify(r) != nil {
		t.Fatalf("apply: %d %s (signature %v)", r.Status, r.Body, f.verify(r))
	}
	var ap struct {
		HashType    string `json:"hash_type"`
		HashValue   string `json:"hash_value"`
		DownloadURL string `json:"download_url"`
	}
	if err := json.Unmarshal(r.Body, &ap); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ap.DownloadURL)
	if err != nil || ap.HashType != "SHA1" || len(ap.HashValue) != 40 || u.Path != "/v3/billdownload/file" || u.Query().Get("token") == "" ||
		u.Scheme+"://"+u.Host != f.srv.URL {
		t.Fatalf("apply answer %+v, want SHA1, a 40-hex hash and a download_url on %s", ap, f.srv.URL)
	}
	d := f.call(t, "GET", u.RequestURI(), nil, nil)
	if d.Status != http.StatusOK {
		t.Fatalf("download: %d %s", d.Status, d.Body)
	}
	if d.Header.Get(wxsign.HeaderSignature) != "" || d.Header.Get(wxsign.HeaderSerial) != "" {
		t.Errorf("download is signed (%v); WeChat Pay serves it unsigned", d.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(d.Body))
	if err != nil {
		t.Fatalf("download is not gzip: %v", err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(text)
	if hex.EncodeToString(sum[:]) != ap.HashValue {
		t.Fatalf("sha1 of the decompressed file %x != hash_value %s", sum, ap.HashValue)
	}
	same, err := f.sim.TradeBill(f.m.MchID, "2026-11-22", "ALL")
	if err != nil || !bytes.Equal(same, text) {
		t.Errorf("TradeBill(...) = %q, %v; want the downloaded file", same, err)
	}

	b := parseBill(t, text)
	wantHeader := "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类," +
		"应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率," +
		"订单金额,申请退款金额,费率备注"
	if got := strings.Join(b.header, ","); got != wantHeader {
		t.Errorf("header\n %s\nwant\n %s", got, wantHeader)
	}
	if got := strings.Join(b.summaryHeader, ","); got != "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额" {
		t.Errorf("summary header %s", got)
	}
	if len(b.rows) != 3 {
		t.Fatalf("%d detail rows, want 3 (two payments, one refund; no unpaid order, no closed refund): %v", len(b.rows), b.rows)
	}
	checkFields(t, "1003 payment", b.row(t, "SUCCESS", "BILL1003", ""), map[string]string{
		"交易时间": "2026-11-22 10:00:00", "商户号": f.m.MchID, "公众账号ID": f.m.AppID, "特约商户号": "0", "交易类型": "NATIVE", "货币种类": "CNY",
		"应结订单金额": "5.50", "代金券金额": "0.01", "订单金额": "5.51", "退款金额": "0.00", "充值券退款金额": "0.00", "申请退款金额": "0.00",
		"微信退款单号": "0", "商户退款单号": "0", "手续费": "0.03000", "费率": "0.60%", "付款银行": "OTHERS",
	})
	checkFields(t, "prepaid coupon payment", b.row(t, "SUCCESS", "BILLCASH", ""), map[string]string{
		"交易时间": "2026-11-22 10:01:00", "应结订单金额": "100.00", "代金券金额": "10.00", "订单金额": "100.00", "手续费": "0.60000",
	})
	checkFields(t, "1004 refund", b.row(t, "REFUND", "BILL1003", "BILLR1"), map[string]string{
		"交易时间": "2026-11-22 10:02:00", "应结订单金额": "0.00", "代金券金额": "0.00", "订单金额": "0.00",
		"退款金额": "2.99", "充值券退款金额": "0.00", "申请退款金额": "3.00", "退款类型": "ORIGINAL", "退款状态": "SUCCESS", "手续费": "-0.02000",
	})
	checkFields(t, "summary", b.summary, map[string]string{
		"总交易单数": "3", "应结订单总金额": "105.50", "退款总金额": "2.99", "充值券退款总金额": "0.00", "手续费总金额": "0.61000",
		"订单总金额": "105.51", "申请退款总金额": "3.00",
	})

	// Without tar_type the same file comes plain.
	r = f.call(t, "GET", "/v3/bill/tradebill?bill_date=2026-11-22", nil, nil)
	_ = json.Unmarshal(r.Body, &ap)
	u, _ = url.Parse(ap.DownloadURL)
	if d := f.call(t, "GET", u.RequestURI(), nil, nil); d.Status != 200 || !bytes.Equal(d.Body, text) {
		t.Errorf("plain download: %d, %d bytes; want the %d-byte file", d.Status, len(d.Body), len(text))
	}
}

func TestTradeBillLayouts(t *testing.T) {
	f := billDay(t)
	tests := []struct {
		billType          string
		columns, summary  int
		rows              int
		extraHeaderColumn string
	}{
		{"ALL", 27, 7, 3, "申请退款金额"},
		{"SUCCESS", 20, 4, 2, "费率备注"},
		{"REFUND", 29, 7, 1, "退款成功时间"},
	}
	for _, tc := range tests {
		t.Run(tc.billType, func(t *testing.T) {
			text, err := f.sim.TradeBill(f.m.MchID, "2026-11-22", tc.billType)
			if err != nil {
				t.Fatal(err)
			}
			b := parseBill(t, text)
			if len(b.header) != tc.columns || len(b.summaryHeader) != tc.summary || len(b.rows) != tc.rows || !strings.Contains(strings.Join(b.header, ","), tc.extraHeaderColumn) {
				t.Fatalf("%s bill: %d columns, %d summary columns, %d rows; want %d, %d, %d with %s\n%s",
					tc.billType, len(b.header), len(b.summaryHeader), len(b.rows), tc.columns, tc.summary, tc.rows, tc.extraHeaderColumn, text)
			}
			if tc.billType == "REFUND" {
				checkFields(t, "REFUND bill row", b.rows[0], map[string]string{"交易时间": "2026-11-22 10:00:00", "退款申请时间": "2026-11-22 10:02:00",
					"退款成功时间": "2026-11-22 10:02:00", "应结订单金额": "5.50", "订单金额": "5.51", "退款金额": "2.99", "申请退款金额": "3.00"})
			}
		})
	}
	if _, err := f.sim.TradeBill(f.m.MchID, "22/11/2026", "ALL"); err == nil {
		t.Error("TradeBill accepted a malformed date")
	}
	if _, err := f.sim.TradeBill(f.m.MchID, "2026-11-22", "FUND"); err == nil {
		t.Error("TradeBill accepted bill_type FUND")
	}
}

func TestTradeBillErrors(t *testing.T) {
	f := billDay(t) // now 2026-11-22 10:02
	apply := func(q string) result { return f.call(t, "GET", "/v3/bill/tradebill?"+q, nil, nil) }
	tests := []struct {
		name    string
		advance time.Duration
		query   string
		status  int
		code    string
	}{
		{"today is still being made", 0, "bill_date=2026-11-22", 400, "STATEMENT_CREATING"},
		{"future date", 0, "bill_date=2026-11-23", 400, "PARAM_ERROR"},
		{"malformed date", 0, "bill_date=20261122", 400, "PARAM_ERROR"},
		{"missing date", 0, "bill_type=ALL", 400, "PARAM_ERROR"},
		{"next day before 09:00", 22 * time.Hour, "bill_date=2026-11-22", 400, "STATEMENT_CREATING"}, // 2026-11-23 08:02
		{"day without transactions", time.Hour, "bill_date=2026-11-21", 400, "NO_STATEMENT_EXIST"},
		{"unknown bill_type", 0, "bill_date=2026-11-22&bill_type=FUND", 400, "PARAM_ERROR"},
		{"personalised bill", 0, "bill_date=2026-11-22&bill_type=ALL_SPECIAL", 400, "NO_STATEMENT_EXIST"},
		{"bad tar_type", 0, "bill_date=2026-11-22&tar_type=ZIP", 400, "PARAM_ERROR"},
		{"older than three months", 0, "bill_date=2026-08-01", 400, "PARAM_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.sim.Advance(tc.advance)
			defer f.sim.Advance(-tc.advance)
			r := apply(tc.query)
			if r.Status != tc.status || r.code() != tc.code {
				t.Fatalf("apply ?%s: %d %s, want %d %s", tc.query, r.Status, r.Body, tc.status, tc.code)
			}
		})
	}

	f.sim.Advance(24 * time.Hour)
	var ap struct {
		DownloadURL string `json:"download_url"`
	}
	if err := json.Unmarshal(apply("bill_date=2026-11-22&tar_type=GZIP").Body, &ap); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ap.DownloadURL)
	token := u.Query().Get("token")
	f.addMerchant(t, "1900000110", wxpaysim.ModePublicKey, "")
	downloads := []struct {
		name   string
		uri    string
		edit   func(*signSpec)
		wait   time.Duration
		status int
		code   string
	}{
		{"missing token", "/v3/billdownload/file", nil, 0, 400, "PARAM_ERROR"},
		{"malformed token", "/v3/billdownload/file?token=abc", nil, 0, 400, "INVALID_REQUEST"},
		{"forged token", "/v3/billdownload/file?token=" + url.QueryEscape(token[:strings.Index(token, ".")]+".AAAAAAAAAAAAAAAAAAAAAA"), nil, 0, 400, "INVALID_REQUEST"},
		{"another merchant", u.RequestURI(), func(s *signSpec) { s.MchID = "1900000110" }, 0, 403, "NO_AUTH"},
		{"unsigned", u.RequestURI(), func(s *signSpec) { empty := ""; s.Authorization = &empty }, 0, 401, "SIGN_ERROR"},
		{"expired after 30 s", u.RequestURI(), nil, 31 * time.Second, 400, "INVALID_REQUEST"},
	}
	for _, tc := range downloads {
		t.Run(tc.name, func(t *testing.T) {
			f.sim.Advance(tc.wait)
			r := f.call(t, "GET", tc.uri, nil, tc.edit)
			if r.Status != tc.status || r.code() != tc.code {
				t.Fatalf("download %s: %d %s, want %d %s", tc.uri, r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
}
