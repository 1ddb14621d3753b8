package lambdatest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payscore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/health"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

type check func(t *testing.T, out []byte)

func httpStatus(want int, code string) check {
	return func(t *testing.T, out []byte) {
		t.Helper()
		var resp events.APIGatewayV2HTTPResponse
		if err := lambdatest.DecodeStrict(out, &resp); err != nil {
			t.Fatalf("response is not an HTTP API v2 response: %v\n%s", err, out)
		}
		if resp.StatusCode != want {
			t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, resp.Body)
		}
		if code != "" {
			var body apigw.ErrorBody
			if err := lambdatest.DecodeStrict([]byte(resp.Body), &body); err != nil || body.Code != code || body.Message == "" {
				t.Fatalf("error body = %s (%v), want code %s with a message", resp.Body, err, code)
			}
		}
	}
}

func healthy(fn string) check {
	return func(t *testing.T, out []byte) {
		t.Helper()
		httpStatus(http.StatusOK, "")(t, out)
		var resp events.APIGatewayV2HTTPResponse
		_ = json.Unmarshal(out, &resp)
		var rep health.Report
		if err := lambdatest.DecodeStrict([]byte(resp.Body), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Function != fn || rep.Status != "ok" || rep.Checks["credentials"] != "ok" || rep.Checks["table"] != "ok" {
			t.Fatalf("health report = %+v, want %s ok with credentials and table ok", rep, fn)
		}
	}
}

// expectations lists every sample event and what its handler must answer.
// A file without an entry, or an entry without a file, fails the test. Each
// function's entries live in expect_<fn>_test.go.
func expectations() map[string]check {
	all := map[string]check{}
	for _, part := range []map[string]check{notifyExpectations(), payscoreExpectations(), couponsExpectations(),
		paymentsExpectations(), billingExpectations()} {
		for k, v := range part {
			all[k] = v
		}
	}
	return all
}

func TestSampleEvents(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := lambdatest.LoadEvents(root)
	if err != nil {
		t.Fatal(err)
	}
	env := lambdatest.NewEnv(t)
	type target struct {
		newEvent func() any
		handler  any
	}
	targets := map[string]target{
		"notify":   {func() any { return new(events.APIGatewayV2HTTPRequest) }, notify.New(env.Deps).Handle},
		"payscore": {func() any { return new(payscore.Event) }, payscore.New(env.Deps).Handle},
		"coupons":  {func() any { return new(events.APIGatewayV2HTTPRequest) }, coupons.New(env.Deps).Handle},
		"payments": {func() any { return new(events.APIGatewayV2HTTPRequest) }, payments.New(env.Deps).Handle},
		"billing":  {func() any { return new(billing.Event) }, billing.New(env.Deps).Handle},
	}
	seen := map[string]bool{}
	expect := expectations()
	for _, f := range files {
		seen[f.Key()] = true
		t.Run(f.Key(), func(t *testing.T) {
			tg, ok := targets[f.Function]
			if !ok {
				t.Fatalf("events/%s has no function", f.Function)
			}
			want, ok := expect[f.Key()]
			if !ok {
				t.Fatalf("no expectation for %s: add one so the event is really exercised", f.Key())
			}
			ev := tg.newEvent()
			if err := lambdatest.DecodeStrict(f.Raw, ev); err != nil {
				t.Fatalf("strict decode into %T: %v", ev, err)
			}
			again, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			again = dropZeroAuthentication(t, f.Raw, again)
			if eq, err := lambdatest.JSONEqual(f.Raw, again); err != nil || !eq {
				t.Fatalf("event does not round-trip through %T (err %v):\n got %s\nwant %s", ev, err, again, f.Raw)
			}
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-" + f.Name})
			out, err := lambda.NewHandler(tg.handler).Invoke(ctx, f.Raw)
			if err != nil {
				t.Fatalf("invoke: %v", err)
			}
			want(t, out)
		})
	}
	for key := range expect {
		if !seen[key] {
			t.Errorf("expectation for %s has no event file", key)
		}
	}
	env.AssertNoSecrets(t, "handler logs", env.Logs.String())
}

func TestStrictDecodingRejectsDrift(t *testing.T) {
	tests := map[string]struct {
		raw  string
		into any
	}{
		"REST v1 field in a v2 event": {`{"version":"2.0","routeKey":"GET /x","httpMethod":"GET"}`, new(events.APIGatewayV2HTTPRequest)},
		"unknown schedule field":      {`{"job":"daily-bills","when":"now"}`, new(billing.Event)},
		"neither shape":               {`{"detail-type":"Scheduled Event"}`, new(billing.Event)},
		"trailing data":               {`{"job":"daily-bills"} {}`, new(billing.Event)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := lambdatest.DecodeStrict([]byte(tc.raw), tc.into); err == nil {
				t.Fatalf("DecodeStrict(%s) into %T succeeded, want an error", tc.raw, tc.into)
			}
		})
	}
	if !strings.Contains(billing.PreviousBillDate(mustTime(t, "2026-11-22T16:00:00Z")), "2026-11-22") {
		t.Fatal("16:00 UTC is already the next Shanghai day: previous bill date must be 2026-11-22")
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// dropZeroAuthentication removes requestContext.authentication from a
// re-encoded event when the sample had none: aws-lambda-go marshals that
// struct even when empty (mTLS is off on our API), so it is the one field a
// round trip may add.
func dropZeroAuthentication(t *testing.T, orig, again []byte) []byte {
	t.Helper()
	var o, a map[string]any
	if json.Unmarshal(orig, &o) != nil || json.Unmarshal(again, &a) != nil {
		return again
	}
	oc, _ := o["requestContext"].(map[string]any)
	ac, _ := a["requestContext"].(map[string]any)
	if oc == nil || ac == nil {
		return again
	}
	if _, had := oc["authentication"]; had {
		return again
	}
	auth, _ := json.Marshal(ac["authentication"])
	if string(auth) != `{"clientCert":{"clientCertPem":"","issuerDN":"","serialNumber":"","subjectDN":"","validity":{"notAfter":"","notBefore":""}}}` {
		return again
	}
	delete(ac, "authentication")
	out, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
