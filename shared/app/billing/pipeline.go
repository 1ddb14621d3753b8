package billing

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/blobstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/metrics"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// WeChatAPI is what the pipeline needs of *wxpay.Client: signed, verified
// API calls and the unsigned bill download.
type WeChatAPI interface {
	Do(ctx context.Context, req wxpay.Request, out any) (*wxpay.Response, error)
	Download(ctx context.Context, rawURL string) (io.ReadCloser, error)
}

// Backoff bounds the waiting for a bill that is not generated yet
// (STATEMENT_CREATING, wechatpay-apiv3.md 6.1).
type Backoff struct {
	// Attempts is how many times the bill is applied for in one run;
	// 1 means no waiting.
	Attempts int
	// Initial is the first wait, doubled per attempt up to Max.
	Initial, Max time.Duration
	// Reserve is time kept for the rest of the run: no wait starts that
	// would end closer than Reserve to the invocation's deadline.
	Reserve time.Duration
}

// DefaultBackoff is the scheduled run's: 30 s, 60 s, 120 s (and the Lambda
// asynchronous retries after that, each with the same backoff).
func DefaultBackoff() Backoff {
	return Backoff{Attempts: 4, Initial: 30 * time.Second, Max: 2 * time.Minute, Reserve: 90 * time.Second}
}

// Pipeline downloads, verifies, stores and reconciles one bill date.
type Pipeline struct {
	WeChat  WeChatAPI
	Store   store.Store
	Bills   blobstore.Store
	Log     *slog.Logger
	Metrics *metrics.EMF
	Now     func() time.Time
	// Sleep waits between not-ready attempts (tests advance a clock).
	Sleep    func(ctx context.Context, d time.Duration) error
	NotReady Backoff
	// TempDir holds the sort runs and report spools (Lambda: /tmp).
	TempDir string
	// ChunkBytes is the reconciler's in-memory chunk per side.
	ChunkBytes int
	// LeaseTTL bounds a run's hold on its date (default 15 min, the
	// Lambda maximum).
	LeaseTTL time.Duration
	// KeepDifferences is how many differences the record keeps inline.
	KeepDifferences int
	// LookupLimit bounds lookups by key of unmatched bill rows.
	LookupLimit int
	// LedgerPageSize is the Limit of each day-index Query (default 500).
	LedgerPageSize int32
}

// Errors of a run; match them with errors.Is / errors.As.
var (
	// ErrRunning: another run holds the date.
	ErrRunning = errors.New("billing: a reconciliation of this date is already running")
	// ErrNotConfigured: the function has no bill storage or WeChat client.
	ErrNotConfigured = errors.New("billing: bill storage or the WeChat Pay client is not configured")
)

// NotReadyError: WeChat Pay had not generated the bill after every
// attempt of the run. The run is pending, not failed.
type NotReadyError struct {
	Date     string
	Bill     string
	Attempts int
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("billing: the %s of %s is not ready (STATEMENT_CREATING) after %d attempts", e.Bill, e.Date, e.Attempts)
}

