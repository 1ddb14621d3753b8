// Command coupons is the Lambda entry point of the coupons function: it only wires
// the cold-start dependencies into shared/app/coupons and starts the runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
)

func main() {
	env, err := coldstart.Load(context.Background(), "coupons", os.Getenv, coldstart.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "coupons: cold start: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(coupons.New(env.Deps()).Handle)
}
