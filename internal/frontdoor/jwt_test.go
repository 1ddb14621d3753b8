package frontdoor_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

// TestJWTAuthorizer: app routes reject missing, invalid and expired tokens
// (401) and tokens without the route's scope (403), as the HTTP API's JWT
// authorizer does; the notify route stays public; a good token reaches the
// function with its claims and scopes.
func TestJWTAuthorizer(t *testing.T) {
	env := lambdatest.NewEnv(t)
	auth, err := frontdoor.NewDevAuthorizer()
	if err != nil {
		t.Fatal(err)
	}
	other, err := frontdoor.NewDevAuthorizer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(frontdoor.NewWithAuthorizer(auth, frontdoor.AllFunctions(env.Deps)...))
	defer srv.Close()
	tok := func(a *frontdoor.Authorizer, ttl time.Duration, scopes ...apigw.Scope) string {
		s, err := a.Token("tester", ttl, scopes...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := tok(auth, time.Hour, apigw.ScopeApp)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	wrongIssuer := *auth
	wrongIssuer.Issuer = "https://evil.example"
	tests := []struct {
		name, method, path, header string
		status                     int
	}{
		{"missing token", "GET", "/payscore/health", "", 401},
		{"not a bearer token", "GET", "/payscore/health", "Basic dXNlcjpwYXNz", 401},
		{"garbage token", "GET", "/payscore/health", "Bearer a.b.c", 401},
		{"tampered claims", "GET", "/payscore/health", "Bearer " + tampered, 401},
		{"another issuer's key", "GET", "/payscore/health", "Bearer " + tok(other, time.Hour, apigw.ScopeApp), 401},
		{"wrong issuer claim", "GET", "/payscore/health", "Bearer " + tok(&wrongIssuer, time.Hour, apigw.ScopeApp), 401},
		{"expired", "GET", "/payscore/health", "Bearer " + tok(auth, -time.Minute, apigw.ScopeApp), 401},
		{"app token on an admin route", "POST", "/coupons/stocks", "Bearer " + good, 403},
		{"admin token on an app route", "GET", "/payscore/health", "Bearer " + tok(auth, time.Hour, apigw.ScopeAdmin), 403},
		{"good app token", "GET", "/payscore/health", "Bearer " + good, 200},
		{"notify is public", "POST", "/notify/payments", "", 401}, // the function's own signature check answers, not the authorizer
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s with %q = %d %s, want %d", tc.method, tc.path, tc.header, resp.StatusCode, body, tc.status)
			}
			if tc.name == "notify is public" {
				var eb apigw.ErrorBody
				if json.Unmarshal(body, &eb) != nil || eb.Code != "MALFORMED_SIGNATURE" {
					t.Fatalf("notify answered %s; want the function's signature error, not the authorizer's", body)
				}
			}
		})
	}
}