// RejectedError: a downloaded bill failed verification or parsing. No
// result was written; the raw file is kept under RawKey.
type RejectedError struct {
	Code   string // HASH_MISMATCH, TRUNCATED, CORRUPT_GZIP, UNKNOWN_LAYOUT, BAD_AMOUNT, MALFORMED
	Bill   string
	RawKey string
	Err    error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("billing: %s rejected (%s), raw file kept at %s: %v", e.Bill, e.Code, e.RawKey, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// rejection classifies a bill failure; "" when it is not the file's fault.
func rejection(err error) string {
	switch {
	case errors.Is(err, bill.ErrHashMismatch), errors.Is(err, bill.ErrHashType), errors.Is(err, ErrUnverified):
		return "HASH_MISMATCH"
	case errors.Is(err, bill.ErrTruncated):
		return "TRUNCATED"
	case errors.Is(err, bill.ErrCorrupt):
		return "CORRUPT_GZIP"
	case errors.Is(err, bill.ErrLayout):
		return "UNKNOWN_LAYOUT"
	case errors.Is(err, bill.ErrAmount):
		return "BAD_AMOUNT"
	case errors.Is(err, bill.ErrFormat), errors.Is(err, reconcile.ErrEntry):
		return "MALFORMED"
	}
	return ""
}

func (p *Pipeline) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *Pipeline) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

func (p *Pipeline) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run reconciles date (yyyy-MM-dd, Asia/Shanghai), which the caller has
// validated. It returns the record as written, and an error for every
// outcome but DONE and EMPTY: ErrRunning, *NotReadyError (the record says
// PENDING), *RejectedError or another failure (FAILED).
func (p *Pipeline) Run(ctx context.Context, date, trigger string) (*Record, error) {
	if p.WeChat == nil || p.Bills == nil || p.Store == nil {
		return nil, ErrNotConfigured
	}
	start := p.now()
	runID, err := newRunID(start)
	if err != nil {
		return nil, err
	}
	rec := &Record{BillDate: date, Status: StatusRunning, RunID: runID, Trigger: trigger, StartedAt: ledger.WechatTime(start)}
	ttl := p.LeaseTTL
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	err = p.Store.Update(ctx, &store.Update{Key: RunKey(date), AllowMissing: true,
		ExpectBefore: map[string]any{"lease_until": ledger.WechatTime(start)},
		Set: map[string]any{"bill_date": date, "status": StatusRunning, "run_id": runID, "trigger": trigger, "started_at": rec.StartedAt,
			"lease_until": ledger.WechatTime(start.Add(ttl)), "error_code": "", "error": "", "attempts": 0}})
	if errors.Is(err, store.ErrConflict) {
		return nil, ErrRunning
	}
	if err != nil {
		return nil, fmt.Errorf("billing: take the %s lease: %w", date, err)
	}
	log := p.log().With("bill_date", date, "run_id", runID, "trigger", trigger)
	log.InfoContext(ctx, "reconciliation started")

	out, runErr := p.run(ctx, log, date, runID, rec)
	end := p.now()
	rec.FinishedAt, rec.DurationMS = ledger.WechatTime(end), end.Sub(start).Milliseconds()
	// Releasing the lease: "" sorts before every time.
	set := map[string]any{"finished_at": rec.FinishedAt, "lease_until": "", "duration_ms": rec.DurationMS}
	if rec.TradeBill != nil {
		set["trade_bill"] = rec.TradeBill
	}
	if rec.FundFlowBill != nil {
		set["fundflow_bill"] = rec.FundFlowBill
	}
	var nr *NotReadyError
	var rj *RejectedError
	switch {
	case runErr == nil:
		set["status"] = rec.Status
		set["result_run_id"], set["result_at"] = runID, rec.FinishedAt
		set["differences"], set["by_class"], set["reports"] = rec.Differences, rec.ByClass, rec.Reports
		set["summary_json"], set["first_differences_json"], set["ledger"] = rec.SummaryJSON, rec.FirstJSON, rec.Ledger
	case errors.As(runErr, &nr):
		rec.Status, rec.ErrorCode, rec.Error, rec.Attempts = StatusPending, "NOT_READY", nr.Error(), nr.Attempts
		set["status"], set["error_code"], set["error"], set["attempts"] = rec.Status, rec.ErrorCode, rec.Error, rec.Attempts
		p.Metrics.Count("BillNotReady", 1, map[string]string{"Function": "billing"})
	default:
		rec.Status, rec.ErrorCode, rec.Error = StatusFailed, "RUN_FAILED", runErr.Error()
		if errors.As(runErr, &rj) {
			rec.ErrorCode = rj.Code
			p.Metrics.Count("BillRejected", 1, map[string]string{"Function": "billing", "Reason": rj.Code})
		}
		set["status"], set["error_code"], set["error"] = rec.Status, rec.ErrorCode, rec.Error
	}
	// The run's own lease guards the write: a run that lost its lease (it
	// outlived LeaseTTL) must not overwrite a newer run's record.
	if err := p.Store.Update(context.WithoutCancel(ctx), &store.Update{Key: RunKey(date), Set: set, Expect: map[string]any{"run_id": runID}}); err != nil {
		return rec, errors.Join(runErr, fmt.Errorf("billing: record the run: %w", err))
	}
	p.Metrics.Count("ReconciliationRuns", 1, map[string]string{"Function": "billing", "Status": rec.Status})
	attrs := []any{"status", rec.Status, "duration_ms", rec.DurationMS}
	if rec.TradeBill != nil {
		mbps := 0.0
		if rec.DurationMS > 0 {
			mbps = float64(rec.TradeBill.Bytes) / 1e6 / (float64(rec.DurationMS) / 1000)
		}
		attrs = append(attrs, "trade_rows", rec.TradeBill.Rows, "trade_bytes", rec.TradeBill.Bytes, "trade_raw_bytes", rec.TradeBill.RawBytes,
			"hash_verified", rec.TradeBill.Verified, "mb_per_s", fmt.Sprintf("%.1f", mbps))
	}
	if rec.FundFlowBill != nil {
		attrs = append(attrs, "fundflow_rows", rec.FundFlowBill.Rows)
	}
	if runErr != nil {
		attrs = append(attrs, "error_code", rec.ErrorCode, "error", runErr.Error())
		if nr != nil {
			log.WarnContext(ctx, "reconciliation pending: bill not ready", attrs...)
		} else {
			log.ErrorContext(ctx, "reconciliation failed", attrs...)
		}
		return rec, runErr
	}
	if out != nil {
		attrs = append(attrs, "matched", out.Matched, "differences", out.Differences, "ledger_queries", rec.Ledger.Queries, "ledger_gets", rec.Ledger.Gets)
		for _, c := range reconcile.Classes() {
			n := out.ByClass[c]
			p.Metrics.Count("ReconciliationDifferences", float64(n), map[string]string{"Function": "billing", "Class": string(c)})
			if n > 0 {
				attrs = append(attrs, "diff_"+string(c), n)
			}
		}
	}
	log.InfoContext(ctx, "reconciliation finished", attrs...)
	return rec, nil
}

func newRunID(t time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("billing: run id: %w", err)
	}
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

// applyAnswer is the answer of /v3/bill/tradebill and /v3/bill/fundflowbill.
type applyAnswer struct {
	HashType    string `json:"hash_type"`
	HashValue   string `json:"hash_value"`
	DownloadURL string `json:"download_url"`
}

// apply asks for a bill, waiting with backoff while it is being generated.
// noStatement reports NO_STATEMENT_EXIST.
func (p *Pipeline) apply(ctx context.Context, log *slog.Logger, date, kind, path string, q url.Values) (ans *applyAnswer, noStatement bool, err error) {
	b := p.NotReady
	if b.Attempts <= 0 {
		b.Attempts = 1
	}
	delay := b.Initial
	for attempt := 1; ; attempt++ {
		ans = &applyAnswer{}
		_, err = p.WeChat.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: path, Query: q}, ans)
		switch {
		case err == nil:
			if ans.DownloadURL == "" {
				return nil, false, fmt.Errorf("billing: %s answer without download_url", path)
			}
			return ans, false, nil
		case wxpay.IsCode(err, "NO_STATEMENT_EXIST"):
			return nil, true, nil
		case !wxpay.IsCode(err, "STATEMENT_CREATING"):
			return nil, false, fmt.Errorf("billing: apply for the %s: %w", kind, err)
		}
		if attempt >= b.Attempts {
			return nil, false, &NotReadyError{Date: date, Bill: kind, Attempts: attempt}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay+b.Reserve {
			return nil, false, &NotReadyError{Date: date, Bill: kind, Attempts: attempt}
		}
		log.InfoContext(ctx, "bill not ready, waiting", "bill", kind, "attempt", attempt, "wait", delay.String())
		if err := p.sleep(ctx, delay); err != nil {
			return nil, false, err
		}
		delay = min(2*delay, max(b.Max, b.Initial))
	}
}

