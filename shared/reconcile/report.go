package reconcile

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
)

// Report collects differences into temporary files as they are found (so a
// day with a million differences costs disk, not memory) and renders the
// report files: report.json, differences.csv and summary.html.
type Report struct {
	csvFile, jsonFile *os.File
	csvw              *csv.Writer
	jsonw             *bufio.Writer
	n                 int64
	first             []Difference
	keep              int
	closed            bool
}

// CSVHeader is the header of differences.csv.
func CSVHeader() []string {
	return []string{"class", "kind", "key", "transaction_id", "side", "field", "bill", "ledger", "delta_fen", "bill_line", "detail"}
}

// NewReport creates the temporary files in dir; keep differences stay in
// memory for the summary row and the API answer.
func NewReport(dir string, keep int) (*Report, error) {
	c, err := os.CreateTemp(dir, "reconcile-diff-*.csv")
	if err != nil {
		return nil, fmt.Errorf("reconcile: report: %w", err)
	}
	j, err := os.CreateTemp(dir, "reconcile-diff-*.json")
	if err != nil {
		c.Close()
		os.Remove(c.Name())
		return nil, fmt.Errorf("reconcile: report: %w", err)
	}
	rep := &Report{csvFile: c, jsonFile: j, csvw: csv.NewWriter(bufio.NewWriterSize(c, 64<<10)), jsonw: bufio.NewWriterSize(j, 64<<10), keep: keep}
	if err := rep.csvw.Write(CSVHeader()); err != nil {
		rep.Close()
		return nil, fmt.Errorf("reconcile: report: %w", err)
	}
	return rep, nil
}

// Add records one difference; it is the reconciliation's Sink.
func (rep *Report) Add(d Difference) error {
	if len(rep.first) < rep.keep {
		rep.first = append(rep.first, d)
	}
	line := ""
	if d.Line > 0 {
		line = strconv.FormatInt(d.Line, 10)
	}
	delta := ""
	if d.DeltaFen != 0 {
		delta = strconv.FormatInt(d.DeltaFen, 10)
	}
	if err := rep.csvw.Write([]string{string(d.Class), d.Kind, cell(d.Key), cell(d.TransactionID), d.Side, d.Field, cell(d.Bill), cell(d.Ledger),
		delta, line, cell(d.Detail)}); err != nil {
		return fmt.Errorf("reconcile: report: %w", err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("reconcile: report: %w", err)
	}
	if rep.n > 0 {
		rep.jsonw.WriteByte(',')
	}
	if _, err := rep.jsonw.Write(b); err != nil {
		return fmt.Errorf("reconcile: report: %w", err)
	}
	rep.n++
	return nil
}

// cell keeps spreadsheet programs from reading text as a formula (finance
// users open differences.csv in Excel): text starting with = + - @ gets a
// leading apostrophe, unless it is a plain number.
func cell(s string) string {
	if s == "" || !strings.ContainsAny(s[:1], "=+-@\t\r") {
		return s
	}
	if _, err := bill.ParseFen([]byte(s)); err == nil {
		return s
	}
	return "'" + s
}

// Count is how many differences were added.
func (rep *Report) Count() int64 { return rep.n }

// First returns the first differences kept in memory.
func (rep *Report) First() []Difference { return append([]Difference(nil), rep.first...) }

func (rep *Report) flush() error {
	rep.csvw.Flush()
	if err := rep.csvw.Error(); err != nil {
		return fmt.Errorf("reconcile: report: %w", err)
	}
	if err := rep.jsonw.Flush(); err != nil {
		return fmt.Errorf("reconcile: report: %w", err)
	}
	return nil
}

// CSV returns differences.csv.
func (rep *Report) CSV() (io.Reader, error) {
	if err := rep.flush(); err != nil {
		return nil, err
	}
	return io.NewSectionReader(rep.csvFile, 0, 1<<62), nil
}

// JSON returns report.json: {"summary": ..., "differences": [...]}.
func (rep *Report) JSON(s *Summary) (io.Reader, error) {
	if err := rep.flush(); err != nil {
		return nil, err
	}
	head, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("reconcile: report: %w", err)
	}
	return io.MultiReader(strings.NewReader(`{"summary":`), strings.NewReader(string(head)), strings.NewReader(`,"differences":[`),
		io.NewSectionReader(rep.jsonFile, 0, 1<<62), strings.NewReader("]}\n")), nil
}

