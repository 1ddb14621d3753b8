// Command soak is `make soak`: the notification storm of the reliability
// suite (10,000 deliveries of every event type, 30% duplicates, 5% out of
// order, 8 deliverers, DynamoDB throttling and lost answers, handlers
// cancelled mid-request) against DynamoDB Local, ending with lost=0
// double=0 or a non-zero exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/soak"
)

func main() {
	n := flag.Int("n", 10000, "deliveries, duplicates included")
	dup := flag.Float64("dup", 0.30, "duplicate share")
	ooo := flag.Float64("ooo", 0.05, "out-of-order share")
	workers := flag.Int("workers", 8, "concurrent deliverers")
	throttle := flag.Float64("throttle", 0.03, "DynamoDB calls throttled")
	lost := flag.Float64("lost", 0.03, "DynamoDB answers lost after applying")
	crash := flag.Float64("crash", 0.03, "handler invocations cancelled mid-request")
	followers := flag.Int("followups", 2, "workers querying payments live (?live=true) during the storm")
	queryFault := flag.Int("query-fault-every", 3, "one in this many WeChat Pay order queries answers 500 (0: none)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	flag.Parse()

	ctx := context.Background()
	endpoint := os.Getenv(ddblocal.EnvEndpoint)
	if endpoint == "" {
		srv, err := ddblocal.Start(ctx, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	rep, err := soak.Run(ctx, soak.Config{DynamoDBEndpoint: endpoint, Table: fmt.Sprintf("soak_%d", time.Now().UnixNano()),
		Deliveries: *n, DuplicateRate: *dup, OutOfOrderRate: *ooo, Workers: *workers, ThrottleRate: *throttle,
		LostRate: *lost, CrashRate: *crash, FollowUpWorkers: *followers, QueryFaultEvery: *queryFault, Seed: *seed, Progress: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	fmt.Printf("soak (seed %d): %s\n", *seed, rep)
	for _, p := range rep.Problems {
		fmt.Println("  problem:", p)
	}
	if rep.Lost != 0 || rep.DoubleApplied != 0 || rep.Unacked != 0 {
		os.Exit(1)
	}
}