// fetch applies for one bill and downloads it at once (the download_url
// lives 30 s to 5 min, wechatpay-apiv3.md 6.1). An expired link
// (INVALID_REQUEST) is applied for again, once.
func (p *Pipeline) fetch(ctx context.Context, log *slog.Logger, tmp, date, runID, kind, path string, q url.Values,
	read func(src io.Reader, o StreamOptions) (*BillFile, error)) (*BillFile, error) {
	for try := 1; ; try++ {
		ans, noStatement, err := p.apply(ctx, log, date, kind, path, q)
		if err != nil {
			return nil, err
		}
		if noStatement {
			return &BillFile{Kind: kind, NoStatement: true}, nil
		}
		body, err := p.WeChat.Download(ctx, ans.DownloadURL)
		if wxpay.IsCode(err, wxpay.CodeInvalidRequest) && try == 1 {
			log.WarnContext(ctx, "bill download link refused (expired?), applying again", "bill", kind, "error", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("billing: download the %s: %w", kind, err)
		}
		return p.store(ctx, log, tmp, date, runID, kind, body, StreamOptions{HashType: ans.HashType, HashValue: ans.HashValue}, read)
	}
}

// store receives the download at network speed into a temporary file while
// copying it to the bill store (the raw file is kept whatever follows),
// then hands the file to read: gunzip, SHA-1, parse. Downloading first
// keeps the HTTP exchange short whatever the parsing costs (the body is
// bounded by ctx, the run's deadline); memory stays one buffer either way.
func (p *Pipeline) store(ctx context.Context, log *slog.Logger, tmp, date, runID, kind string, body io.ReadCloser, o StreamOptions,
	read func(src io.Reader, o StreamOptions) (*BillFile, error)) (*BillFile, error) {
	defer body.Close()
	f := &BillFile{Kind: kind}
	rawKey := fmt.Sprintf("bills/%s/%s/%s.csv.gz", date, runID, kind)
	file, err := os.CreateTemp(tmp, kind+"-*.gz")
	if err != nil {
		return f, fmt.Errorf("billing: temp file: %w", err)
	}
	defer file.Close()
	pr, pw := io.Pipe()
	type result struct {
		n   int64
		err error
	}
	uploaded := make(chan result, 1)
	go func() {
		n, err := p.Bills.Put(ctx, rawKey, pr, "application/gzip")
		pr.CloseWithError(err) // a failed upload stops the download too
		uploaded <- result{n, err}
	}()
	n, copyErr := io.Copy(io.MultiWriter(file, pw), body)
	pw.CloseWithError(copyErr)
	up := <-uploaded
	f.RawBytes = n
	switch {
	case copyErr != nil && up.err == nil:
		return f, fmt.Errorf("billing: download the %s: %w", kind, copyErr)
	case up.err != nil:
		return f, fmt.Errorf("billing: keep the raw %s: %w", kind, up.err)
	}
	f.RawKey = rawKey
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return f, fmt.Errorf("billing: temp file: %w", err)
	}
	o.Progress = func(rows, bytes int64, elapsed time.Duration) {
		log.InfoContext(ctx, "bill progress", "bill", kind, "rows", rows, "bytes", bytes, "rows_per_s", int64(float64(rows)/elapsed.Seconds()),
			"mb_per_s", fmt.Sprintf("%.1f", float64(bytes)/1e6/elapsed.Seconds()))
	}
	got, readErr := read(bufio.NewReaderSize(file, 256<<10), o)
	if got != nil {
		got.RawKey, got.RawBytes = rawKey, n
		f = got
	}
	if readErr != nil {
		if code := rejection(readErr); code != "" {
			return f, &RejectedError{Code: code, Bill: kind, RawKey: rawKey, Err: readErr}
		}
		return f, readErr
	}
	return f, nil
}

