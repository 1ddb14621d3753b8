package lambdatest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
)

// The sample-event environment has a table and credentials but no WeChat
// Pay client and no bill storage: the billing function must say so rather
// than fail or call anything.
func billingExpectations() map[string]check {
	return map[string]check{
		"billing/health.json": healthy("billing"),
		// A re-run of 2026-11-22: refused for the missing configuration
		// while the date is within WeChat Pay's three months, as too old
		// after that (local rules, no WeChat call either way).
		"billing/rerun-reconciliation.json": func(t *testing.T, out []byte) {
			if billing.CheckBillDate("2026-11-22", time.Now()) == nil {
				httpStatus(http.StatusServiceUnavailable, billing.CodeNotConfigured)(t, out)
			} else {
				httpStatus(http.StatusBadRequest, apigw.CodeParamError)(t, out)
			}
		},
		// Nothing reconciled yet for the date.
		"billing/get-reconciliation.json": httpStatus(http.StatusNotFound, apigw.CodeNotFound),
		"billing/schedule-daily.json": func(t *testing.T, out []byte) {
			var res billing.JobResult
			if err := lambdatest.DecodeStrict(out, &res); err != nil {
				t.Fatalf("schedule result: %v\n%s", err, out)
			}
			// 2026-11-23T02:00:00Z is 10:00 in Shanghai: the previous Shanghai day.
			if res.Job != billing.JobDailyBills || res.BillDate != "2026-11-22" {
				t.Fatalf("schedule result = %+v, want daily-bills for 2026-11-22", res)
			}
			// Without WeChat Pay and a bucket it reports what is missing
			// instead of failing into the dead-letter queue.
			if res.Status != billing.StatusNotConfigured || !strings.Contains(res.Error, "WeChat Pay client") || !strings.Contains(res.Error, "BILLS_BUCKET") {
				t.Fatalf("schedule result = %+v, want %s naming the client and the bucket", res, billing.StatusNotConfigured)
			}
		},
	}
}
