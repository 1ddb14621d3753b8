// Package bill reads WeChat Pay APIv3 bill files: the trade bill (交易账单)
// and the fund-flow bill (资金账单), as downloaded from
// /v3/billdownload/file (wechatpay-apiv3.md 6).
//
// The reader is streaming and header driven:
//
//   - columns are found by header name, never by position, so the plain
//     layout, the no-prepaid (免充值) layout with 订单金额/申请退款金额/费率备注,
//     the legacy names (总金额, 企业红包金额...) and the SUCCESS/REFUND
//     layouts all read through one code path; an unknown column name, a
//     duplicate or a missing required column is ErrLayout;
//   - every detail field starts with a backtick, fields are separated by
//     ",`" (so a comma inside a product name does not shift columns) and
//     trimmed; a row whose field count differs from the header is ErrFormat;
//   - the summary section (header line, one backtick line) is read and its
//     figures compared with the rows' own totals; a file that ends before
//     its summary is ErrFormat (a truncated plain file cannot pass);
//   - yuan become int64 fen by decimal parsing of the bytes (ErrAmount
//     otherwise); 手续费 keeps its five decimals in FeeUnit;
//   - rows are returned as byte slices into the reader's buffer: nothing is
//     allocated per row; copy what you keep.
//
// Integrity is the caller's first step: Digest hashes the decompressed
// bytes as they are read and Verify compares the SHA-1 with the apply
// answer's hash_value once the reader reached io.EOF. No row read before a
// successful Verify may be trusted (package reconcile only sorts and
// buffers them until then).
package bill

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
)

// Kind is the kind of a bill file, recognised from its header.
type Kind int

// Bill kinds.
const (
	KindTrade    Kind = 1 // 交易账单
	KindFundFlow Kind = 2 // 资金账单
)

