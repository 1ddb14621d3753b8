package reconcile_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
)

func TestReportFiles(t *testing.T) {
	d := cleanDay()
	d.orders[0].Total++
	d.refunds[1].Status = "PROCESSING"
	rep, err := reconcile.NewReport(t.TempDir(), 1)
	must(t, err)
	defer rep.Close()
	res := run(t, d, 0)
	for _, x := range res.diffs {
		must(t, rep.Add(x))
	}
	must(t, rep.Add(reconcile.Difference{Class: reconcile.MissingInLedger, Kind: "charge", Key: "=HYPERLINK(\"x\")", Side: "bill", Bill: "-1.00"}))
	if rep.Count() != 3 || len(rep.First()) != 1 {
		t.Fatalf("count %d, first %d; want 3 and 1 kept", rep.Count(), len(rep.First()))
	}

	c, err := rep.CSV()
	must(t, err)
	records, err := csv.NewReader(c).ReadAll()
	must(t, err)
	if len(records) != 4 || strings.Join(records[0], ",") != strings.Join(reconcile.CSVHeader(), ",") {
		t.Fatalf("csv %v", records)
	}
	if records[1][0] != "amount_total" || records[1][2] != "O1" || records[1][8] != "-1" || records[1][9] != "2" {
		t.Fatalf("csv row %v", records[1])
	}
	if records[3][2] != `'=HYPERLINK("x")` || records[3][6] != "-1.00" {
		t.Fatalf("formula not neutralised or number altered: %v", records[3])
	}

	j, err := rep.JSON(res.sum)
	must(t, err)
	var doc struct {
		Summary     reconcile.Summary      `json:"summary"`
		Differences []reconcile.Difference `json:"differences"`
	}
	raw, _ := io.ReadAll(j)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("report.json: %v\n%s", err, raw)
	}
	if len(doc.Differences) != 3 || doc.Summary.Date != date || doc.Summary.ByClass[reconcile.StatusMismatch] != 1 {
		t.Fatalf("report.json %+v", doc)
	}

	var h bytes.Buffer
	must(t, reconcile.HTML(&h, res.sum, rep.First()))
	html := h.String()
	for _, want := range []string{"<svg", "amount_total", "status_mismatch", "2 difference(s)", "代金券金额 = 充值券金额", "<rect"} {
		if !strings.Contains(html, want) {
			t.Errorf("summary.html lacks %q", want)
		}
	}
	var clean bytes.Buffer
	must(t, reconcile.HTML(&clean, run(t, cleanDay(), 0).sum, nil))
	if !strings.Contains(clean.String(), "Clean: every row") {
		t.Error("summary.html of a clean day does not say so")
	}
}
