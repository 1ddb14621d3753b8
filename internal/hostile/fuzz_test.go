package hostile_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/hostile"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

// maxSeed bounds the hostile-table rows used as fuzz seeds (the fuzzing
// engine mutates small inputs; the huge bodies have their own table cases).
const maxSeed = 64 << 10

// fuzzRoute is the fuzz target of one function's request decoding: a route
// of the function (from its handler's Routes()), its path parameters
// (newline-separated, in template order; missing ones take the fixture
// values), a raw query string, a body and the API Gateway base64 flag.
// Seeds: the function's sample events in events/<fn>/ and every row of the
// hostile table. The property: never a panic, never a Go error, never a
// 5xx, and a 4xx body is exactly {code, message}.
func fuzzRoute(f *testing.F, fn string) {
	w := newWorld(f, fn)
	routes := w.Routes(fn)
	specs := make([]hostile.Spec, len(routes))
	for i, rt := range routes {
		specs[i] = w.SpecFor(rt)
	}
	paramLine := func(rt apigw.Route, params map[string]string) string {
		var vals []string
		for _, name := range hostile.PathParams(rt.Path) {
			vals = append(vals, params[name])
		}
		return strings.Join(vals, "\n")
	}
	root, err := ddblocal.RepoRoot()
	if err != nil {
		f.Fatal(err)
	}
	samples, err := lambdatest.LoadEvents(root)
	if err != nil {
		f.Fatal(err)
	}
	seeded := 0
	for _, ev := range samples {
		if ev.Function != fn {
			continue
		}
		var e events.APIGatewayV2HTTPRequest
		if json.Unmarshal(ev.Raw, &e) != nil || e.RouteKey == "" {
			continue // a schedule input, not an HTTP event
		}
		for i, rt := range routes {
			if rt.Key() == e.RouteKey {
				f.Add(uint8(i), paramLine(rt, e.PathParameters), e.RawQueryString, []byte(e.Body), e.IsBase64Encoded)
				seeded++
			}
		}
	}
	if seeded == 0 {
		f.Fatalf("no sample event of %s matched a route: the seeds from events/%s are missing", fn, fn)
	}
	// The hostile table: each row once, as the table test applies it to
	// the first route it fits.
	seen := map[string]bool{}
	for i, rt := range routes {
		cases, err := hostile.Cases(rt, specs[i], hostile.Inputs())
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			body := c.Req.Body
			if c.Req.Base64 {
				body = []byte(base64.StdEncoding.EncodeToString(body))
			}
			if c.Control || seen[c.Input.Name] || len(body) > maxSeed || len(c.Req.Query) > maxSeed || len(paramLine(rt, c.Req.Params)) > maxSeed {
				continue
			}
			seen[c.Input.Name] = true
			f.Add(uint8(i), paramLine(rt, c.Req.Params), c.Req.Query, body, c.Req.Base64 || c.Req.RawBase64)
		}
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, route uint8, params, query string, body []byte, b64 bool) {
		i := int(route) % len(routes)
		rt := routes[i]
		vals := strings.Split(params, "\n")
		p := map[string]string{}
		for j, name := range hostile.PathParams(rt.Path) {
			p[name] = specs[i].Params[name]
			if j < len(vals) && vals[j] != "" {
				p[name] = vals[j]
			}
		}
		a := w.Invoke(ctx, fn, hostile.Request{Route: rt, Params: p, Query: query, Body: body, RawBase64: b64})
		switch {
		case a.Panic != nil:
			t.Fatalf("%s: PANIC %v (params %q query %q body %q)", rt.Key(), a.Panic, params, query, body)
		case a.Err != nil:
			t.Fatalf("%s: Go error %v (params %q query %q body %q)", rt.Key(), a.Err, params, query, body)
		case a.Status >= 500 && !documented5xx(fn, a):
			t.Fatalf("%s: %d %s (params %q query %q body %q)", rt.Key(), a.Status, a.Body, params, query, body)
		case a.Status >= 400 && a.Status < 500:
			if err := hostile.CheckErrorBody(a); err != nil {
				t.Fatalf("%s: %d %v: %s", rt.Key(), a.Status, err, a.Body)
			}
		}
	})
}

// documented5xx is the one 5xx a valid request may get in this stack: the
// billing run of a valid date answers 503 NOT_CONFIGURED (no bill storage),
// which proves the input passed every check.
func documented5xx(fn string, a hostile.Answer) bool {
	var e apigw.ErrorBody
	_ = json.Unmarshal([]byte(a.Body), &e)
	return fn == "billing" && a.Status == http.StatusServiceUnavailable && e.Code == "NOT_CONFIGURED"
}

// FuzzRoutePayments fuzzes every route of the payments function.
func FuzzRoutePayments(f *testing.F) { fuzzRoute(f, "payments") }

// FuzzRoutePayscore fuzzes every route of the payscore function.
func FuzzRoutePayscore(f *testing.F) { fuzzRoute(f, "payscore") }

// FuzzRouteCoupons fuzzes every route of the coupons function.
func FuzzRouteCoupons(f *testing.F) { fuzzRoute(f, "coupons") }

// FuzzRouteBilling fuzzes every route of the billing function.
func FuzzRouteBilling(f *testing.F) { fuzzRoute(f, "billing") }