func (k Kind) String() string {
	switch k {
	case KindTrade:
		return "trade"
	case KindFundFlow:
		return "fundflow"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Errors; test them with errors.Is. ParseError adds the line and column.
var (
	// ErrLayout: the header is not a layout this reader knows (unknown,
	// duplicate or missing columns), or the file is not a bill.
	ErrLayout = errors.New("bill: unknown column layout")
	// ErrFormat: the file does not follow the bill format (field count,
	// missing backtick, missing or repeated summary, bad time, line too long).
	ErrFormat = errors.New("bill: malformed bill")
	// ErrKind: NextTrade on a fund-flow bill or NextFund on a trade bill.
	ErrKind = errors.New("bill: wrong bill kind for this call")
)

// ParseError locates a failure in the file. Text is never included: bill
// rows carry openids and product names.
type ParseError struct {
	Line   int64  // 1-based line of the decompressed file
	Column string // header name, when one column is at fault
	Err    error
}

func (e *ParseError) Error() string {
	if e.Column != "" {
		return fmt.Sprintf("bill: line %d, column %s: %v", e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("bill: line %d: %v", e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// TradeRow is one detail row of a trade bill. Byte slices point into the
// reader's buffer and are valid until the next call to NextTrade.
// Absent columns are empty (amounts 0).
type TradeRow struct {
	Line          int64 // line number in the file
	Time          int64 // 交易时间, Unix seconds (the text is Asia/Shanghai time)
	AppID         []byte
	MchID         []byte
	SubMchID      []byte
	DeviceID      []byte
	TransactionID []byte // 微信订单号
	OutTradeNo    []byte // 商户订单号
	OpenID        []byte
	TradeType     []byte // JSAPI, NATIVE, APP, MWEB, MICROPAY, AUTH...
	TradeState    []byte // SUCCESS (payment rows), REFUND (refund rows), REVOKED
	BankType      []byte
	Currency      []byte
	// Settlement is 应结订单金额 = order amount − no-prepaid coupons (0 on
	// refund rows of the ALL bill).
	Settlement int64
	// Coupon is 代金券金额, the coupon amount used on the order.
	Coupon      int64
	RefundID    []byte // 微信退款单号; empty when the file says "0"
	OutRefundNo []byte // 商户退款单号; empty when the file says "0"
	// RefundAmount is 退款金额: the settlement refund (申请退款金额 − the
	// no-prepaid coupon part).
	RefundAmount int64
	// CashCouponRefund is 充值券退款金额: the prepaid (CASH) coupon part.
	CashCouponRefund int64
	RefundType       []byte
	RefundStatus     []byte // SUCCESS, PROCESSING, FAIL, CHANGE (bill vocabulary)
	Description      []byte
	Attach           []byte
	Fee              int64 // 手续费 in FeeUnit (refund rows carry the fee given back, negative)
	FeeRate          []byte
	// Total is 订单金额. Legacy layouts have no such column: it equals
	// Settlement there (no no-prepaid coupon existed) and HasTotal is false.
	Total    int64
	HasTotal bool
	// RefundRequested is 申请退款金额; legacy layouts: equals RefundAmount.
	RefundRequested   int64
	FeeNote           []byte
	RefundApplyTime   int64 // REFUND bills only, Unix seconds; 0 when absent
	RefundSuccessTime int64
}

// IsRefund reports whether the row is a refund row (交易状态 REFUND).
func (t *TradeRow) IsRefund() bool { return string(t.TradeState) == "REFUND" }

// FundRow is one detail row of a fund-flow bill; slices as in TradeRow.
type FundRow struct {
	Line       int64
	Time       int64  // 记账时间, Unix seconds
	BizOrderNo []byte // 微信支付业务单号
	FlowNo     []byte // 资金流水单号
	BizName    []byte // 业务名称
	BizType    []byte // 业务类型
	Income     bool   // 收支类型: true for 收入, false for 支出
	Amount     int64  // 收支金额, fen, as printed (never negative)
	Balance    int64  // 账户结余, fen
	HasBalance bool
	Applicant  []byte
	Note       []byte
	Voucher    []byte // 业务凭证号 (the merchant refund number on refund rows)
}

// TradeTotals are a trade bill's summary figures (declared in the file or
// computed from the rows). Amounts in fen, Fee in FeeUnit.
type TradeTotals struct {
	Count           int64 `json:"count"`
	Settlement      int64 `json:"settlement_total"`
	Refund          int64 `json:"refund_total"`
	CashCoupon      int64 `json:"cash_coupon_refund_total"`
	Fee             int64 `json:"fee_total"`
	Total           int64 `json:"order_total"`
	RefundRequested int64 `json:"refund_requested_total"`
}

// FundTotals are a fund-flow bill's summary figures.
type FundTotals struct {
	Count        int64 `json:"count"`
	IncomeCount  int64 `json:"income_count"`
	Income       int64 `json:"income"`
	ExpenseCount int64 `json:"expense_count"`
	Expense      int64 `json:"expense"`
}

// SummaryMismatch is a summary figure that disagrees with the rows.
type SummaryMismatch struct {
	Column   string `json:"column"`
	Declared int64  `json:"declared"`
	Computed int64  `json:"computed"`
	// Unit is "count", "fen" or "fee" (FeeUnit).
	Unit string `json:"unit"`
}

// MaxLineBytes bounds one line of a bill.
const MaxLineBytes = 1 << 20

// maxTitleLines bounds the title lines (no comma, e.g. "微信支付交易账单")
// some third-party mocks put before the header; the real v3 file has none
// (wechatpay-apiv3.md 6.3). They are skipped, anything else is ErrLayout.
const maxTitleLines = 3

type phase int

const (
	phaseRows phase = iota
	phaseSummaryValues
	phaseDone
)

// Reader reads a decompressed bill. It is not safe for concurrent use.
type Reader struct {
	src    io.Reader
	buf    []byte
	r, w   int
	srcErr error
	line   int64
	kind   Kind
	header []string
	nf     int
	pos    [maxCols]int // pos[meaning] = field index, -1 when absent
	fields [maxCols][]byte
	phase  phase

	sumNames []string
	sumPos   [maxCols]int // sumPos[field index] = meaning, -1 for none
	sumSeen  [maxCols]bool

	days           dayCache
	trade          TradeRow
	fund           FundRow
	declTrade      TradeTotals
	compTrade      TradeTotals
	declFund       FundTotals
	compFund       FundTotals
	declaredFields [maxCols]bool
}

// NewReader reads the header of the bill in src (decompressed text) and
// returns a reader positioned on the first row.
func NewReader(src io.Reader) (*Reader, error) {
	r := &Reader{src: src, buf: make([]byte, 256<<10)}
	for i := range r.pos {
		r.pos[i] = -1
	}
	titles := 0
	for {
		line, err := r.readLine()
		if err == io.EOF {
			return nil, &ParseError{Line: r.line, Err: fmt.Errorf("%w: no header line", ErrLayout)}
		}
		if err != nil {
			return nil, err
		}
		if r.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF")) // UTF-8 BOM
		}
		if isBlank(line) {
			continue
		}
		if bytes.IndexByte(line, ',') < 0 && titles < maxTitleLines && line[0] != '`' {
			titles++
			continue
		}
		if err := r.parseHeader(line); err != nil {
			return nil, err
		}
		return r, nil
	}
}

// Kind is the bill's kind.
func (r *Reader) Kind() Kind { return r.kind }

// Columns returns the detail header names as found.
func (r *Reader) Columns() []string { return append([]string(nil), r.header...) }

// Lines is the number of lines read so far.
func (r *Reader) Lines() int64 { return r.line }

// HasColumn reports whether the detail header has the column named name
// (a current or legacy name).
func (r *Reader) HasColumn(name string) bool {
	for _, h := range r.header {
		if h == name {
			return true
		}
	}
	return false
}

// NoPrepaidLayout reports whether the trade bill has the no-prepaid
// (免充值) columns 订单金额 and 申请退款金额 (wechatpay-apiv3.md 6.3).
func (r *Reader) NoPrepaidLayout() bool { return r.kind == KindTrade && r.pos[cTotal] >= 0 }

func (r *Reader) parseHeader(line []byte) error {
	names := strings.Split(string(line), ",")
	if len(names) > maxCols {
		return &ParseError{Line: r.line, Err: fmt.Errorf("%w: %d columns (at most %d)", ErrLayout, len(names), maxCols)}
	}
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	switch {
	case contains(names, "交易时间"):
		r.kind = KindTrade
	case contains(names, "记账时间"):
		r.kind = KindFundFlow
	default:
		return &ParseError{Line: r.line, Err: fmt.Errorf("%w: the header names neither 交易时间 (trade bill) nor 记账时间 (fund-flow bill)", ErrLayout)}
	}
	for i, name := range names {
		var c col
		var ok bool
		if r.kind == KindTrade {
			c, ok = tradeColumn(name)
		} else {
			c, ok = fundColumn(name)
		}
		if !ok {
			return &ParseError{Line: r.line, Column: name, Err: fmt.Errorf("%w: unknown %s bill column", ErrLayout, r.kind)}
		}
		if r.pos[c] >= 0 {
			return &ParseError{Line: r.line, Column: name, Err: fmt.Errorf("%w: column given twice", ErrLayout)}
		}
		r.pos[c] = i
	}
	required := requiredTradeCols()
	if r.kind == KindFundFlow {
		required = requiredFundCols()
	}
	for _, c := range required {
		if r.pos[c] < 0 {
			return &ParseError{Line: r.line, Err: fmt.Errorf("%w: required %s column %s is missing", ErrLayout, r.kind, r.columnName(c))}
		}
	}
	r.header, r.nf = names, len(names)
	return nil
}

// columnName names a meaning for messages (the header's own spelling when
// present).
func (r *Reader) columnName(c col) string {
	if p := r.pos[c]; p >= 0 && p < len(r.header) {
		return r.header[p]
	}
	if r.kind == KindFundFlow {
		return [...]string{"记账时间", "微信支付业务单号", "资金流水单号", "业务名称", "业务类型", "收支类型", "收支金额(元)",
			"账户结余(元)", "资金变更提交申请人", "备注", "业务凭证号"}[c]
	}
	return [...]string{"交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
		"交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型",
		"退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注", "退款申请时间", "退款成功时间"}[c]
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readLine returns the next line without its terminator ("\n" or "\r\n").
// The slice is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(r.buf[r.r:r.w], '\n'); i >= 0 {
			line := r.buf[r.r : r.r+i]
			r.r += i + 1
			r.line++
			return trimCR(line), nil
		}
		if r.srcErr != nil {
			if r.r < r.w { // last line without a terminator
				line := r.buf[r.r:r.w]
				r.r = r.w
				r.line++
				return trimCR(line), nil
			}
			if r.srcErr == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("bill: read after line %d: %w", r.line, r.srcErr)
		}
		if r.r > 0 {
			r.w = copy(r.buf, r.buf[r.r:r.w])
			r.r = 0
		}
		if r.w == len(r.buf) {
			if len(r.buf) >= MaxLineBytes {
				return nil, &ParseError{Line: r.line + 1, Err: fmt.Errorf("%w: line longer than %d bytes", ErrFormat, MaxLineBytes)}
			}
			nb := make([]byte, min(2*len(r.buf), MaxLineBytes))
			copy(nb, r.buf[:r.w])
			r.buf = nb
		}
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			r.srcErr = err
		}
	}
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	// Nearly every field starts and ends with a byte above ' ' (which is
	// neither a space nor a tab): one test for each end.
	if len(b) == 0 || (b[0] > ' ' && b[len(b)-1] > ' ') {
		return b
	}
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// splitValues splits a backtick line (detail row or summary values) into
// r.fields and returns the field count.
func (r *Reader) splitValues(line []byte) (int, error) {
	// Fields are separated by ",`". Backticks are found eight positions at
	// a time (SWAR: each byte of the word compared with '`' exactly, no
	// borrow crosses bytes); one that follows a comma ends a field, any
	// other is part of a value. A separator's backtick is at 2 or later.
	n, start := 0, 1
	i := 2
	for ; i+8 <= len(line); i += 8 {
		m := zeroBytes(binary.LittleEndian.Uint64(line[i:]) ^ 0x6060606060606060)
		for m != 0 {
			j := i + bits.TrailingZeros64(m)/8
			m &= m - 1
			if line[j-1] != ',' {
				continue
			}
			if n == maxCols-1 {
				return 0, &ParseError{Line: r.line, Err: fmt.Errorf("%w: more than %d fields", ErrFormat, maxCols)}
			}
			r.fields[n] = trimSpace(line[start : j-1])
			n++
			start = j + 1
		}
	}
	// The last few positions, one at a time.
	for j := i; j < len(line); j++ {
		if line[j] != '`' || line[j-1] != ',' {
			continue
		}
		if n == maxCols-1 {
			return 0, &ParseError{Line: r.line, Err: fmt.Errorf("%w: more than %d fields", ErrFormat, maxCols)}
		}
		r.fields[n] = trimSpace(line[start : j-1])
		n++
		start = j + 1
	}
	r.fields[n] = trimSpace(line[start:])
	return n + 1, nil
}

// zeroBytes sets the high bit of each byte of v that is zero, exactly:
// adding 0x7f to the low seven bits carries into the high bit unless they
// are all zero, and the OR with v catches a byte with only its high bit.
func zeroBytes(v uint64) uint64 {
	const lo7 = 0x7f7f7f7f7f7f7f7f
	return ^((v&lo7 + lo7) | v | lo7)
}

// advance moves to the next detail row (fields split into r.fields), or
// reads the summary section and returns io.EOF after the last line.
func (r *Reader) advance() error {
	for {
		line, err := r.readLine()
		if err == io.EOF {
			switch r.phase {
			case phaseRows:
				return &ParseError{Line: r.line, Err: fmt.Errorf("%w: the file ends without its summary section (truncated?)", ErrFormat)}
			case phaseSummaryValues:
				return &ParseError{Line: r.line, Err: fmt.Errorf("%w: the summary header has no values line", ErrFormat)}
			}
			return io.EOF
		}
		if err != nil {
			return err
		}
		if isBlank(line) {
			continue
		}
		switch r.phase {
		case phaseRows:
			if line[0] == '`' {
				n, err := r.splitValues(line)
				if err != nil {
					return err
				}
				if n != r.nf {
					return &ParseError{Line: r.line, Err: fmt.Errorf("%w: %d fields, the header has %d", ErrFormat, n, r.nf)}
				}
				return nil
			}
			if err := r.parseSummaryHeader(line); err != nil {
				return err
			}
			r.phase = phaseSummaryValues
		case phaseSummaryValues:
			if line[0] != '`' {
				return &ParseError{Line: r.line, Err: fmt.Errorf("%w: the summary values line must start with a backtick", ErrFormat)}
			}
			if err := r.parseSummaryValues(line); err != nil {
				return err
			}
			r.phase = phaseDone
		case phaseDone:
			return &ParseError{Line: r.line, Err: fmt.Errorf("%w: data after the summary section", ErrFormat)}
		}
	}
}

func (r *Reader) parseSummaryHeader(line []byte) error {
	names := strings.Split(string(line), ",")
	if len(names) > maxCols {
		return &ParseError{Line: r.line, Err: fmt.Errorf("%w: %d summary columns", ErrLayout, len(names))}
	}
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
		var c col
		var ok bool
		if r.kind == KindTrade {
			c, ok = tradeSummaryColumn(names[i])
		} else {
			c, ok = fundSummaryColumn(names[i])
		}
		if !ok {
			return &ParseError{Line: r.line, Column: names[i], Err: fmt.Errorf("%w: unknown %s bill summary column (or a row without its leading backtick)", ErrLayout, r.kind)}
		}
		if r.sumSeen[c] {
			return &ParseError{Line: r.line, Column: names[i], Err: fmt.Errorf("%w: summary column given twice", ErrLayout)}
		}
		r.sumSeen[c] = true
		r.sumPos[i] = int(c)
	}
	first := sCount
	if r.kind == KindFundFlow {
		first = fsCount
	}
	if !r.sumSeen[first] {
		return &ParseError{Line: r.line, Err: fmt.Errorf("%w: the summary has no row count column", ErrLayout)}
	}
	r.sumNames = names
	return nil
}

func (r *Reader) parseSummaryValues(line []byte) error {
	n, err := r.splitValues(line)
	if err != nil {
		return err
	}
	if n != len(r.sumNames) {
		return &ParseError{Line: r.line, Err: fmt.Errorf("%w: %d summary values, the summary header has %d", ErrFormat, n, len(r.sumNames))}
	}
	for i := 0; i < n; i++ {
		c := col(r.sumPos[i])
		v := r.fields[i]
		var x int64
		switch {
		case r.kind == KindTrade && c == sCount, r.kind == KindFundFlow && (c == fsCount || c == fsIncomeCount || c == fsExpenseCount):
			x, err = parseCount(v)
		case r.kind == KindTrade && c == sFee:
			x, err = ParseFee(v)
		default:
			x, err = ParseFen(v)
		}
		if err != nil {
			return &ParseError{Line: r.line, Column: r.sumNames[i], Err: err}
		}
		r.declaredFields[c] = true
		if r.kind == KindTrade {
			*tradeTotal(&r.declTrade, c) = x
		} else {
			*fundTotal(&r.declFund, c) = x
		}
	}
	return nil
}

func tradeTotal(t *TradeTotals, c col) *int64 {
	switch c {
	case sCount:
		return &t.Count
	case sSettlement:
		return &t.Settlement
	case sRefund:
		return &t.Refund
	case sCashCouponRefund:
		return &t.CashCoupon
	case sFee:
		return &t.Fee
	case sTotal:
		return &t.Total
	}
	return &t.RefundRequested
}

func fundTotal(t *FundTotals, c col) *int64 {
	switch c {
	case fsCount:
		return &t.Count
	case fsIncomeCount:
		return &t.IncomeCount
	case fsIncome:
		return &t.Income
	case fsExpenseCount:
		return &t.ExpenseCount
	}
	return &t.Expense
}

func parseCount(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, fmt.Errorf("%w: %q is not a count", ErrFormat, clip(b))
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q is not a count", ErrFormat, clip(b))
		}
		v = v*10 + int64(c-'0')
	}
	return v, nil
}

