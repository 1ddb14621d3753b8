package soak_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/soak"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

// TestShortStorm is the bounded variant of `make soak` that runs in `make
// test`: the same faults and checks on 600 deliveries.
func TestShortStorm(t *testing.T) {
	rep, err := soak.Run(context.Background(), soak.Config{
		DynamoDBEndpoint: os.Getenv(ddblocal.EnvEndpoint), Table: fmt.Sprintf("soak_%d", time.Now().UnixNano()),
		Deliveries: 600, DuplicateRate: 0.30, OutOfOrderRate: 0.05, Workers: 8,
		ThrottleRate: 0.03, LostRate: 0.03, CrashRate: 0.03, FollowUpWorkers: 2, QueryFaultEvery: 3, Seed: 42,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if rep.Lost != 0 || rep.DoubleApplied != 0 || rep.Unacked != 0 || rep.Acked != rep.Deliveries {
		t.Fatalf("storm: %s\nproblems: %v", rep, rep.Problems)
	}
	if rep.Duplicates < 150 || rep.Throttled == 0 || rep.LostAnswers == 0 || rep.Crashes == 0 || rep.QueryFaults == 0 {
		t.Fatalf("the storm did not exercise its faults: %s", rep)
	}
	if rep.FollowUps == 0 || rep.FollowUpAnswers[200] == 0 || rep.FollowUpsApplied == 0 {
		t.Fatalf("the follow-up queries did not run, never succeeded or never got to a payment first: %s", rep)
	}
	if rep.Attempts <= int64(rep.Deliveries) {
		t.Fatalf("no delivery was retried (%d attempts for %d deliveries): faults were not felt", rep.Attempts, rep.Deliveries)
	}
}
