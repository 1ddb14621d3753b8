package lambdatest_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payscore"
)

func payscoreExpectations() map[string]check {
	return map[string]check{
		"payscore/health.json": healthy("payscore"),
		// DEPOSIT is a 先免 name; the default service mode is 先享
		// (ESTIMATE_ORDER_COST): refused locally, before any WeChat call.
		"payscore/create-order.json": httpStatus(http.StatusBadRequest, payscore.CodeRiskFundName),
		"payscore/get-order.json":    httpStatus(http.StatusNotFound, apigw.CodeNotFound),
		"payscore/schedule-sweep.json": func(t *testing.T, out []byte) {
			var res payscore.SweepResult
			if err := lambdatest.DecodeStrict(out, &res); err != nil {
				t.Fatalf("sweep result: %v\n%s", err, out)
			}
			// An empty ledger: nothing waits for payment.
			if res.Job != payscore.JobSweep || res.Checked != 0 || res.Failed != 0 || res.More || res.Cutoff == "" {
				t.Fatalf("sweep result = %+v, want %s with nothing checked and a cutoff", res, payscore.JobSweep)
			}
		},
	}
}

// TestPayscoreEventDecoding: the payscore function takes exactly two shapes.
func TestPayscoreEventDecoding(t *testing.T) {
	bad := map[string]string{
		"unknown schedule field": `{"job":"payscore-sweep","older_than":"1h"}`,
		"neither shape":          `{"detail-type":"Scheduled Event"}`,
		"REST v1 field":          `{"version":"2.0","routeKey":"GET /payscore/health","httpMethod":"GET"}`,
		"trailing data":          `{"job":"payscore-sweep"} {}`,
	}
	for name, raw := range bad {
		var ev payscore.Event
		if err := lambdatest.DecodeStrict([]byte(raw), &ev); err == nil {
			t.Errorf("%s: DecodeStrict(%s) succeeded, want an error", name, raw)
		}
	}
	var ev payscore.Event
	if err := json.Unmarshal([]byte(`{"job":"payscore-sweep","scheduled_time":"2026-11-23T02:15:00Z"}`), &ev); err != nil || ev.Schedule == nil || ev.HTTP != nil {
		t.Fatalf("schedule input decoded to %+v, %v; want the schedule shape", ev, err)
	}
	if _, err := json.Marshal(payscore.Event{}); err == nil {
		t.Fatal("an empty Event marshalled; want ErrUnknownEvent")
	}
}
