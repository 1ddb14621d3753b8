// Command devrun is `make dev`: the whole bundle on localhost.
//
// It starts DynamoDB Local (127.0.0.1:8000 unless DYNAMODB_ENDPOINT names a
// running one), creates the table, generates TEST merchant keys under
// .local/dev, and serves every HTTP route of the five functions on
// 127.0.0.1:3000 through a local front door that builds the same API Gateway
// v2 events Lambda receives. Ctrl-C stops everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/devstack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:3000", "front door address")
	ddbPort := flag.Int("ddb-port", 8000, "DynamoDB Local port")
	table := flag.String("table", devstack.DefaultTable, "table name")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return err
	}
	endpoint := os.Getenv(ddblocal.EnvEndpoint)
	if endpoint == "" {
		fmt.Printf("starting DynamoDB Local on 127.0.0.1:%d ...\n", *ddbPort)
		srv, err := ddblocal.Start(ctx, *ddbPort)
		if err != nil {
			return fmt.Errorf("%w (is port %d taken? use -ddb-port or DYNAMODB_ENDPOINT)", err, *ddbPort)
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	if err := devstack.EnsureTable(ctx, endpoint, *table); err != nil {
		return err
	}
	paths, m, p, err := devstack.EnsureSecret(root)
	if err != nil {
		return err
	}
	vars := map[string]string{
		coldstart.EnvTableName:  *table,
		coldstart.EnvSecretFile: paths.SecretFile,
		coldstart.EnvLogLevel:   "INFO",
	}
	env, err := coldstart.Load(ctx, "devrun", func(k string) string { return vars[k] }, coldstart.Options{AWSOptions: []func(*config.LoadOptions) error{
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDLOCAL", "SECRETLOCAL", "")),
		config.WithBaseEndpoint(endpoint),
	}})
	if err != nil {
		return err
	}
	targets := frontdoor.AllFunctions(env.Deps())
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: frontdoor.New(targets...), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()

	fmt.Println()
	fmt.Println("wxpay-serverless dev stack")
	fmt.Printf("  front door     http://%s  (every HTTP API route of the five functions)\n", ln.Addr())
	fmt.Printf("  DynamoDB Local %s  table %s\n", endpoint, *table)
	fmt.Printf("  TEST merchant  mchid %s, public key id %s (keys in %s)\n", m.MchID, p.PublicKeyID, paths.KeyBundle)
	var routes []string
	for _, t := range targets {
		for _, r := range t.Routes {
			routes = append(routes, fmt.Sprintf("    %-7s %-55s -> %s", r.Method, r.Path, t.Function))
		}
	}
	sort.Strings(routes)
	fmt.Printf("  routes (%d):\n", len(routes))
	for _, r := range routes {
		fmt.Println(r)
	}
	fmt.Printf("\n  try: curl -s http://%s/payscore/health\n  Ctrl-C stops everything.\n\n", ln.Addr())
	if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
