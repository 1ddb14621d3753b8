// Package billtest writes WeChat Pay bill files for tests, benchmarks and
// fixtures: the trade bill in its current (no-prepaid), legacy, SUCCESS and
// REFUND layouts and the fund-flow bill, with backticks, the summary
// section computed from the rows, and optional gzip. It follows
// wechatpay-apiv3.md 6.3/6.4 and is independent of the simulator's own
// bill code, so the two can check each other.
package billtest

import (
	"bufio"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// Layout is a trade-bill column layout.
type Layout int

// Layouts.
const (
	// NoPrepaid is the ALL bill of a merchant with no-prepaid coupons
	// enabled: 27 columns ending 订单金额, 申请退款金额, 费率备注.
	NoPrepaid Layout = iota
	// Legacy is the ALL bill before no-prepaid coupons: 总金额 and
	// 企业红包金额 instead of 应结订单金额 and 代金券金额, no last three columns.
	Legacy
	// SuccessOnly is the SUCCESS bill (20 columns).
	SuccessOnly
	// RefundOnly is the REFUND bill (29 columns).
	RefundOnly
)

// Columns returns the detail and summary headers of a layout.
func Columns(l Layout) (detail, summary []string) {
	common := []string{"交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
		"交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额"}
	all7 := []string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}
	switch l {
	case Legacy:
		common[12], common[13] = "总金额", "企业红包金额"
		return append(common, "微信退款单号", "商户退款单号", "退款金额", "企业红包退款金额", "退款类型", "退款状态", "商品名称",
				"商户数据包", "手续费", "费率"),
			[]string{"总交易单数", "总交易额", "总退款金额", "总企业红包退款金额", "手续费总金额"}
	case SuccessOnly:
		return append(common, "商品名称", "商户数据包", "手续费", "费率", "订单金额", "费率备注"),
			[]string{"总交易单数", "应结订单总金额", "手续费总金额", "订单总金额"}
	case RefundOnly:
		return append(common, "退款申请时间", "退款成功时间", "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型",
			"退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"), all7
	}
	return append(common, "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包",
		"手续费", "费率", "订单金额", "申请退款金额", "费率备注"), all7
}

// Row is one trade-bill row. Amounts in fen; Fee in bill.FeeUnit
// (0.00001 yuan). A refund row has State "REFUND".
type Row struct {
	Time          time.Time
	AppID         string
	MchID         string
	DeviceID      string
	TransactionID string
	OutTradeNo    string
	OpenID        string
	TradeType     string
	State         string // SUCCESS or REFUND
	BankType      string
	Settlement    int64 // 应结订单金额
	Coupon        int64 // 代金券金额
	Total         int64 // 订单金额
	RefundID      string
	OutRefundNo   string
	RefundAmount  int64 // 退款金额 (settlement refund)
	CashRefund    int64 // 充值券退款金额
	RefundReq     int64 // 申请退款金额
	RefundStatus  string
	Description   string
	Attach        string
	Fee           int64
	// RefundApplyTime/RefundSuccessTime feed the REFUND layout.
	RefundApplyTime, RefundSuccessTime time.Time
}

// Totals are the summary sums of the rows written.
type Totals struct {
	Count                                                       int64
	Settlement, Refund, CashRefund, Fee, Total, RefundRequested int64
}

// Writer streams a trade bill.
type Writer struct {
	w       *bufio.Writer
	layout  Layout
	detail  []string
	summary []string
	totals  Totals
	line    []byte
	// CRLF ends lines with \r\n (as WeChat Pay does) instead of \n.
	CRLF bool
}

// NewWriter writes the header of layout to w.
func NewWriter(w io.Writer, l Layout, crlf bool) *Writer {
	d, s := Columns(l)
	tw := &Writer{w: bufio.NewWriterSize(w, 256<<10), layout: l, detail: d, summary: s, CRLF: crlf}
	tw.w.WriteString(strings.Join(d, ","))
	tw.eol()
	return tw
}

func (t *Writer) eol() {
	if t.CRLF {
		t.w.WriteString("\r\n")
	} else {
		t.w.WriteByte('\n')
	}
}

// Write appends one row.
func (t *Writer) Write(r Row) error {
	b := t.line[:0]
	for i, c := range t.detail {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '`')
		b = t.field(b, c, &r)
	}
	t.line = b
	t.w.Write(b)
	t.eol()
	t.totals.Count++
	t.totals.Settlement += r.Settlement
	t.totals.Refund += r.RefundAmount
	t.totals.CashRefund += r.CashRefund
	t.totals.Fee += r.Fee
	t.totals.Total += r.Total
	t.totals.RefundRequested += r.RefundReq
	return nil
}

