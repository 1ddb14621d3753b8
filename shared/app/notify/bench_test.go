package notify_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
)

// BenchmarkDynamoDBCallsPerNotification reports DynamoDB calls per delivery,
// counted by an SDK middleware: first deliveries (target <= 2: the
// transaction and the outbox delete) and duplicates (target 1: the cancelled
// transaction). ns/op includes DynamoDB Local round trips.
func BenchmarkDynamoDBCallsPerNotification(b *testing.B) {
	calls := &lambdatest.CallCounter{}
	env := lambdatest.NewEnv(b, calls.Option)
	deps := env.Deps
	deps.Events = &publisher{}
	h := notify.New(deps)
	ctx := context.Background()
	if _, err := env.Secrets.Get(ctx); err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"first", "duplicate"} {
		b.Run(kind, func(b *testing.B) {
			evs := make([]events.APIGatewayV2HTTPRequest, b.N)
			run := testkeys.RandomString(6) // b.Run calls this body more than once

			for i := range evs {
				ev := env.Notification(b, "payments", notify.EventTransactionSuccess, "transaction", transaction("B"+run+kind+strconv.Itoa(i)), lambdatest.NotificationOptions{})
				if kind == "duplicate" {
					if resp, err := h.Handle(ctx, ev); err != nil || resp.StatusCode != http.StatusNoContent {
						b.Fatalf("priming delivery: %v %d", err, resp.StatusCode)
					}
				}
				evs[i] = ev
			}
			calls.Reset()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := h.Handle(ctx, evs[i])
				if err != nil || resp.StatusCode != http.StatusNoContent {
					b.Fatalf("delivery: %v %d", err, resp.StatusCode)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(calls.Total())/float64(b.N), "ddbcalls/op")
		})
	}
}
