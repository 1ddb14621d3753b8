// Command notify is the Lambda entry point of the notify function: it only wires
// the cold-start dependencies into shared/app/notify and starts the runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
)

func main() {
	env, err := coldstart.Load(context.Background(), "notify", os.Getenv, coldstart.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "notify: cold start: %v\n", err)
		os.Exit(1)
	}
	lambda.Start(notify.New(env.Deps()).Handle)
}