// Close removes the temporary files.
func (rep *Report) Close() error {
	if rep.closed {
		return nil
	}
	rep.closed = true
	return errors.Join(rep.csvFile.Close(), os.Remove(rep.csvFile.Name()), rep.jsonFile.Close(), os.Remove(rep.jsonFile.Name()))
}

// HTML writes summary.html: the counts and sums of both sides, the
// difference classes, the seed identities, a chart of the day by hour and
// the first differences.
func HTML(w io.Writer, s *Summary, first []Difference) error {
	type bar struct {
		X, Y, H, W float64
		Title      string
		Refund     bool
	}
	type classRow struct {
		Class Class
		Count int64
	}
	var maxAmt int64 = 1
	for _, h := range s.Hourly {
		maxAmt = max(maxAmt, h.ChargeAmount, h.RefundAmount)
	}
	const chartH, barW = 120.0, 9.0
	var bars []bar
	for i, h := range s.Hourly {
		x := 30 + float64(i)*22
		ch := chartH * float64(h.ChargeAmount) / float64(maxAmt)
		rh := chartH * float64(h.RefundAmount) / float64(maxAmt)
		bars = append(bars,
			bar{X: x, Y: 10 + chartH - ch, H: ch, W: barW, Title: fmt.Sprintf("%02d:00 payments %d, %s yuan", i, h.Charges, bill.FormatYuan(h.ChargeAmount))},
			bar{X: x + barW, Y: 10 + chartH - rh, H: rh, W: barW, Refund: true, Title: fmt.Sprintf("%02d:00 refunds %d, %s yuan", i, h.Refunds, bill.FormatYuan(h.RefundAmount))})
	}
	var classes []classRow
	for _, c := range Classes() {
		classes = append(classes, classRow{c, s.ByClass[c]})
	}
	type label struct {
		X    float64
		Text string
	}
	var labels []label
	for _, h := range []int{0, 6, 12, 18, 23} {
		labels = append(labels, label{X: 30 + float64(h)*22, Text: fmt.Sprintf("%02d:00", h)})
	}
	data := struct {
		S       *Summary
		Bars    []bar
		Labels  []label
		Classes []classRow
		First   []Difference
		MaxAmt  string
	}{s, bars, labels, classes, first, bill.FormatYuan(maxAmt)}
	t, err := template.New("summary").Funcs(template.FuncMap{"yuan": bill.FormatYuan, "fee": bill.FormatFee}).Parse(summaryHTML)
	if err != nil {
		return fmt.Errorf("reconcile: html: %w", err)
	}
	if err := t.Execute(w, data); err != nil {
		return fmt.Errorf("reconcile: html: %w", err)
	}
	return nil
}