// field returns the field of meaning c, or nil when the column is absent.
func (r *Reader) field(c col) []byte {
	if p := r.pos[c]; p >= 0 {
		return r.fields[p]
	}
	return nil
}

func (r *Reader) amount(c col, fee bool) (int64, error) {
	p := r.pos[c]
	if p < 0 {
		return 0, nil
	}
	var v int64
	var err error
	if fee {
		v, err = ParseFee(r.fields[p])
	} else {
		v, err = ParseFen(r.fields[p])
	}
	if err != nil {
		return 0, &ParseError{Line: r.line, Column: r.header[p], Err: err}
	}
	return v, nil
}

func (r *Reader) time(c col, required bool) (int64, error) {
	p := r.pos[c]
	if p < 0 || (!required && len(r.fields[p]) == 0) {
		return 0, nil
	}
	t, ok := r.days.parse(r.fields[p])
	if !ok {
		return 0, &ParseError{Line: r.line, Column: r.header[p], Err: fmt.Errorf("%w: %q is not yyyy-MM-dd HH:mm:ss", ErrFormat, clip(r.fields[p]))}
	}
	return t, nil
}

// zeroAsEmpty maps the bill's "0" placeholder (no refund) to empty.
func zeroAsEmpty(b []byte) []byte {
	if len(b) == 1 && b[0] == '0' {
		return b[:0]
	}
	return b
}