func (t *Writer) field(b []byte, c string, r *Row) []byte {
	switch c {
	case "交易时间":
		return r.Time.In(ledger.Shanghai).AppendFormat(b, time.DateTime)
	case "公众账号ID":
		return append(b, r.AppID...)
	case "商户号":
		return append(b, r.MchID...)
	case "特约商户号":
		return append(b, '0')
	case "设备号":
		return append(b, r.DeviceID...)
	case "微信订单号":
		return append(b, r.TransactionID...)
	case "商户订单号":
		return append(b, r.OutTradeNo...)
	case "用户标识":
		return append(b, r.OpenID...)
	case "交易类型":
		return append(b, r.TradeType...)
	case "交易状态":
		return append(b, r.State...)
	case "付款银行":
		return append(b, r.BankType...)
	case "货币种类":
		return append(b, "CNY"...)
	case "应结订单金额", "总金额":
		return AppendYuan(b, r.Settlement, 2)
	case "代金券金额", "企业红包金额":
		return AppendYuan(b, r.Coupon, 2)
	case "微信退款单号":
		return appendOrZero(b, r.RefundID)
	case "商户退款单号":
		return appendOrZero(b, r.OutRefundNo)
	case "退款金额":
		return AppendYuan(b, r.RefundAmount, 2)
	case "充值券退款金额", "企业红包退款金额":
		return AppendYuan(b, r.CashRefund, 2)
	case "退款类型":
		if r.State == "REFUND" {
			return append(b, "ORIGINAL"...)
		}
		return b
	case "退款状态":
		return append(b, r.RefundStatus...)
	case "商品名称":
		return append(b, r.Description...)
	case "商户数据包":
		return append(b, r.Attach...)
	case "手续费":
		return AppendYuan(b, r.Fee, 5)
	case "费率":
		return append(b, "0.60%"...)
	case "订单金额":
		return AppendYuan(b, r.Total, 2)
	case "申请退款金额":
		return AppendYuan(b, r.RefundReq, 2)
	case "费率备注":
		return b
	case "退款申请时间":
		if r.RefundApplyTime.IsZero() {
			return b
		}
		return r.RefundApplyTime.In(ledger.Shanghai).AppendFormat(b, time.DateTime)
	case "退款成功时间":
		if r.RefundSuccessTime.IsZero() {
			return b
		}
		return r.RefundSuccessTime.In(ledger.Shanghai).AppendFormat(b, time.DateTime)
	}
	return b
}

func appendOrZero(b []byte, s string) []byte {
	if s == "" {
		return append(b, '0')
	}
	return append(b, s...)
}

// AppendYuan appends v (in units of 10^-scale yuan) as a decimal.
func AppendYuan(b []byte, v int64, scale int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	p := int64(1)
	for i := 0; i < scale; i++ {
		p *= 10
	}
	b = strconv.AppendInt(b, v/p, 10)
	b = append(b, '.')
	frac := strconv.AppendInt(nil, v%p, 10)
	for i := len(frac); i < scale; i++ {
		b = append(b, '0')
	}
	return append(b, frac...)
}

// Totals returns the sums of the rows written so far.
func (t *Writer) Totals() Totals { return t.totals }

// Close writes the summary section computed from the rows and flushes.
func (t *Writer) Close() error { return t.CloseWith(t.totals) }

// CloseWith writes the summary section with the given figures (tests pass
// wrong ones) and flushes.
func (t *Writer) CloseWith(s Totals) error {
	t.w.WriteString(strings.Join(t.summary, ","))
	t.eol()
	for i, c := range t.summary {
		if i > 0 {
			t.w.WriteByte(',')
		}
		t.w.WriteByte('`')
		var b []byte
		switch c {
		case "总交易单数":
			b = strconv.AppendInt(nil, s.Count, 10)
		case "应结订单总金额", "总交易额":
			b = AppendYuan(nil, s.Settlement, 2)
		case "退款总金额", "总退款金额":
			b = AppendYuan(nil, s.Refund, 2)
		case "充值券退款总金额", "总企业红包退款金额":
			b = AppendYuan(nil, s.CashRefund, 2)
		case "手续费总金额":
			b = AppendYuan(nil, s.Fee, 5)
		case "订单总金额":
			b = AppendYuan(nil, s.Total, 2)
		case "申请退款总金额":
			b = AppendYuan(nil, s.RefundRequested, 2)
		}
		t.w.Write(b)
	}
	t.eol()
	return t.w.Flush()
}

// FundRow is one fund-flow row. Amount in fen, never negative.
type FundRow struct {
	Time       time.Time
	BizOrderNo string
	FlowNo     string
	BizName    string // 交易, 退款, 扣除交易手续费...
	BizType    string
	Income     bool
	Amount     int64
	Balance    int64
	Applicant  string
	Note       string
	Voucher    string
}

// FundColumns is the fund-flow detail header (v3: ASCII parentheses).
func FundColumns() []string {
	return []string{"记账时间", "微信支付业务单号", "资金流水单号", "业务名称", "业务类型", "收支类型", "收支金额(元)", "账户结余(元)",
		"资金变更提交申请人", "备注", "业务凭证号"}
}

// FundBill renders a fund-flow bill with its summary.
func FundBill(rows []FundRow) []byte {
	var b strings.Builder
	b.WriteString(strings.Join(FundColumns(), ",") + "\r\n")
	var n, inN, outN, in, out int64
	for _, r := range rows {
		dir := "支出"
		if r.Income {
			dir = "收入"
			inN++
			in += r.Amount
		} else {
			outN++
			out += r.Amount
		}
		n++
		vals := []string{r.Time.In(ledger.Shanghai).Format(time.DateTime), r.BizOrderNo, r.FlowNo, r.BizName, r.BizType, dir,
			string(AppendYuan(nil, r.Amount, 2)), string(AppendYuan(nil, r.Balance, 2)), r.Applicant, r.Note, r.Voucher}
		b.WriteString("`" + strings.Join(vals, ",`") + "\r\n")
	}
	b.WriteString("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\r\n")
	b.WriteString("`" + strings.Join([]string{strconv.FormatInt(n, 10), strconv.FormatInt(inN, 10), string(AppendYuan(nil, in, 2)),
		strconv.FormatInt(outN, 10), string(AppendYuan(nil, out, 2))}, ",`") + "\r\n")
	return []byte(b.String())
}

// Trade renders a whole trade bill in memory.
func Trade(l Layout, rows []Row) []byte {
	var b strings.Builder
	w := NewWriter(&b, l, true)
	for _, r := range rows {
		_ = w.Write(r)
	}
	_ = w.Close()
	return []byte(b.String())
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var out strings.Builder
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return []byte(out.String())
}

// SHA1 is the hex SHA-1 of b, as hash_value carries it.
func SHA1(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}
