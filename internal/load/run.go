package load

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// OverheadTarget is the bound on the in-process handler overhead
// (I/O excluded) at p99.
const OverheadTarget = time.Millisecond

// Config is a whole load run: levels of rising concurrency, then bursts of
// identical requests.
type Config struct {
	DynamoDBEndpoint string
	Table            string
	Levels           []int         // concurrency levels, e.g. 1, 4, 16, 64
	Requests         int           // requests per level (whole cycles of 4)
	MaxLevelDuration time.Duration // per-level time bound
	BurstSize        int           // identical concurrent requests per burst; 0 skips the bursts
	Progress         io.Writer
}

// Report is a whole run.
type Report struct {
	Levels []*Level
	Bursts []*Burst
	Setup  time.Duration
	Crypto CryptoCost
}

// Run performs a load run and returns its figures. Failed requests and
// WeChat call mismatches are in the levels' Problems, not errors: an error
// means the run itself could not be performed.
func Run(ctx context.Context, c Config) (*Report, error) {
	if len(c.Levels) == 0 || c.Requests <= 0 || c.MaxLevelDuration <= 0 {
		return nil, fmt.Errorf("load: levels, requests and a level duration are required")
	}
	cycles := (c.Requests + opsPerCycle - 1) / opsPerCycle
	coupons := cycles*len(c.Levels) + 1
	start := time.Now()
	r, err := Start(ctx, Options{DynamoDBEndpoint: c.DynamoDBEndpoint, Table: c.Table, Coupons: coupons, Progress: c.Progress})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep := &Report{Setup: time.Since(start), Crypto: r.Crypto()}
	for _, n := range c.Levels {
		l, err := r.RunLevel(ctx, n, c.Requests, c.MaxLevelDuration)
		if err != nil {
			return rep, err
		}
		rep.Levels = append(rep.Levels, l)
		if c.Progress != nil {
			fmt.Fprintln(c.Progress, l)
		}
	}
	if c.BurstSize > 0 {
		for _, op := range BurstOps {
			b, err := r.Burst(ctx, op, c.BurstSize)
			if err != nil {
				return rep, err
			}
			rep.Bursts = append(rep.Bursts, b)
		}
	}
	return rep, nil
}

// Format prints the report as the table `make load` shows.
func (rep *Report) Format(w io.Writer) {
	fmt.Fprintf(w, "%-4s %8s %6s %9s %10s %10s %10s %10s %10s %10s %12s\n", "c", "requests", "errors", "req/s", "lat p50", "lat p99",
		"hdl p50", "hdl p99", "ovh p50", "ovh p99", "ovh-RSA p99")
	for _, l := range rep.Levels {
		fmt.Fprintf(w, "%-4d %8d %6d %9.1f %10s %10s %10s %10s %10s %10s %12s\n", l.Concurrency, l.Requests, l.Errors, l.Throughput,
			rnd(l.P50), rnd(l.P99), rnd(l.HandlerP50), rnd(l.HandlerP99), rnd(l.OverheadP50), rnd(l.OverheadP99), rnd(l.OverheadNoCryptoP99))
	}
	fmt.Fprintln(w, "per operation (latency p50/p99, handler overhead p99):")
	for _, l := range rep.Levels {
		var parts []string
		for _, op := range []string{OpPayment, OpPayScoreCreate, OpPayScoreComplete, OpCouponUse} {
			st := l.ByOp[op]
			parts = append(parts, fmt.Sprintf("%s %s/%s ovh %s", op, rnd(st.P50), rnd(st.P99), rnd(st.OverheadP99)))
		}
		fmt.Fprintf(w, "  c=%-3d %s\n", l.Concurrency, strings.Join(parts, "; "))
	}
	if len(rep.Levels) > 0 {
		first := rep.Levels[0]
		verdict := "meets"
		if first.OverheadP99 > OverheadTarget {
			verdict = "MISSES"
		}
		fmt.Fprintf(w, "handler overhead excluding I/O at c=%d: p50 %s p99 %s (%s the %s p99 target); DynamoDB calls per request %.1f\n",
			first.Concurrency, rnd(first.OverheadP50), rnd(first.OverheadP99), verdict, OverheadTarget, first.DDBCallsPerRequest)
		fmt.Fprintf(w, "  APIv3 RSA calibrated here: sign %s, verify %s; request signatures and paySign overlap the DynamoDB waits, "+
			"the answer's verification (1 per WeChat call) does not: without it p50 %s p99 %s\n",
			rnd(rep.Crypto.Sign), rnd(rep.Crypto.Verify), rnd(first.OverheadNoCryptoP50), rnd(first.OverheadNoCryptoP99))
	}
	for _, b := range rep.Bursts {
		fmt.Fprintln(w, "burst:", b)
	}
	for _, l := range rep.Levels {
		for _, p := range l.Problems {
			fmt.Fprintf(w, "problem at c=%d: %s\n", l.Concurrency, p)
		}
	}
}

// Failed reports whether any level had errors or WeChat call mismatches,
// or any burst made other than exactly one WeChat Pay call.
func (rep *Report) Failed() bool {
	for _, l := range rep.Levels {
		if len(l.Problems) > 0 {
			return true
		}
	}
	for _, b := range rep.Bursts {
		if b.Calls != 1 {
			return true
		}
	}
	return false
}
