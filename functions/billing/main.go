// Command billing is the Lambda entry point of the billing function: it only wires
// the cold-start dependencies into shared/app/billing and starts the runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
)

func main() {
	env, err := coldstart.Load(context.Background(), "billing", os.Getenv, coldstart.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "billing: cold start: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(billing.New(env.Deps()).Handle)
}
