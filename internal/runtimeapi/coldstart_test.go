package runtimeapi_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/runtimeapi"
	"github.com/wxpay-serverless/wxpay-serverless/internal/smfake"
	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
)

// BenchmarkColdStart measures, from process start to the first response,
// the notify bootstrap (config, AWS config, merchant secret fetched from a
// local Secrets Manager endpoint, handler built, one event answered without
// network I/O) against a hello-world aws-lambda-go bootstrap in the same
// run. Target: notify <= 5x hello. Reports medians and binary sizes.
func BenchmarkColdStart(b *testing.B) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	ctx := context.Background()
	notifyBin, helloBin := filepath.Join(dir, "notify"), filepath.Join(dir, "hello")
	if err := runtimeapi.Build(ctx, root, "notify", runtime.GOARCH, notifyBin); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", helloBin, "./internal/runtimeapi/testdata/hello")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build hello: %v\n%s", err, out)
	}
	m, err := testkeys.NewMerchant("1900000109")
	if err != nil {
		b.Fatal(err)
	}
	p, err := testkeys.NewPlatform()
	if err != nil {
		b.Fatal(err)
	}
	doc, err := testkeys.SecretJSON(m, p, testkeys.SecretOptions{PublicKey: true})
	if err != nil {
		b.Fatal(err)
	}
	sm := smfake.New()
	sm.Put("wxpay/merchant", string(doc))
	smSrv := httptest.NewServer(sm)
	defer smSrv.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDLOCAL", "AWS_SECRET_ACCESS_KEY=SECRETLOCAL",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_SECRETS_MANAGER=" + smSrv.URL, "TABLE_NAME=unused", "SECRET_ID=wxpay/merchant"}
	event, err := os.ReadFile(filepath.Join(root, "events", "notify", "unknown-channel.json"))
	if err != nil {
		b.Fatal(err)
	}
	measure := func(bin string, payload []byte) time.Duration {
		start := time.Now()
		proc, err := runtimeapi.Start(bin, env)
		if err != nil {
			b.Fatal(err)
		}
		defer proc.Stop()
		res, err := proc.InvokeOrExit(ctx, payload)
		if err != nil || res.Err != nil {
			b.Fatalf("%s: %v %v", filepath.Base(bin), err, res.Err)
		}
		return time.Since(start)
	}
	var notifyTimes, helloTimes []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		helloTimes = append(helloTimes, measure(helloBin, []byte(`{}`)))
		notifyTimes = append(notifyTimes, measure(notifyBin, event))
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	hn, nn := med(helloTimes), med(notifyTimes)
	b.ReportMetric(float64(hn.Microseconds())/1000, "hello-ms")
	b.ReportMetric(float64(nn.Microseconds())/1000, "notify-ms")
	b.ReportMetric(float64(nn)/float64(hn), "ratio")
	for name, bin := range map[string]string{"notify": notifyBin, "hello": helloBin} {
		if fi, err := os.Stat(bin); err == nil {
			b.ReportMetric(float64(fi.Size())/1e6, name+"-MB")
		}
	}
}
