package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// Totals are one side's figures of a reconciliation (fen).
type Totals struct {
	Charges          int64 `json:"charges"`
	PayScoreCharges  int64 `json:"payscore_charges"`
	ChargeTotal      int64 `json:"charge_total"`
	ChargeSettlement int64 `json:"charge_settlement"`
	ChargeNoCash     int64 `json:"charge_nocash"`
	Refunds          int64 `json:"refunds"`
	RefundTotal      int64 `json:"refund_total"`
	RefundSettlement int64 `json:"refund_settlement"`
}

// Difference is one difference the reconciliation reported.
type Difference struct {
	Class  string `json:"class"`
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Side   string `json:"side"`
	Field  string `json:"field"`
	Bill   string `json:"bill"`
	Ledger string `json:"ledger"`
	Detail string `json:"detail"`
}

// text is one line for the output.
func (d Difference) text() string {
	parts := []string{"difference", d.Class, d.Kind, d.Key}
	if d.Field != "" {
		parts = append(parts, fmt.Sprintf("%s: bill %q, ledger %q", d.Field, d.Bill, d.Ledger))
	}
	if d.Detail != "" {
		parts = append(parts, "("+d.Detail+")")
	}
	return strings.Join(parts, " ")
}

// Reconciliation is the billing function's record of a bill date, as
// POST/GET /billing/reconciliations/{bill_date} answer it (docs/billing.md).
type Reconciliation struct {
	BillDate    string `json:"bill_date"`
	Status      string `json:"status"`
	RunID       string `json:"run_id"`
	ResultRunID string `json:"result_run_id"`
	ErrorCode   string `json:"error_code"`
	Error       string `json:"error"`
	// Differences is the number of differences (by_class added up).
	Differences int64             `json:"-"`
	ByClass     map[string]int64  `json:"by_class"`
	Reports     map[string]string `json:"reports"`
	TradeBill   *struct {
		Rows     int64 `json:"rows"`
		Bytes    int64 `json:"bytes"`
		Verified bool  `json:"hash_verified"`
	} `json:"trade_bill"`
	Summary *struct {
		Matched    int64  `json:"matched"`
		Bill       Totals `json:"bill"`
		Ledger     Totals `json:"ledger"`
		Identities []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"identities"`
	} `json:"summary"`
	// First are the first differences, when the answer lists them.
	First []Difference `json:"-"`
}

// UnmarshalJSON reads the record: "differences" is the count and
// "first_differences" the first ones (an earlier answer put the list under
// "differences"; both shapes are read). The count is never below what
// by_class adds up to.
func (rec *Reconciliation) UnmarshalJSON(b []byte) error {
	type plain Reconciliation
	var aux struct {
		*plain
		Differences      json.RawMessage `json:"differences"`
		FirstDifferences []Difference    `json:"first_differences"`
	}
	aux.plain = (*plain)(rec)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	rec.First = aux.FirstDifferences
	switch d := bytes.TrimSpace(aux.Differences); {
	case len(d) == 0 || string(d) == "null":
	case d[0] == '[':
		if err := json.Unmarshal(d, &rec.First); err != nil {
			return fmt.Errorf("differences: %w", err)
		}
	default:
		if err := json.Unmarshal(d, &rec.Differences); err != nil {
			return fmt.Errorf("differences: %w", err)
		}
	}
	var sum int64
	for _, n := range rec.ByClass {
		sum += n
	}
	rec.Differences = max(rec.Differences, sum, int64(len(rec.First)))
	return nil
}

// reconcileFlow moves to the next morning and reconciles the day the flows
// ran on.
func reconcileFlow(ctx context.Context, r *runner) error {
	date := r.res.BillDate
	r.begin(fmt.Sprintf("Next morning: move the simulator to 10:00 after %s (WeChat Pay builds the bill from 09:00)", date))
	if !r.clockShared {
		return unexpected("%s cannot be reconciled: %s, so they refuse bill dates that are not before their today. "+
			"The functions and their WeChat Pay client must run on the simulator clock for the demo to reach the next morning", date, r.clockNote)
	}
	now, err := r.simNow(ctx)
	if err != nil {
		return err
	}
	if ledger.Day(now) != date {
		return unexpected("the simulator clock left %s during the flows (now %s)", date, ledger.WechatTime(now))
	}
	moved, err := r.advance(ctx, untilTomorrowAt(now, 10))
	if err != nil {
		return err
	}
	r.note("simulator and functions at %s", ledger.WechatTime(moved))

	r.begin("Reconcile " + date + ": download the trade bill, check its hash, compare every row with the ledger")
	path := "/billing/reconciliations/" + date
	var rec Reconciliation
	status, err := r.app(ctx, http.MethodPost, path, map[string]any{}, &rec, http.StatusOK, http.StatusAccepted, http.StatusConflict)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		// 202: the bill was not ready; 409: another run holds the date.
		// Either way the record tells when the day is reconciled.
		n, err := r.poll(ctx, "the reconciliation of "+date, func(ctx context.Context) (bool, error) {
			if err := r.quietGet(ctx, "app", path, &rec); err != nil {
				return false, err
			}
			return rec.Status != "RUNNING" && rec.Status != "PENDING", nil
		})
		if err != nil {
			return err
		}
		r.note("answered %d; the record settled after %s of GET %s", status, plural(n, "poll"), path)
	}
	r.res.Reconciliation = &rec
	if rec.Status != "DONE" {
		return unexpected("reconciliation of %s = %s %s %s, want DONE", date, rec.Status, rec.ErrorCode, rec.Error)
	}
	if rec.TradeBill != nil {
		r.note("trade bill: %d rows, %d bytes, SHA-1 verified %v", rec.TradeBill.Rows, rec.TradeBill.Bytes, rec.TradeBill.Verified)
	}
	if s := rec.Summary; s != nil {
		r.note("bill:   %s", sideText(s.Bill))
		r.note("ledger: %s", sideText(s.Ledger))
		var ids []string
		for _, id := range s.Identities {
			ids = append(ids, fmt.Sprintf("%s %v", id.Name, map[bool]string{true: "ok", false: "BROKEN"}[id.OK]))
		}
		r.note("matched %d rows; identities: %s", s.Matched, strings.Join(ids, "; "))
	}
	r.note("result: %s, %s%s", rec.Status, plural(int(rec.Differences), "difference"), classText(rec.ByClass))
	for _, d := range rec.First {
		r.note("  %s", d.text())
	}
	if len(rec.Reports) > 0 {
		var keys []string
		for _, k := range sortedKeys(rec.Reports) {
			keys = append(keys, rec.Reports[k])
		}
		r.note("reports in the bills bucket: %s", strings.Join(keys, ", "))
	}
	if rec.Differences != 0 {
		return unexpected("the ledger and WeChat Pay's bill of %s differ in %s%s", date, plural(int(rec.Differences), "place"), classText(rec.ByClass))
	}
	if rec.Summary == nil || rec.Summary.Matched == 0 {
		return unexpected("the reconciliation of %s matched no rows", date)
	}

	r.begin("Read the stored result (what the daily schedule leaves for operations)")
	var stored Reconciliation
	if _, err := r.app(ctx, http.MethodGet, path, nil, &stored); err != nil {
		return err
	}
	if stored.Status != "DONE" || stored.ResultRunID != rec.RunID || stored.Differences != 0 {
		return unexpected("stored record = %s run %s with %d differences, want DONE run %s with 0", stored.Status, stored.ResultRunID, stored.Differences, rec.RunID)
	}
	r.note("ledger: RECON#%s = %s, run %s, 0 differences", date, stored.Status, stored.ResultRunID)
	return nil
}

func sideText(t Totals) string {
	return fmt.Sprintf("%s (%d Pay Score) %s yuan, settlement %s, NOCASH %s; %s %s yuan, settlement %s",
		plural(int(t.Charges), "charge"), t.PayScoreCharges, yuan(t.ChargeTotal), yuan(t.ChargeSettlement), yuan(t.ChargeNoCash),
		plural(int(t.Refunds), "refund"), yuan(t.RefundTotal), yuan(t.RefundSettlement))
}

func classText(by map[string]int64) string {
	var parts []string
	for _, c := range sortedKeys(by) {
		if by[c] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, by[c]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