// summaryOut is what run hands back to Run for the final log line.
type summaryOut = reconcile.Summary

func (p *Pipeline) run(ctx context.Context, log *slog.Logger, date, runID string, rec *Record) (*summaryOut, error) {
	tmp, err := os.MkdirTemp(p.TempDir, "billing-"+date+"-")
	if err != nil {
		return nil, fmt.Errorf("billing: temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	lr := &LedgerReader{Store: p.Store, PageSize: p.LedgerPageSize}
	keep := p.KeepDifferences
	if keep <= 0 {
		keep = 20
	}
	report, err := reconcile.NewReport(tmp, keep)
	if err != nil {
		return nil, err
	}
	defer report.Close()
	rc, err := reconcile.New(reconcile.Options{Date: date, Sink: report.Add, Lookup: lr, LookupLimit: p.LookupLimit, TempDir: tmp,
		ChunkBytes: p.ChunkBytes, Progress: func(pr reconcile.Progress) {
			log.InfoContext(ctx, "reconciliation progress", "merged", pr.Merged, "elapsed_ms", pr.Elapsed.Milliseconds())
		}})
	if err != nil {
		return nil, err
	}
	defer rc.Close()

	q := url.Values{"bill_date": {date}, "bill_type": {"ALL"}, "tar_type": {"GZIP"}}
	rec.TradeBill, err = p.fetch(ctx, log, tmp, date, runID, "tradebill", "/v3/bill/tradebill", q, func(src io.Reader, o StreamOptions) (*BillFile, error) {
		return StreamTradeBill(src, o, rc)
	})
	if rec.TradeBill != nil {
		rec.TradeBill.Type = "ALL"
	}
	if err != nil {
		return nil, err
	}
	q = url.Values{"bill_date": {date}, "account_type": {"BASIC"}, "tar_type": {"GZIP"}}
	rec.FundFlowBill, err = p.fetch(ctx, log, tmp, date, runID, "fundflowbill", "/v3/bill/fundflowbill", q, func(src io.Reader, o StreamOptions) (*BillFile, error) {
		f, ff, mismatches, err := StreamFundBill(src, o)
		if err == nil {
			ff.Account = "BASIC"
			rc.FundFlow(ff, mismatches)
		}
		return f, err
	})
	if rec.FundFlowBill != nil {
		rec.FundFlowBill.Type = "BASIC"
	}
	if err != nil {
		return nil, err
	}

	if err := lr.Load(ctx, date, rc); err != nil {
		return nil, err
	}
	rec.Ledger = &lr.Stats
	if rec.TradeBill.NoStatement && rc.LedgerEntries() == 0 {
		// WeChat Pay has no bill and the ledger agrees: an empty day.
		rec.Status = StatusEmpty
	}
	sum, err := rc.Finish(ctx)
	if err != nil {
		return nil, err
	}
	if rec.Status != StatusEmpty {
		rec.Status = StatusDone
	}
	rec.Differences = sum.Differences
	rec.ByClass = map[string]int64{}
	for c, n := range sum.ByClass {
		rec.ByClass[string(c)] = n
	}
	if err := p.writeReports(ctx, date, runID, rec, sum, report); err != nil {
		return nil, err
	}
	sj, err := json.Marshal(sum)
	if err != nil {
		return nil, fmt.Errorf("billing: summary: %w", err)
	}
	fj, err := json.Marshal(report.First())
	if err != nil {
		return nil, fmt.Errorf("billing: differences: %w", err)
	}
	rec.SummaryJSON, rec.FirstJSON = string(sj), string(fj)
	return sum, nil
}

func (p *Pipeline) writeReports(ctx context.Context, date, runID string, rec *Record, sum *reconcile.Summary, report *reconcile.Report) error {
	prefix := fmt.Sprintf("reports/%s/%s/", date, runID)
	rec.Reports = map[string]string{"json": prefix + "report.json", "csv": prefix + "differences.csv", "html": prefix + "summary.html"}
	js, err := report.JSON(sum)
	if err != nil {
		return err
	}
	if _, err := p.Bills.Put(ctx, rec.Reports["json"], js, "application/json"); err != nil {
		return fmt.Errorf("billing: write report: %w", err)
	}
	csv, err := report.CSV()
	if err != nil {
		return err
	}
	if _, err := p.Bills.Put(ctx, rec.Reports["csv"], csv, "text/csv; charset=utf-8"); err != nil {
		return fmt.Errorf("billing: write report: %w", err)
	}
	var html bytes.Buffer
	if err := reconcile.HTML(&html, sum, report.First()); err != nil {
		return err
	}
	if _, err := p.Bills.Put(ctx, rec.Reports["html"], &html, "text/html; charset=utf-8"); err != nil {
		return fmt.Errorf("billing: write report: %w", err)
	}
	return nil
}
