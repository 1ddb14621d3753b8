// Command demo is `make demo`: a guided run of every flow (internal/demo).
//
// When a `make dev` stack answers on 127.0.0.1:3000 it runs against it,
// with the dev token of .local/dev/dev-token and the simulator on
// 127.0.0.1:8787. Otherwise it starts the same stack in this process
// (DynamoDB Local, simulator, front door, the five handlers; handler logs go
// to .local/demo/stack.log) and stops it afterwards. It exits 1 when a step
// fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/demo"
	"github.com/wxpay-serverless/wxpay-serverless/internal/devstack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	front := flag.String("front", "http://127.0.0.1:3000", "front door of a running `make dev`")
	sim := flag.String("sim", "http://127.0.0.1:8787", "WeChat Pay simulator of a running `make dev`")
	tokenFile := flag.String("token-file", "", "dev JWT of the running stack (default .local/dev/dev-token)")
	own := flag.Bool("own-stack", false, "start an in-process stack even when `make dev` is running")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return err
	}
	cfg := demo.Config{FrontURL: *front, SimURL: *sim, Out: os.Stdout}
	if !*own && answers(ctx, *front) {
		path := *tokenFile
		if path == "" {
			path = filepath.Join(devstack.PathsFor(root).Dir, "dev-token")
		}
		tok, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s answers but its dev token is unreadable (%w); pass -token-file", *front, err)
		}
		cfg.Token = strings.TrimSpace(string(tok))
		fmt.Printf("using the running `make dev` stack (%s, simulator %s)\n", *front, *sim)
		return runDemo(ctx, cfg)
	}

	fmt.Printf("nothing answers on %s: starting the stack in this process\n", *front)
	endpoint := os.Getenv(ddblocal.EnvEndpoint)
	if endpoint == "" {
		fmt.Println("  starting DynamoDB Local ...")
		srv, err := ddblocal.Start(ctx, 0)
		if err != nil {
			return err
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	logDir := filepath.Join(root, ".local", "demo")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(logDir, "stack.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	s, err := stack.Start(ctx, stack.Options{DynamoDBEndpoint: endpoint, Table: fmt.Sprintf("wxpay-demo-%d", time.Now().Unix()), Log: logFile})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Printf("  front door %s, simulator %s, DynamoDB Local %s; handler logs in %s\n", s.FrontURL, s.SimURL, endpoint, logPath)
	if cfg.Token, err = s.Token(time.Hour); err != nil {
		return err
	}
	cfg.FrontURL, cfg.SimURL = s.FrontURL, s.SimURL
	return runDemo(ctx, cfg)
}

func runDemo(ctx context.Context, cfg demo.Config) error {
	res, err := demo.Run(ctx, cfg)
	var se *demo.StepError
	if errors.As(err, &se) {
		return fmt.Errorf("step %d failed (see above)", se.Step) // the run printed the details
	}
	if err != nil {
		return err
	}
	if !res.Passed() {
		return errors.New("not every flow completed")
	}
	return nil
}

// answers reports whether anything HTTP listens at base.
func answers(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/payments/health", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}