// NextTrade returns the next detail row of a trade bill, or io.EOF once the
// summary section has been read and the file has ended.
func (r *Reader) NextTrade() (*TradeRow, error) {
	if r.kind != KindTrade {
		return nil, ErrKind
	}
	if err := r.advance(); err != nil {
		return nil, err
	}
	// Every field of t is assigned below: no clearing of the whole row.
	t := &r.trade
	t.Line = r.line
	var err error
	if t.Time, err = r.time(cTime, true); err != nil {
		return nil, err
	}
	t.AppID, t.MchID, t.SubMchID, t.DeviceID = r.field(cAppID), r.field(cMchID), r.field(cSubMchID), r.field(cDevice)
	t.TransactionID, t.OutTradeNo, t.OpenID = r.field(cTxnID), r.field(cOutTradeNo), r.field(cOpenID)
	t.TradeType, t.TradeState, t.BankType, t.Currency = r.field(cTradeType), r.field(cTradeState), r.field(cBank), r.field(cCurrency)
	t.RefundID, t.OutRefundNo = zeroAsEmpty(r.field(cRefundID)), zeroAsEmpty(r.field(cOutRefundNo))
	t.RefundType, t.RefundStatus = r.field(cRefundType), r.field(cRefundStatus)
	t.Description, t.Attach, t.FeeRate, t.FeeNote = r.field(cDescription), r.field(cAttach), r.field(cFeeRate), r.field(cFeeNote)
	if t.Settlement, err = r.amount(cSettlement, false); err != nil {
		return nil, err
	}
	if t.Coupon, err = r.amount(cCoupon, false); err != nil {
		return nil, err
	}
	if t.RefundAmount, err = r.amount(cRefundAmount, false); err != nil {
		return nil, err
	}
	if t.CashCouponRefund, err = r.amount(cCashCouponRefund, false); err != nil {
		return nil, err
	}
	if t.Fee, err = r.amount(cFee, true); err != nil {
		return nil, err
	}
	t.HasTotal = r.pos[cTotal] >= 0
	if t.Total, err = r.amount(cTotal, false); err != nil {
		return nil, err
	}
	if !t.HasTotal {
		t.Total = t.Settlement
	}
	if r.pos[cRefundRequested] >= 0 {
		if t.RefundRequested, err = r.amount(cRefundRequested, false); err != nil {
			return nil, err
		}
	} else {
		t.RefundRequested = t.RefundAmount
	}
	if t.RefundApplyTime, err = r.time(cRefundApplyTime, false); err != nil {
		return nil, err
	}
	if t.RefundSuccessTime, err = r.time(cRefundSuccessTime, false); err != nil {
		return nil, err
	}
	c := &r.compTrade
	c.Count++
	c.Settlement += t.Settlement
	c.Refund += t.RefundAmount
	c.CashCoupon += t.CashCouponRefund
	c.Fee += t.Fee
	c.Total += t.Total
	c.RefundRequested += t.RefundRequested
	return t, nil
}

