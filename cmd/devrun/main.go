// Command devrun is `make dev`: the whole bundle on localhost.
//
// It starts DynamoDB Local (127.0.0.1:8000 unless DYNAMODB_ENDPOINT names a
// running one), creates the table, loads or generates TEST merchant and
// platform keys under .local/dev, starts the WeChat Pay simulator
// (127.0.0.1:8787, admin API under /sim/) and serves every HTTP route of the
// five functions on 127.0.0.1:3000 through a local front door that builds
// the same API Gateway v2 events Lambda receives. The simulator's
// notifications flow back to the front door's /notify/{channel}. Ctrl-C
// stops everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/devstack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:3000", "front door address")
	simAddr := flag.String("sim", "127.0.0.1:8787", "WeChat Pay simulator address")
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
	paths, m, p, err := devstack.EnsureSecret(root)
	if err != nil {
		return err
	}
	s, err := stack.Start(ctx, stack.Options{DynamoDBEndpoint: endpoint, Table: *table, Merchant: m, Platform: p,
		SimAddr: *simAddr, FrontAddr: *addr, Log: os.Stdout, BillsDir: filepath.Join(paths.Dir, "bills")})
	if err != nil {
		return err
	}
	defer s.Close()

	fmt.Println()
	fmt.Println("wxpay-serverless dev stack")
	fmt.Printf("  front door      %s  (every HTTP API route of the five functions)\n", s.FrontURL)
	fmt.Printf("  WeChat Pay sim  %s  (APIv3 under /v3/, admin API under %s/sim/)\n", s.SimURL, s.SimURL)
	fmt.Printf("  notifications   simulator -> %s/notify/{payments,refunds,payscore,coupons}\n", s.FrontURL)
	fmt.Printf("  DynamoDB Local  %s  table %s\n", endpoint, *table)
	fmt.Printf("  bills, reports  %s\n", filepath.Join(paths.Dir, "bills"))
	fmt.Printf("  TEST merchant   mchid %s, appid %s, public key id %s\n", m.MchID, m.AppID, p.PublicKeyID)
	fmt.Printf("                  keys %s, secret %s\n", paths.KeyBundle, paths.SecretFile)
	var routes []string
	for _, t := range s.Targets {
		for _, r := range t.Routes {
			routes = append(routes, fmt.Sprintf("    %-7s %-55s -> %s", r.Method, r.Path, t.Function))
		}
	}
	sort.Strings(routes)
	fmt.Printf("  routes (%d):\n", len(routes))
	for _, r := range routes {
		fmt.Println(r)
	}
	token, err := s.Token(12 * time.Hour)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(paths.Dir, "dev-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Printf("  dev JWT (scopes wxpay/app wxpay/admin, 12 h; also in %s):\n    %s\n", tokenFile, token)
	fmt.Printf("\n  try: curl -s -H \"Authorization: Bearer $(cat %s)\" %s/payscore/health\n       curl -s %s/sim/info\n  Ctrl-C stops everything.\n\n",
		tokenFile, s.FrontURL, s.SimURL)
	<-ctx.Done()
	fmt.Println("stopping ...")
	return nil
}
