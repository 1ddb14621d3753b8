package frontdoor_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/health"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

func TestDoorServesEveryFunction(t *testing.T) {
	env := lambdatest.NewEnv(t)
	srv := httptest.NewServer(frontdoor.New(frontdoor.AllFunctions(env.Deps)...))
	defer srv.Close()

	for _, fn := range []string{"payscore", "coupons", "payments", "billing"} {
		resp, err := http.Get(srv.URL + "/" + fn + "/health")
		if err != nil {
			t.Fatal(err)
		}
		var rep health.Report
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || rep.Function != fn || rep.Status != "ok" {
			t.Fatalf("GET /%s/health = %d %+v (%v), want 200 ok", fn, resp.StatusCode, rep, err)
		}
	}

	tests := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/notify/nowhere", "{}", http.StatusNotFound, apigw.CodeNotFound},
		{"GET", "/no/such/route", "", http.StatusNotFound, apigw.CodeNotFound},
		{"DELETE", "/payscore/orders", "", http.StatusNotFound, apigw.CodeNotFound},
		{"POST", "/payments/orders/ORDER1/close", "{}", http.StatusNotFound, apigw.CodeNotFound},
		{"POST", "/payments/refunds", strings.Repeat("x", apigw.MaxBodyBytes+1), http.StatusRequestEntityTooLarge, apigw.CodeTooLarge},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body apigw.ErrorBody
		if resp.StatusCode != tc.status || json.Unmarshal(raw, &body) != nil || body.Code != tc.code {
			t.Fatalf("%s %s = %d %s, want %d with code %s", tc.method, tc.path, resp.StatusCode, raw, tc.status, tc.code)
		}
	}
}
