package lambdatest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/internal/runtimeapi"
	"github.com/wxpay-serverless/wxpay-serverless/internal/smfake"
	"github.com/wxpay-serverless/wxpay-serverless/shared/health"
)

// TestBootstrapUnderRuntimeAPI builds the real payscore bootstrap for this
// host and runs it the way Lambda does: config from the environment, the
// merchant secret from (a fake) Secrets Manager through the real SDK, the
// table on DynamoDB Local, events from the Runtime API.
func TestBootstrapUnderRuntimeAPI(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := runtimeapi.Build(ctx, root, "payscore", runtime.GOARCH, bin); err != nil {
		t.Fatal(err)
	}
	env := lambdatest.NewEnv(t)
	sm := smfake.New()
	sm.Put("wxpay/merchant", string(env.SecretJSON))
	smSrv := httptest.NewServer(sm)
	defer smSrv.Close()

	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDLOCAL",
		"AWS_SECRET_ACCESS_KEY=SECRETLOCAL",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=" + os.Getenv(ddblocal.EnvEndpoint),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + smSrv.URL,
		"TABLE_NAME=" + env.Table,
	}

	t.Run("answers an event", func(t *testing.T) {
		p, err := runtimeapi.Start(bin, append(base, "SECRET_ID=wxpay/merchant"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		raw, err := os.ReadFile(filepath.Join(root, "events", "payscore", "health.json"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ { // the second invocation reuses the warm container
			res, err := p.InvokeOrExit(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Err != nil {
				t.Fatalf("function error: %v", res.Err)
			}
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(res.Payload, &resp); err != nil {
				t.Fatalf("response %s: %v", res.Payload, err)
			}
			var rep health.Report
			if err := json.Unmarshal([]byte(resp.Body), &rep); err != nil {
				t.Fatalf("body %s: %v", resp.Body, err)
			}
			if resp.StatusCode != http.StatusOK || rep.Checks["credentials"] != "ok" || rep.Checks["table"] != "ok" {
				t.Fatalf("invocation %d: status %d body %s, want 200 with credentials and table ok", i, resp.StatusCode, resp.Body)
			}
		}
		if got := sm.Calls(); got != 1 {
			t.Fatalf("Secrets Manager served %d GetSecretValue calls for two invocations, want 1 (fetched once per container)", got)
		}
		if !strings.Contains(p.Output(), `"secrets loaded"`) && !strings.Contains(p.Output(), "secrets loaded") {
			t.Fatalf("bootstrap did not log its credentials load; output:\n%s", p.Output())
		}
		env.AssertNoSecrets(t, "bootstrap output", p.Output())
	})

	t.Run("fails init without leaking on a missing secret", func(t *testing.T) {
		p, err := runtimeapi.Start(bin, append(base, "SECRET_ID=wxpay/does-not-exist"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		select {
		case <-p.Exited():
		case <-time.After(time.Minute):
			t.Fatal("bootstrap kept running without its secret")
		}
		var exit interface{ ExitCode() int }
		if !errors.As(p.ExitErr(), &exit) || exit.ExitCode() == 0 {
			t.Fatalf("exit = %v, want a non-zero exit", p.ExitErr())
		}
		if !strings.Contains(p.Output(), "wxpay/does-not-exist") {
			t.Fatalf("init error does not name the secret id:\n%s", p.Output())
		}
		env.AssertNoSecrets(t, "bootstrap output", p.Output())
	})

	t.Run("fails init on missing configuration", func(t *testing.T) {
		p, err := runtimeapi.Start(bin, base[:5])
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		<-p.Exited()
		if !strings.Contains(p.Output(), "TABLE_NAME") || !strings.Contains(p.Output(), "SECRET_ID") {
			t.Fatalf("config error does not name the missing variables:\n%s", p.Output())
		}
	})
}

// TestEveryBootstrapAnswers is `make invoke` for one event of each function:
// the real bootstrap of every function, built for this host, answers a
// sample event under the local Runtime API.
func TestEveryBootstrapAnswers(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := lambdatest.NewEnv(t)
	sm := smfake.New()
	sm.Put("wxpay/merchant", string(env.SecretJSON))
	smSrv := httptest.NewServer(sm)
	defer smSrv.Close()
	base := []string{
		"PATH=" + os.Getenv("PATH"), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDLOCAL", "AWS_SECRET_ACCESS_KEY=SECRETLOCAL",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_DYNAMODB=" + os.Getenv(ddblocal.EnvEndpoint),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + smSrv.URL, "TABLE_NAME=" + env.Table, "SECRET_ID=wxpay/merchant",
	}
	cases := []struct {
		fn, event string
		check     func(t *testing.T, payload []byte)
	}{
		{"notify", "unknown-channel.json", wantHTTP(http.StatusNotFound)},
		{"payscore", "health.json", wantHTTP(http.StatusOK)},
		{"coupons", "health.json", wantHTTP(http.StatusOK)},
		{"payments", "health.json", wantHTTP(http.StatusOK)},
		{"billing", "schedule-daily.json", func(t *testing.T, payload []byte) {
			var res map[string]any
			if err := json.Unmarshal(payload, &res); err != nil || res["job"] != "daily-bills" {
				t.Fatalf("schedule answer %s (%v), want a daily-bills job result", payload, err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.fn, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "bootstrap")
			if err := runtimeapi.Build(ctx, root, tc.fn, runtime.GOARCH, bin); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(root, "events", tc.fn, tc.event))
			if err != nil {
				t.Fatal(err)
			}
			p, err := runtimeapi.Start(bin, base)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			res, err := p.InvokeOrExit(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Err != nil {
				t.Fatalf("function error: %v\n%s", res.Err, p.Output())
			}
			tc.check(t, res.Payload)
			env.AssertNoSecrets(t, tc.fn+" bootstrap output", p.Output())
		})
	}
}

func wantHTTP(status int) func(t *testing.T, payload []byte) {
	return func(t *testing.T, payload []byte) {
		t.Helper()
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(payload, &resp); err != nil || resp.StatusCode != status {
			t.Fatalf("answer %s (%v), want HTTP %d", payload, err, status)
		}
	}
}
