// Command load is `make load`: the API load test of the reliability suite.
// A mixed workload (payment orders, Pay Score orders created and completed,
// merchant coupons used) goes through the local front door at rising
// concurrency against DynamoDB Local and the WeChat Pay simulator, all on
// loopback; then bursts of identical concurrent requests check that one
// business request makes one WeChat Pay call. Bounded in requests and time,
// it prints throughput, p50/p99 latency and the handler overhead excluding
// I/O, and exits non-zero on a failed request or a WeChat call mismatch.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/load"
)

func main() { os.Exit(run()) }

// run returns the exit status, after the deferred stops (DynamoDB Local is
// a child process that must not outlive the command).
func run() int {
	levels := flag.String("levels", "1,4,16,64", "concurrency levels, rising")
	requests := flag.Int("requests", 800, "requests per level (whole cycles of 4)")
	perLevel := flag.Duration("level-timeout", 60*time.Second, "time bound of one level")
	burst := flag.Int("burst", 16, "identical concurrent requests per burst (0 skips the bursts)")
	flag.Parse()
	var ls []int
	for _, f := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 512 {
			fmt.Fprintf(os.Stderr, "load: bad level %q (1..512)\n", f)
			return 2
		}
		ls = append(ls, n)
	}
	if *requests < 1 || *requests > 100000 {
		fmt.Fprintln(os.Stderr, "load: -requests must be 1..100000")
		return 2
	}

	// The whole run is bounded: setup, every level at its bound, bursts.
	budget := 5*time.Minute + time.Duration(len(ls))*(*perLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	endpoint := os.Getenv(ddblocal.EnvEndpoint)
	if endpoint == "" {
		srv, err := ddblocal.Start(ctx, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	rep, err := load.Run(ctx, load.Config{DynamoDBEndpoint: endpoint, Table: fmt.Sprintf("load_%d", time.Now().UnixNano()),
		Levels: ls, Requests: *requests, MaxLevelDuration: *perLevel, BurstSize: *burst, Progress: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}
	rep.Format(os.Stdout)
	if rep.Failed() {
		return 1
	}
	return 0
}
