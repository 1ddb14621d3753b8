package load_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/load"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

// start brings a runner up with coupons for the test.
func start(tb testing.TB, coupons int) *load.Runner {
	tb.Helper()
	r, err := load.Start(context.Background(), load.Options{DynamoDBEndpoint: os.Getenv(ddblocal.EnvEndpoint),
		Table: fmt.Sprintf("load_%d", time.Now().UnixNano()), Coupons: coupons})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// TestLoadShort is the seconds-long variant of `make load` that runs in
// `make test`: the mixed workload at concurrency 1, 4 and 8. Every request
// must succeed, every one must make exactly one WeChat Pay call and none
// outside the workload, and the timing middleware must have seen every
// handler invocation with I/O that fits inside it. Speed targets are not
// asserted here (the race detector is on); `make load` and
// BenchmarkHandlerOverhead report them.
func TestLoadShort(t *testing.T) {
	r := start(t, 3*8+1)
	for _, c := range []int{1, 4, 8} {
		l, err := r.RunLevel(context.Background(), c, 32, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(l)
		if len(l.Problems) != 0 || l.Errors != 0 {
			t.Fatalf("c=%d: %d errors, problems %v", c, l.Errors, l.Problems)
		}
		if l.Requests != 32 || len(l.Samples) != 32 {
			t.Fatalf("c=%d: %d requests answered, %d handler samples; want 32 and 32", c, l.Requests, len(l.Samples))
		}
		for _, op := range []string{load.OpPayment, load.OpPayScoreCreate, load.OpPayScoreComplete, load.OpCouponUse} {
			if st := l.ByOp[op]; st.Requests != 8 || st.WeChatCalls != 8 {
				t.Fatalf("c=%d %s: %d requests, %d WeChat Pay calls; want 8 and 8", c, op, st.Requests, st.WeChatCalls)
			}
		}
		for _, s := range l.Samples {
			if s.DDBCalls < 1 || s.WxCalls != 1 || s.DynamoDB <= 0 || s.WeChat <= 0 || s.IO() > s.Total || s.Overhead() <= 0 {
				t.Fatalf("c=%d: sample %+v: want >= 1 DynamoDB call, exactly 1 WeChat Pay call, and 0 < I/O < total", c, s)
			}
		}
		if l.Throughput <= 0 || l.P50 <= 0 || l.P99 < l.P50 || l.OverheadP99 < l.OverheadP50 {
			t.Fatalf("c=%d: inconsistent figures %s", c, l)
		}
	}
}

// BenchmarkHandlerOverhead measures the in-process handler overhead
// excluding I/O on the mixed workload, one request at a time (no CPU
// contention from other requests): ns/op is one workload cycle of four
// requests through the front door; the custom metrics are the overhead
// percentiles in microseconds over every handler invocation, against the
// 1 ms p99 target.
func BenchmarkHandlerOverhead(b *testing.B) {
	r := start(b, b.N+1)
	b.ResetTimer()
	l, err := r.RunLevel(context.Background(), 1, b.N*4, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if len(l.Problems) != 0 {
		b.Fatalf("problems: %v", l.Problems)
	}
	b.ReportMetric(float64(l.OverheadP50.Microseconds()), "overhead-p50-µs")
	b.ReportMetric(float64(l.OverheadP99.Microseconds()), "overhead-p99-µs")
	b.ReportMetric(float64(l.OverheadNoCryptoP99.Microseconds()), "overhead-without-rsa-p99-µs")
	b.ReportMetric(float64(l.HandlerP99.Microseconds()), "handler-p99-µs")
	b.ReportMetric(l.DDBCallsPerRequest, "ddb-calls/req")
}