// NextFund returns the next detail row of a fund-flow bill, or io.EOF.
func (r *Reader) NextFund() (*FundRow, error) {
	if r.kind != KindFundFlow {
		return nil, ErrKind
	}
	if err := r.advance(); err != nil {
		return nil, err
	}
	f := &r.fund
	*f = FundRow{Line: r.line}
	var err error
	if f.Time, err = r.time(fTime, true); err != nil {
		return nil, err
	}
	f.BizOrderNo, f.FlowNo, f.BizName, f.BizType = r.field(fBizOrderNo), r.field(fFlowNo), r.field(fBizName), r.field(fBizType)
	f.Applicant, f.Note, f.Voucher = r.field(fApplicant), r.field(fNote), r.field(fVoucher)
	switch dir := r.field(fDirection); string(dir) {
	case "收入":
		f.Income = true
	case "支出":
	default:
		return nil, &ParseError{Line: r.line, Column: r.columnName(fDirection), Err: fmt.Errorf("%w: %q is neither 收入 nor 支出", ErrFormat, clip(dir))}
	}
	if f.Amount, err = r.amount(fAmount, false); err != nil {
		return nil, err
	}
	if f.Amount < 0 {
		return nil, &ParseError{Line: r.line, Column: r.columnName(fAmount), Err: fmt.Errorf("%w: negative 收支金额 (the direction is 收支类型)", ErrAmount)}
	}
	if f.HasBalance = r.pos[fBalance] >= 0; f.HasBalance {
		if f.Balance, err = r.amount(fBalance, false); err != nil {
			return nil, err
		}
	}
	c := &r.compFund
	c.Count++
	if f.Income {
		c.IncomeCount++
		c.Income += f.Amount
	} else {
		c.ExpenseCount++
		c.Expense += f.Amount
	}
	return f, nil
}

