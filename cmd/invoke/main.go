// Command invoke runs one function's real bootstrap binary under the local
// Runtime API with one event and prints the response: the `sam local invoke`
// equivalent without Docker.
//
//	invoke -fn payscore -event events/payscore/health.json
//
// It builds ./functions/<fn> for this host, uses DynamoDB Local
// (DYNAMODB_ENDPOINT, or starts one), the local table, and the TEST merchant
// secret under .local/dev (SECRET_FILE overrides it).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/devstack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/runtimeapi"
)

func main() {
	os.Exit(run())
}

func run() int {
	fn := flag.String("fn", "", "function: notify, payscore, coupons, payments or billing")
	eventPath := flag.String("event", "", "event JSON file")
	table := flag.String("table", devstack.DefaultTable, "DynamoDB table")
	flag.Parse()
	if *fn == "" || *eventPath == "" {
		fmt.Fprintln(os.Stderr, "usage: invoke -fn <fn> -event <file>")
		return 2
	}
	if err := invoke(*fn, *eventPath, *table); err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		return 1
	}
	return 0
}

func invoke(fn, eventPath, table string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	payload, err := os.ReadFile(eventPath)
	if err != nil {
		return err
	}
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, ".local", "invoke", fn, "bootstrap")
	fmt.Fprintf(os.Stderr, "building ./functions/%s for %s ...\n", fn, runtime.GOARCH)
	if err := runtimeapi.Build(ctx, root, fn, runtime.GOARCH, bin); err != nil {
		return err
	}
	endpoint := os.Getenv(ddblocal.EnvEndpoint)
	if endpoint == "" {
		fmt.Fprintln(os.Stderr, "starting DynamoDB Local ...")
		srv, err := ddblocal.Start(ctx, 0)
		if err != nil {
			return err
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	if err := devstack.EnsureTable(ctx, endpoint, table); err != nil {
		return err
	}
	secretFile := os.Getenv("SECRET_FILE")
	if secretFile == "" {
		paths, _, _, err := devstack.EnsureSecret(root)
		if err != nil {
			return err
		}
		secretFile = paths.SecretFile
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDLOCAL", "AWS_SECRET_ACCESS_KEY=SECRETLOCAL", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=" + endpoint,
		"TABLE_NAME=" + table,
		"SECRET_FILE=" + secretFile,
		"LOG_LEVEL=" + envOr("LOG_LEVEL", "INFO"),
	}
	if v := os.Getenv("WECHATPAY_BASE_URL"); v != "" {
		env = append(env, "WECHATPAY_BASE_URL="+v)
	}
	p, err := runtimeapi.Start(bin, env)
	if err != nil {
		return err
	}
	defer p.Stop()
	res, err := p.InvokeOrExit(ctx, payload)
	fmt.Fprintf(os.Stderr, "--- function output ---\n%s--- end of output ---\n", p.Output())
	if err != nil {
		return err
	}
	if res.Err != nil {
		return fmt.Errorf("function error: %v", res.Err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, res.Payload, "", "  ") != nil {
		pretty.Write(res.Payload)
	}
	fmt.Printf("%s\n", pretty.Bytes())
	fmt.Fprintf(os.Stderr, "request %s answered in %s\n", res.RequestID, res.Duration.Round(time.Microsecond))
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