const summaryHTML = `<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>Reconciliation {{.S.Date}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}.ok{color:#070}.bad{color:#b00;font-weight:bold}.c{fill:#2a7}.r{fill:#d44}</style></head><body>
<h1>WeChat Pay reconciliation {{.S.Date}}</h1>
<p class="{{if .S.Clean}}ok{{else}}bad{{end}}">{{if .S.Clean}}Clean: every row of the bill matches the ledger.{{else}}{{.S.Differences}} difference(s).{{end}}
 Matched: {{.S.Matched}}. Lookups by key: {{.S.Lookups}}.</p>
<table><tr><th></th><th>Bill</th><th>Ledger</th></tr>
<tr><td>Payments</td><td>{{.S.Bill.Charges}}</td><td>{{.S.Ledger.Charges}}</td></tr>
<tr><td>of which Pay Score</td><td>{{.S.Bill.PayScoreCharges}}</td><td>{{.S.Ledger.PayScoreCharges}}</td></tr>
<tr><td>订单金额 (total)</td><td>{{yuan .S.Bill.ChargeTotal}}</td><td>{{yuan .S.Ledger.ChargeTotal}}</td></tr>
<tr><td>Paid by users</td><td>{{yuan .S.Bill.ChargePayer}}</td><td>{{yuan .S.Ledger.ChargePayer}}</td></tr>
<tr><td>应结订单金额 (settlement)</td><td>{{yuan .S.Bill.ChargeSettlement}}</td><td>{{yuan .S.Ledger.ChargeSettlement}}</td></tr>
<tr><td>代金券金额 (coupons)</td><td>{{yuan .S.Bill.ChargeCoupon}}</td><td>{{yuan .S.Ledger.ChargeCoupon}}</td></tr>
<tr><td>免充值 (no-prepaid)</td><td>{{yuan .S.Bill.ChargeNoCash}}</td><td>{{yuan .S.Ledger.ChargeNoCash}}</td></tr>
<tr><td>Refunds</td><td>{{.S.Bill.Refunds}}</td><td>{{.S.Ledger.Refunds}}</td></tr>
<tr><td>申请退款金额 (refund)</td><td>{{yuan .S.Bill.RefundTotal}}</td><td>{{yuan .S.Ledger.RefundTotal}}</td></tr>
<tr><td>退款金额 (settlement refund)</td><td>{{yuan .S.Bill.RefundSettlement}}</td><td>{{yuan .S.Ledger.RefundSettlement}}</td></tr>
<tr><td>充值券退款金额</td><td>{{yuan .S.Bill.RefundCashCoupon}}</td><td>{{yuan .S.Ledger.RefundCashCoupon}}</td></tr>
<tr><td>手续费 (fees)</td><td>{{fee .S.Bill.Fee}}</td><td></td></tr></table>
<h2>The day by hour</h2>
<svg width="570" height="150" role="img" aria-label="payments and refunds by hour, max {{.MaxAmt}} yuan">
{{range .Bars}}<rect class="{{if .Refund}}r{{else}}c{{end}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect>{{end}}
<line x1="28" y1="130" x2="560" y2="130" stroke="#888"/>
{{range .Labels}}<text x="{{.X}}" y="145" font-size="9">{{.Text}}</text>{{end}}
</svg>
<p><span style="color:#2a7">■</span> payments <span style="color:#d44">■</span> refunds (tallest bar = {{.MaxAmt}} yuan)</p>
<h2>Differences by class</h2>
<table><tr><th>Class</th><th>Count</th></tr>{{range .Classes}}<tr><td>{{.Class}}</td><td class="{{if .Count}}bad{{else}}ok{{end}}">{{.Count}}</td></tr>{{end}}</table>
<h2>Identities (seed Q7)</h2>
<table><tr><th>Identity</th><th>Left</th><th>Right</th><th></th></tr>{{range .S.Identities}}<tr><td>{{.Name}}</td><td>{{yuan .Left}}</td><td>{{yuan .Right}}</td><td class="{{if .OK}}ok{{else}}bad{{end}}">{{if .OK}}✓{{else}}✗{{end}}</td></tr>{{end}}</table>
{{if .S.SummaryMismatches}}<h2>Bill summary vs rows</h2><table><tr><th>Bill</th><th>Column</th><th>Declared</th><th>Rows</th></tr>{{range .S.SummaryMismatches}}<tr><td>{{.Bill}}</td><td>{{.Column}}</td><td>{{.Declared}}</td><td>{{.Computed}}</td></tr>{{end}}</table>{{end}}
{{if .S.FundFlow}}<h2>Fund flow ({{.S.FundFlow.Account}})</h2><table><tr><th></th><th>Count</th><th>Amount</th></tr>
<tr><td>收入 (income)</td><td>{{.S.FundFlow.Computed.IncomeCount}}</td><td>{{yuan .S.FundFlow.Computed.Income}}</td></tr>
<tr><td>支出 (expense)</td><td>{{.S.FundFlow.Computed.ExpenseCount}}</td><td>{{yuan .S.FundFlow.Computed.Expense}}</td></tr></table>{{end}}
{{if .First}}<h2>First differences</h2><table><tr><th>Class</th><th>Kind</th><th>Key</th><th>Field</th><th>Bill</th><th>Ledger</th><th>Line</th><th>Detail</th></tr>
{{range .First}}<tr><td>{{.Class}}</td><td>{{.Kind}}</td><td>{{.Key}}</td><td>{{.Field}}</td><td>{{.Bill}}</td><td>{{.Ledger}}</td><td>{{if .Line}}{{.Line}}{{end}}</td><td>{{.Detail}}</td></tr>{{end}}</table>{{end}}
</body></html>
`
