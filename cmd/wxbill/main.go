// Command wxbill is the operator's bill tool: it runs the billing
// function's parser and reconciler on a bill file from disk, gzipped or
// not, for instance one a finance user downloaded by hand from the
// merchant platform (before and after no-prepaid coupons were enabled the
// files differ in layout; both read).
//
//	wxbill reconcile --bill FILE [--date YYYY-MM-DD] [--ledger dynamodb|none]
//	                 [--hash SHA1] [--out DIR] [--table NAME]
//
// With --ledger dynamodb (the default) the day is reconciled against the
// ledger table (TABLE_NAME or --table; AWS credentials from the usual
// chain, DYNAMODB_ENDPOINT for DynamoDB Local). With --ledger none the bill
// is only validated and summarised: row count, sums, the seed identities
// per row, the summary section against the rows, duplicates.
//
// It prints the summary and writes report.json, differences.csv and
// summary.html into --out (default ./wxbill-<date>). Exit status: 0 clean,
// 1 differences found, 2 the bill was rejected or the command failed.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Exit statuses.
const (
	exitClean       = 0
	exitDifferences = 1
	exitFailed      = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage: wxbill reconcile --bill FILE [--date YYYY-MM-DD] [--ledger dynamodb|none] [--hash SHA1] [--out DIR] [--table NAME]`

// env is how run reads the environment (tests pass their own).
type env func(string) string

func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "reconcile" {
		fmt.Fprintln(stderr, usage)
		return exitFailed
	}
	fs := flag.NewFlagSet("wxbill reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	billPath := fs.String("bill", "", "bill file (trade bill, gzipped or plain text)")
	date := fs.String("date", "", "bill date yyyy-MM-dd (default: the day of the first row)")
	ledgerMode := fs.String("ledger", "dynamodb", "dynamodb: reconcile against the ledger table; none: validate the bill alone")
	hash := fs.String("hash", "", "SHA-1 (hash_value) to verify the decompressed file against")
	out := fs.String("out", "", "directory for report.json, differences.csv, summary.html (default ./wxbill-<date>)")
	table := fs.String("table", getenv("TABLE_NAME"), "ledger table (default $TABLE_NAME)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitFailed
	}
	if *billPath == "" || fs.NArg() > 0 || (*ledgerMode != "dynamodb" && *ledgerMode != "none") {
		fmt.Fprintln(stderr, usage)
		return exitFailed
	}
	if *date == "" {
		d, err := firstDay(*billPath)
		if err != nil {
			fmt.Fprintf(stderr, "wxbill: %v (pass --date)\n", err)
			return exitFailed
		}
		*date = d
	} else if _, ok := bill.DayOf(*date); !ok {
		fmt.Fprintf(stderr, "wxbill: --date %q is not yyyy-MM-dd\n", *date)
		return exitFailed
	}
	if *out == "" {
		*out = "wxbill-" + *date
	}
	var st store.Store
	if *ledgerMode == "dynamodb" {
		if *table == "" {
			fmt.Fprintln(stderr, "wxbill: --ledger dynamodb needs --table or TABLE_NAME (or use --ledger none)")
			return exitFailed
		}
		var err error
		if st, err = openLedger(ctx, getenv, *table); err != nil {
			fmt.Fprintf(stderr, "wxbill: %v\n", err)
			return exitFailed
		}
	}
	code, err := reconcileFile(ctx, options{bill: *billPath, date: *date, hash: *hash, out: *out, store: st}, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wxbill: %v\n", err)
		return exitFailed
	}
	return code
}

func openLedger(ctx context.Context, getenv env, table string) (store.Store, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS config: %w", err)
	}
	endpoint := getenv("DYNAMODB_ENDPOINT")
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return ddbstore.New(db, table), nil
}

// firstDay is the Shanghai day of the bill's first row.
func firstDay(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	text, _, err := bill.Open(f)
	if err != nil {
		return "", err
	}
	r, err := bill.NewReader(text)
	if err != nil {
		return "", err
	}
	row, err := r.NextTrade()
	if err != nil {
		if err == io.EOF {
			return "", errors.New("the bill has no rows to take its date from")
		}
		return "", err
	}
	return bill.FormatDay(bill.DayNumber(row.Time)), nil
}

type options struct {
	bill, date, hash, out string
	store                 store.Store // nil: --ledger none
}

func reconcileFile(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	f, err := os.Open(o.bill)
	if err != nil {
		return exitFailed, err
	}
	defer f.Close()
	tmp, err := os.MkdirTemp("", "wxbill-")
	if err != nil {
		return exitFailed, err
	}
	defer os.RemoveAll(tmp)
	report, err := reconcile.NewReport(tmp, 20)
	if err != nil {
		return exitFailed, err
	}
	defer report.Close()
	opts := reconcile.Options{Date: o.date, Sink: report.Add, TempDir: tmp, NoLedger: o.store == nil,
		Progress: func(p reconcile.Progress) {
			fmt.Fprintf(stderr, "merged %d entries in %s\n", p.Merged, p.Elapsed.Round(time.Millisecond))
		}}
	var lr *billing.LedgerReader
	if o.store != nil {
		lr = &billing.LedgerReader{Store: o.store}
		opts.Lookup = lr
	}
	rec, err := reconcile.New(opts)
	if err != nil {
		return exitFailed, err
	}
	defer rec.Close()
	start := time.Now()
	file, err := billing.StreamTradeBill(f, billing.StreamOptions{HashType: "SHA1", HashValue: o.hash, Unverified: o.hash == "",
		Progress: func(rows, bytes int64, elapsed time.Duration) {
			fmt.Fprintf(stderr, "read %d rows, %.1f MB, %.0f rows/s\n", rows, float64(bytes)/1e6, float64(rows)/elapsed.Seconds())
		}}, rec)
	if err != nil {
		return exitFailed, fmt.Errorf("%s rejected: %w", o.bill, err)
	}
	if lr != nil {
		if err := lr.Load(ctx, o.date, rec); err != nil {
			return exitFailed, err
		}
	}
	sum, err := rec.Finish(ctx)
	if err != nil {
		return exitFailed, err
	}
	if err := writeReports(o.out, sum, report); err != nil {
		return exitFailed, err
	}
	printSummary(stdout, o, file, sum, report.First(), lr, time.Since(start))
	if sum.Differences > 0 {
		return exitDifferences, nil
	}
	return exitClean, nil
}

func writeReports(dir string, sum *reconcile.Summary, report *reconcile.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := report.JSON(sum)
	if err != nil {
		return err
	}
	csv, err := report.CSV()
	if err != nil {
		return err
	}
	for name, r := range map[string]io.Reader{"report.json": js, "differences.csv": csv} {
		if err := writeFile(filepath.Join(dir, name), func(w io.Writer) error { _, err := io.Copy(w, r); return err }); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, "summary.html"), func(w io.Writer) error { return reconcile.HTML(w, sum, report.First()) })
}

func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printSummary(w io.Writer, o options, file *billing.BillFile, s *reconcile.Summary, first []reconcile.Difference, lr *billing.LedgerReader, took time.Duration) {
	layout := "legacy (no 订单金额 column)"
	if file.NoPrepaid {
		layout = "no-prepaid (订单金额, 申请退款金额)"
	}
	verified := "not verified (no --hash)"
	if file.Verified {
		verified = "verified"
	}
	fmt.Fprintf(w, "bill        %s (%s, %d columns, %s)\n", o.bill, map[bool]string{true: "gzip", false: "plain"}[file.Gzipped], file.Columns, layout)
	fmt.Fprintf(w, "date        %s\n", o.date)
	fmt.Fprintf(w, "size        %d bytes decompressed, %d rows, SHA-1 %s %s\n", file.Bytes, file.Rows, file.SHA1, verified)
	fmt.Fprintf(w, "payments    %d (Pay Score %d): 订单金额 %s, 应结订单金额 %s, 代金券金额 %s (免充值 %s)\n", s.Bill.Charges, s.Bill.PayScoreCharges,
		bill.FormatYuan(s.Bill.ChargeTotal), bill.FormatYuan(s.Bill.ChargeSettlement), bill.FormatYuan(s.Bill.ChargeCoupon), bill.FormatYuan(s.Bill.ChargeNoCash))
	fmt.Fprintf(w, "refunds     %d: 申请退款金额 %s, 退款金额 %s, 充值券退款金额 %s\n", s.Bill.Refunds, bill.FormatYuan(s.Bill.RefundTotal),
		bill.FormatYuan(s.Bill.RefundSettlement), bill.FormatYuan(s.Bill.RefundCashCoupon))
	fmt.Fprintf(w, "fees        %s\n", bill.FormatFee(s.Bill.Fee))
	if d := s.BillDeclared; d != nil {
		fmt.Fprintf(w, "summary     总交易单数 %d, 应结订单总金额 %s, 订单总金额 %s, 退款总金额 %s: %s\n", d.Count, bill.FormatYuan(d.Settlement),
			bill.FormatYuan(d.Total), bill.FormatYuan(d.Refund), map[bool]string{true: "agrees with the rows", false: "DISAGREES with the rows"}[len(s.SummaryMismatches) == 0])
	}
	if lr != nil {
		fmt.Fprintf(w, "ledger      %d payments, %d refunds (%d paged queries, %d lookups by key); matched %d\n", s.Ledger.Charges, s.Ledger.Refunds,
			lr.Stats.Queries, lr.Stats.Gets, s.Matched)
		for _, id := range s.Identities {
			fmt.Fprintf(w, "identity    %s: %s vs %s %s\n", id.Name, bill.FormatYuan(id.Left), bill.FormatYuan(id.Right), map[bool]string{true: "ok", false: "FAILS"}[id.OK])
		}
	} else {
		fmt.Fprintln(w, "ledger      none (bill validated alone)")
	}
	classes := make([]string, 0, len(s.ByClass))
	for c, n := range s.ByClass {
		if n > 0 {
			classes = append(classes, fmt.Sprintf("%s=%d", c, n))
		}
	}
	sort.Strings(classes)
	if s.Differences == 0 {
		fmt.Fprintln(w, "result      CLEAN: no differences")
	} else {
		fmt.Fprintf(w, "result      %d differences: %s\n", s.Differences, strings.Join(classes, " "))
		for _, d := range first {
			fmt.Fprintf(w, "  %-22s %-6s %-24s %s %s %s %s\n", d.Class, d.Kind, d.Key, d.Field, d.Bill, d.Ledger, d.Detail)
		}
	}
	fmt.Fprintf(w, "reports     %s/{report.json,differences.csv,summary.html}\n", o.out)
	fmt.Fprintf(w, "took        %s\n", took.Round(time.Millisecond))
}
