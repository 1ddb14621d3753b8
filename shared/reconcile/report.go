package reconcile

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html"
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
// the first differences. It is built with html.EscapeString rather than
// html/template: template execution calls methods by name, which keeps
// every exported method of every linked type in the Lambda binary (the
// whole S3 and DynamoDB clients, about 9 MB).
func HTML(w io.Writer, s *Summary, first []Difference) error {
	var b strings.Builder
	e := html.EscapeString
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>Reconciliation %s</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}.ok{color:#070}.bad{color:#b00;font-weight:bold}.c{fill:#2a7}.r{fill:#d44}</style></head><body>
<h1>WeChat Pay reconciliation %s</h1>
`, e(s.Date), e(s.Date))
	if s.Clean() {
		p(`<p class="ok">Clean: every row of the bill matches the ledger.`)
	} else {
		p(`<p class="bad">%d difference(s).`, s.Differences)
	}
	p(" Matched: %d. Lookups by key: %d.</p>\n", s.Matched, s.Lookups)
	yuan := bill.FormatYuan
	p("<table><tr><th></th><th>Bill</th><th>Ledger</th></tr>\n")
	rows := []struct {
		name         string
		bill, ledger string
	}{
		{"Payments", fmt.Sprint(s.Bill.Charges), fmt.Sprint(s.Ledger.Charges)},
		{"of which Pay Score", fmt.Sprint(s.Bill.PayScoreCharges), fmt.Sprint(s.Ledger.PayScoreCharges)},
		{"订单金额 (total)", yuan(s.Bill.ChargeTotal), yuan(s.Ledger.ChargeTotal)},
		{"Paid by users", yuan(s.Bill.ChargePayer), yuan(s.Ledger.ChargePayer)},
		{"应结订单金额 (settlement)", yuan(s.Bill.ChargeSettlement), yuan(s.Ledger.ChargeSettlement)},
		{"代金券金额 (coupons)", yuan(s.Bill.ChargeCoupon), yuan(s.Ledger.ChargeCoupon)},
		{"免充值 (no-prepaid)", yuan(s.Bill.ChargeNoCash), yuan(s.Ledger.ChargeNoCash)},
		{"Refunds", fmt.Sprint(s.Bill.Refunds), fmt.Sprint(s.Ledger.Refunds)},
		{"申请退款金额 (refund)", yuan(s.Bill.RefundTotal), yuan(s.Ledger.RefundTotal)},
		{"退款金额 (settlement refund)", yuan(s.Bill.RefundSettlement), yuan(s.Ledger.RefundSettlement)},
		{"充值券退款金额", yuan(s.Bill.RefundCashCoupon), yuan(s.Ledger.RefundCashCoupon)},
		{"手续费 (fees)", bill.FormatFee(s.Bill.Fee), ""},
	}
	for _, r := range rows {
		p("<tr><td>%s</td><td>%s</td><td>%s</td></tr>\n", e(r.name), e(r.bill), e(r.ledger))
	}
	p("</table>\n<h2>The day by hour</h2>\n")
	var maxAmt int64 = 1
	for _, h := range s.Hourly {
		maxAmt = max(maxAmt, h.ChargeAmount, h.RefundAmount)
	}
	const chartH, barW = 120.0, 9.0
	p(`<svg width="570" height="150" role="img" aria-label="payments and refunds by hour, max %s yuan">`+"\n", yuan(maxAmt))
	for i, h := range s.Hourly {
		x := 30 + float64(i)*22
		ch := chartH * float64(h.ChargeAmount) / float64(maxAmt)
		rh := chartH * float64(h.RefundAmount) / float64(maxAmt)
		p(`<rect class="c" x="%.0f" y="%.1f" width="%.0f" height="%.1f"><title>%02d:00 payments %d, %s yuan</title></rect>`,
			x, 10+chartH-ch, barW, ch, i, h.Charges, yuan(h.ChargeAmount))
		p(`<rect class="r" x="%.0f" y="%.1f" width="%.0f" height="%.1f"><title>%02d:00 refunds %d, %s yuan</title></rect>`+"\n",
			x+barW, 10+chartH-rh, barW, rh, i, h.Refunds, yuan(h.RefundAmount))
	}
	p(`<line x1="28" y1="130" x2="560" y2="130" stroke="#888"/>`)
	for _, h := range []int{0, 6, 12, 18, 23} {
		p(`<text x="%d" y="145" font-size="9">%02d:00</text>`, 30+h*22, h)
	}
	p("</svg>\n<p><span style=\"color:#2a7\">■</span> payments <span style=\"color:#d44\">■</span> refunds (tallest bar = %s yuan)</p>\n", yuan(maxAmt))
	p("<h2>Differences by class</h2>\n<table><tr><th>Class</th><th>Count</th></tr>")
	for _, c := range Classes() {
		n := s.ByClass[c]
		p(`<tr><td>%s</td><td class="%s">%d</td></tr>`, e(string(c)), map[bool]string{true: "bad", false: "ok"}[n > 0], n)
	}
	p("</table>\n<h2>Identities (seed Q7)</h2>\n<table><tr><th>Identity</th><th>Left</th><th>Right</th><th></th></tr>")
	for _, id := range s.Identities {
		mark := `<td class="ok">✓</td>`
		if !id.OK {
			mark = `<td class="bad">✗</td>`
		}
		p("<tr><td>%s</td><td>%s</td><td>%s</td>%s</tr>", e(id.Name), yuan(id.Left), yuan(id.Right), mark)
	}
	p("</table>\n")
	if len(s.SummaryMismatches) > 0 {
		p("<h2>Bill summary vs rows</h2><table><tr><th>Bill</th><th>Column</th><th>Declared</th><th>Rows</th></tr>")
		for _, m := range s.SummaryMismatches {
			p("<tr><td>%s</td><td>%s</td><td>%d</td><td>%d</td></tr>", e(m.Bill), e(m.Column), m.Declared, m.Computed)
		}
		p("</table>\n")
	}
	if f := s.FundFlow; f != nil {
		p("<h2>Fund flow (%s)</h2><table><tr><th></th><th>Count</th><th>Amount</th></tr>", e(f.Account))
		p("<tr><td>收入 (income)</td><td>%d</td><td>%s</td></tr>", f.Computed.IncomeCount, yuan(f.Computed.Income))
		p("<tr><td>支出 (expense)</td><td>%d</td><td>%s</td></tr></table>\n", f.Computed.ExpenseCount, yuan(f.Computed.Expense))
	}
	if len(first) > 0 {
		p("<h2>First differences</h2><table><tr><th>Class</th><th>Kind</th><th>Key</th><th>Field</th><th>Bill</th><th>Ledger</th><th>Line</th><th>Detail</th></tr>\n")
		for _, d := range first {
			line := ""
			if d.Line > 0 {
				line = fmt.Sprint(d.Line)
			}
			p("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", e(string(d.Class)), e(d.Kind),
				e(d.Key), e(d.Field), e(d.Bill), e(d.Ledger), line, e(d.Detail))
		}
		p("</table>\n")
	}
	p("</body></html>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("reconcile: html: %w", err)
	}
	return nil
}