// Done reports whether the whole file, summary included, has been read.
func (r *Reader) Done() bool { return r.phase == phaseDone && r.srcErr != nil && r.r == r.w }

// TradeTotals returns the declared summary of a trade bill and the totals
// computed from its rows (after io.EOF). Declared figures the layout lacks
// are 0.
func (r *Reader) TradeTotals() (declared, computed TradeTotals) { return r.declTrade, r.compTrade }

// FundTotals returns the declared and computed totals of a fund-flow bill.
func (r *Reader) FundTotals() (declared, computed FundTotals) { return r.declFund, r.compFund }

// SummaryMismatches compares the summary section with the rows (after
// io.EOF): every declared figure must equal the rows' own total. An empty
// result means the summary agrees.
func (r *Reader) SummaryMismatches() []SummaryMismatch {
	var out []SummaryMismatch
	if r.kind == KindTrade {
		for c := sCount; c < numTradeSummaryCols; c++ {
			if !r.declaredFields[c] {
				continue
			}
			d, v := *tradeTotal(&r.declTrade, c), *tradeTotal(&r.compTrade, c)
			if d != v {
				unit := "fen"
				switch c {
				case sCount:
					unit = "count"
				case sFee:
					unit = "fee"
				}
				out = append(out, SummaryMismatch{Column: tradeSummaryName(c), Declared: d, Computed: v, Unit: unit})
			}
		}
		return out
	}
	for c := fsCount; c < numFundSummaryCols; c++ {
		if !r.declaredFields[c] {
			continue
		}
		d, v := *fundTotal(&r.declFund, c), *fundTotal(&r.compFund, c)
		if d != v {
			unit := "fen"
			if c == fsCount || c == fsIncomeCount || c == fsExpenseCount {
				unit = "count"
			}
			out = append(out, SummaryMismatch{Column: fundSummaryName(c), Declared: d, Computed: v, Unit: unit})
		}
	}
	return out
}
