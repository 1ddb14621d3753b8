// Command payscore is the Lambda entry point of the payscore function: it only wires
// the cold-start dependencies into shared/app/payscore and starts the runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payscore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
)

func main() {
	env, err := coldstart.Load(context.Background(), "payscore", os.Getenv, coldstart.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "payscore: cold start: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(payscore.New(env.Deps()).Handle)
}
