package soak

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// DynamoDBFaults is an SDK middleware that fails a fraction of DynamoDB
// calls outside the SDK's retry loop: ThrottleRate of them before the
// request is sent (throttling: nothing happened), LostRate of them after the
// answer came back (a timeout with the write already applied — the case
// that breaks naive idempotency).
type DynamoDBFaults struct {
	ThrottleRate float64
	LostRate     float64

	mu        sync.Mutex
	rng       *rand.Rand
	Throttled atomic.Int64
	Lost      atomic.Int64
	Calls     atomic.Int64
}

// ErrInjectedTimeout is the error of a call whose answer was "lost".
var ErrInjectedTimeout = errors.New("soak: injected timeout after the call was applied")

func (f *DynamoDBFaults) roll() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng == nil {
		f.rng = rand.New(rand.NewPCG(1, 2))
	}
	return f.rng.Float64()
}

// Option installs the middleware on a DynamoDB client.
func (f *DynamoDBFaults) Option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("SoakFaults",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				f.Calls.Add(1)
				if f.roll() < f.ThrottleRate {
					f.Throttled.Add(1)
					return middleware.InitializeOutput{}, middleware.Metadata{}, &types.ProvisionedThroughputExceededException{Message: aws.String("soak: injected throttling")}
				}
				out, md, err := next.HandleInitialize(ctx, in)
				if err == nil && f.roll() < f.LostRate {
					f.Lost.Add(1)
					return middleware.InitializeOutput{}, md, ErrInjectedTimeout
				}
				return out, md, err
			}), middleware.Before)
	})
}
