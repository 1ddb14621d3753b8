// Command payments is the Lambda entry point of the payments function: it only wires
// the cold-start dependencies into shared/app/payments and starts the runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
)

func main() {
	env, err := coldstart.Load(context.Background(), "payments", os.Getenv, coldstart.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "payments: cold start: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(payments.New(env.Deps()).Handle)
}
