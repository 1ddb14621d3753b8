package lambdatest_test

import (
	"net/http"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
)

func billingExpectations() map[string]check {
	return map[string]check{
		"billing/health.json":               healthy("billing"),
		"billing/rerun-reconciliation.json": httpStatus(http.StatusNotImplemented, apigw.CodeNotImplemented),
		"billing/schedule-daily.json": func(t *testing.T, out []byte) {
			var res billing.JobResult
			if err := lambdatest.DecodeStrict(out, &res); err != nil {
				t.Fatalf("schedule result: %v\n%s", err, out)
			}
			// 2026-11-23T02:00:00Z is 10:00 in Shanghai: the previous Shanghai day.
			if res.Job != billing.JobDailyBills || res.BillDate != "2026-11-22" {
				t.Fatalf("schedule result = %+v, want daily-bills for 2026-11-22", res)
			}
		},
	}
}
