package billing

import (
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Run statuses of a bill date.
const (
	// StatusRunning: a run holds the date's lease.
	StatusRunning = "RUNNING"
	// StatusPending: WeChat Pay had not generated the bill yet
	// (STATEMENT_CREATING); the run will be retried. Not a failure.
	StatusPending = "PENDING"
	// StatusDone: the day was reconciled; Differences says how cleanly.
	StatusDone = "DONE"
	// StatusEmpty: WeChat Pay has no bill for the day (NO_STATEMENT_EXIST)
	// and the ledger has nothing either.
	StatusEmpty = "EMPTY"
	// StatusFailed: the run failed (a rejected bill, WeChat Pay or storage
	// trouble). No reconciliation result was written; a rejected bill's raw
	// file is kept (RawKey) for inspection.
	StatusFailed = "FAILED"
)

// RunKey addresses the reconciliation record of a bill date.
func RunKey(billDate string) store.Key { return store.Key{PK: "RECON#" + billDate, SK: "SUMMARY"} }

// Record is the reconciliation record of a bill date: the state of the
// latest run and the result of the latest successful one.
type Record struct {
	BillDate     string    `dynamodbav:"bill_date" json:"bill_date"`
	Status       string    `dynamodbav:"status" json:"status"`
	RunID        string    `dynamodbav:"run_id" json:"run_id"`
	Trigger      string    `dynamodbav:"trigger" json:"trigger"`
	StartedAt    string    `dynamodbav:"started_at" json:"started_at"`
	FinishedAt   string    `dynamodbav:"finished_at,omitempty" json:"finished_at,omitempty"`
	LeaseUntil   string    `dynamodbav:"lease_until,omitempty" json:"-"`
	ErrorCode    string    `dynamodbav:"error_code,omitempty" json:"error_code,omitempty"`
	Error        string    `dynamodbav:"error,omitempty" json:"error,omitempty"`
	Attempts     int       `dynamodbav:"attempts,omitempty" json:"not_ready_attempts,omitempty"`
	TradeBill    *BillFile `dynamodbav:"trade_bill,omitempty" json:"trade_bill,omitempty"`
	FundFlowBill *BillFile `dynamodbav:"fundflow_bill,omitempty" json:"fundflow_bill,omitempty"`
	DurationMS   int64     `dynamodbav:"duration_ms,omitempty" json:"duration_ms,omitempty"`

	// The result of the latest run that reconciled the day (a later failed
	// or pending run leaves it as it was).
	ResultRunID string            `dynamodbav:"result_run_id,omitempty" json:"result_run_id,omitempty"`
	ResultAt    string            `dynamodbav:"result_at,omitempty" json:"result_at,omitempty"`
	Differences int64             `dynamodbav:"differences" json:"differences"`
	ByClass     map[string]int64  `dynamodbav:"by_class,omitempty" json:"by_class,omitempty"`
	Reports     map[string]string `dynamodbav:"reports,omitempty" json:"reports,omitempty"`
	Ledger      *LedgerStats      `dynamodbav:"ledger,omitempty" json:"ledger,omitempty"`
	SummaryJSON string            `dynamodbav:"summary_json,omitempty" json:"-"`
	FirstJSON   string            `dynamodbav:"first_differences_json,omitempty" json:"-"`
}
