package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/internal/openapi"
	"github.com/wxpay-serverless/wxpay-serverless/internal/samtemplate"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payscore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

const (
	docPath      = "../../openapi.yaml"
	templatePath = "../../template.yaml"
)

func loadDoc(t *testing.T) (*openapi.Document, string) {
	t.Helper()
	src, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := openapi.Parse(src)
	if err != nil {
		t.Fatalf("parse %s: %v", docPath, err)
	}
	return d, string(src)
}

// route is one (method, path, scope) triple; scope "" is a public route.
type route struct{ method, path, scope string }

func (r route) String() string {
	s := r.scope
	if s == "" {
		s = "public"
	}
	return r.method + " " + r.path + " [" + s + "]"
}

// templateRoutes are the HttpApi events of template.yaml.
func templateRoutes(tpl *samtemplate.Template) []route {
	var out []route
	for _, r := range tpl.Routes {
		scope := ""
		if !r.Public {
			scope = strings.Join(r.Scopes, " ")
		}
		out = append(out, route{r.Method, r.Path, scope})
	}
	return out
}

// goRoutes are the route tables of the five handlers.
func goRoutes() []route {
	var out []route
	for _, rs := range [][]apigw.Route{notify.New(app.Deps{}).Routes(), payscore.New(app.Deps{}).Routes(),
		coupons.New(app.Deps{}).Routes(), payments.New(app.Deps{}).Routes(), billing.New(app.Deps{}).Routes()} {
		for _, r := range rs {
			out = append(out, route{r.Method, r.Path, string(r.Scope)})
		}
	}
	return out
}

func docRoutes(d *openapi.Document) []route {
	var out []route
	for _, op := range d.Operations() {
		out = append(out, route{op.Method, op.Path, strings.Join(op.Scopes, " ")})
	}
	return out
}

// routeProblems compares the document's operations with a route source:
// every route must be documented with the same scope, and every operation
// must be a route.
func routeProblems(source string, want, doc []route) []string {
	var p []string
	byKey := func(rs []route) map[string]route {
		m := map[string]route{}
		for _, r := range rs {
			m[r.method+" "+r.path] = r
		}
		return m
	}
	w, d := byKey(want), byKey(doc)
	for k, r := range w {
		got, ok := d[k]
		switch {
		case !ok:
			p = append(p, fmt.Sprintf("%s is in %s but not in openapi.yaml", r, source))
		case got.scope != r.scope:
			p = append(p, fmt.Sprintf("%s: openapi.yaml has scope %q, %s has %q", k, got.scope, source, r.scope))
		}
	}
	for k, r := range d {
		if _, ok := w[k]; !ok {
			p = append(p, fmt.Sprintf("%s is in openapi.yaml but not in %s", r, source))
		}
	}
	sort.Strings(p)
	return p
}

// TestRoutesMatchTemplateAndHandlers: the document's operations are exactly
// the routes of template.yaml and of the Go route tables, with the same
// scope (public for the notify route).
func TestRoutesMatchTemplateAndHandlers(t *testing.T) {
	d, _ := loadDoc(t)
	tpl, err := samtemplate.Load(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	tplRoutes := templateRoutes(tpl)
	if len(tplRoutes) < 40 {
		t.Fatalf("template.yaml lists %d routes; expected the full app (a parsing problem?)", len(tplRoutes))
	}
	for _, src := range []struct {
		name   string
		routes []route
	}{{"template.yaml", tplRoutes}, {"the Go route tables", goRoutes()}} {
		for _, p := range routeProblems(src.name, src.routes, docRoutes(d)) {
			t.Error(p)
		}
	}
	if n := len(d.Operations()); n != len(tplRoutes) {
		t.Errorf("openapi.yaml has %d operations, template.yaml %d routes", n, len(tplRoutes))
	}
}

// TestRouteCheckCatchesDrift proves the route comparison can fail: each
// case changes the document or the template in one place.
func TestRouteCheckCatchesDrift(t *testing.T) {
	_, docSrc := loadDoc(t)
	tplSrc, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     string // "doc" or "template"
		old, new string
		want     string
	}{
		{"route missing from the document", "doc", "  /payments/refunds/{out_refund_no}:\n    get:", "  /payments/refund/{out_refund_no}:\n    get:",
			"GET /payments/refunds/{out_refund_no} [wxpay/app] is in template.yaml but not in openapi.yaml"},
		{"route added to the template", "template", "Path: /payments/refunds/{out_refund_no}", "Path: /payments/refunds/{out_refund_no}/extra",
			"GET /payments/refunds/{out_refund_no}/extra [wxpay/app] is in template.yaml but not in openapi.yaml"},
		{"scope differs", "doc", "operationId: deactivateCoupon\n      summary: Invalidate a usable coupon for good (B16)\n      security: [{jwt: [wxpay/admin]}]",
			"operationId: deactivateCoupon\n      summary: Invalidate a usable coupon for good (B16)\n      security: [{jwt: [wxpay/app]}]",
			`POST /coupons/deactivate: openapi.yaml has scope "wxpay/app", template.yaml has "wxpay/admin"`},
		{"notify route not public", "doc", "      security: []\n      parameters:\n        - $ref: '#/components/parameters/Channel'",
			"      security: [{jwt: [wxpay/app]}]\n      parameters:\n        - $ref: '#/components/parameters/Channel'",
			`POST /notify/{channel}: openapi.yaml has scope "wxpay/app", template.yaml has ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := docSrc
			if tt.file == "template" {
				src = string(tplSrc)
			}
			if !strings.Contains(src, tt.old) {
				t.Fatalf("%s no longer contains %q; update this case", tt.file, tt.old)
			}
			mutated := strings.Replace(src, tt.old, tt.new, 1)
			docText, tplText := docSrc, string(tplSrc)
			if tt.file == "template" {
				tplText = mutated
			} else {
				docText = mutated
			}
			d, err := openapi.Parse([]byte(docText))
			if err != nil {
				t.Fatalf("parse mutated document: %v", err)
			}
			tpl, err := samtemplate.Parse([]byte(tplText))
			if err != nil {
				t.Fatalf("parse mutated template: %v", err)
			}
			got := routeProblems("template.yaml", templateRoutes(tpl), docRoutes(d))
			if !containsSubstring(got, tt.want) {
				t.Errorf("problems = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

func containsSubstring(list []string, want string) bool {
	for _, s := range list {
		if strings.Contains(s, want) {
			return true
		}
	}
	return false
}

// TestDocumentCheck: the document passes its own structural checks (every
// operation has its success response, 4XX/5XX with the error schema, 401
// and 403 when it needs a token, declared path parameters; every schema
// uses only validated keywords; every example matches its schema).
func TestDocumentCheck(t *testing.T) {
	d, _ := loadDoc(t)
	for _, p := range d.Check() {
		t.Error(p)
	}
	if n := len(d.Operations()); n < 40 {
		t.Errorf("%d operations; expected the full app", n)
	}
}

// TestDocumentCheckCatchesMistakes proves Check can fail: each case breaks
// openapi.yaml in one place.
func TestDocumentCheckCatchesMistakes(t *testing.T) {
	_, src := loadDoc(t)
	tests := []struct {
		name, old, new, want string
	}{
		{"missing error response", `        "4XX": {$ref: '#/components/responses/ClientError'}
        "5XX": {$ref: '#/components/responses/ServerError'}

  # ------------------------------------------------------------------ payscore`, `        "5XX": {$ref: '#/components/responses/ServerError'}

  # ------------------------------------------------------------------ payscore`, "POST /notify/{channel}: response 4XX is missing"},
		{"4XX without the error schema", "    ClientError:\n      description: The request was refused; nothing was changed. The code names the rule (PARAM_ERROR, NOT_FOUND, CONFLICT, a flow's own code, or WeChat Pay's).\n      content:\n        application/json:\n          schema: {$ref: '#/components/schemas/Error'}",
			"    ClientError:\n      description: The request was refused; nothing was changed. The code names the rule (PARAM_ERROR, NOT_FOUND, CONFLICT, a flow's own code, or WeChat Pay's).\n      content:\n        application/json:\n          schema: {$ref: '#/components/schemas/GatewayError'}",
			"response 4XX does not use the error schema"},
		{"no 401 on a secured route", "      operationId: getRefund\n      summary: A refund; live=true asks WeChat Pay and applies what it reports\n      security: [{jwt: [wxpay/app]}]\n      parameters:\n        - $ref: '#/components/parameters/OutRefundNo'\n        - {name: live, in: query, required: false, schema: {type: string, enum: [\"true\", \"false\", \"1\", \"0\"]}}\n      responses:\n        \"200\":\n          description: The refund.\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Refund'}\n        \"401\": {$ref: '#/components/responses/Unauthorized'}\n",
			"      operationId: getRefund\n      summary: A refund; live=true asks WeChat Pay and applies what it reports\n      security: [{jwt: [wxpay/app]}]\n      parameters:\n        - $ref: '#/components/parameters/OutRefundNo'\n        - {name: live, in: query, required: false, schema: {type: string, enum: [\"true\", \"false\", \"1\", \"0\"]}}\n      responses:\n        \"200\":\n          description: The refund.\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Refund'}\n",
			"GET /payments/refunds/{out_refund_no}: response 401 is missing"},
		{"no security", "      operationId: getReconciliation\n      summary: The reconciliation record of a date\n      security: [{jwt: [wxpay/admin]}]\n",
			"      operationId: getReconciliation\n      summary: The reconciliation record of a date\n", "GET /billing/reconciliations/{bill_date}: security is not declared"},
		{"undeclared path parameter", "      operationId: getReconciliation\n      summary: The reconciliation record of a date\n      security: [{jwt: [wxpay/admin]}]\n      parameters:\n        - $ref: '#/components/parameters/BillDate'\n",
			"      operationId: getReconciliation\n      summary: The reconciliation record of a date\n      security: [{jwt: [wxpay/admin]}]\n", "path parameter {bill_date} is not declared"},
		{"duplicate operationId", "operationId: getReconciliation", "operationId: runReconciliation", "operationId runReconciliation is also used"},
		{"dangling reference", "schema: {$ref: '#/components/schemas/Refund'}", "schema: {$ref: '#/components/schemas/Refnud'}", `reference "#/components/schemas/Refnud" does not resolve`},
		{"unsupported keyword", "    Fen:\n      type: integer\n", "    Fen:\n      type: integer\n      multipleOf: 1\n", `keyword "multipleOf" is not supported`},
		{"implicit additionalProperties", "    GatewayError:\n      type: object\n      description: API Gateway's own error body (authorizer refusals, integration failures).\n      required: [message]\n      additionalProperties: false\n",
			"    GatewayError:\n      type: object\n      description: API Gateway's own error body (authorizer refusals, integration failures).\n      required: [message]\n", "GatewayError: object with properties must declare additionalProperties"},
		{"required property not defined", "      required: [function, status, checks, time]", "      required: [function, status, checks, time, uptime]", `required property "uptime" is not in properties`},
		{"pattern that does not compile", "pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'", "pattern: '^([0-9]{4}-[0-9]{2}-[0-9]{2}$'", "does not compile"},
		{"example that violates its schema", "example: {function: payments, status: ok,", "example: {function: payments, status: fine,", `"fine" is not one of`},
		{"unknown type", "    Fen:\n      type: integer\n", "    Fen:\n      type: int\n", "unknown type int"},
		{"wrong version", "openapi: 3.1.0", "openapi: 3.0.3", `openapi is "3.0.3", want 3.1.x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("openapi.yaml no longer contains %q; update this case", tt.old)
			}
			d, err := openapi.Parse([]byte(strings.Replace(src, tt.old, tt.new, 1)))
			if err != nil {
				t.Fatalf("parse mutated document: %v", err)
			}
			if got := d.Check(); !containsSubstring(got, tt.want) {
				t.Errorf("Check() = %q, want a problem containing %q", got, tt.want)
			}
		})
	}
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// TestCheckExchange covers the exchange rules with the real document: each
// case is one request/response a client could see and the violation it
// must (or must not) produce.
func TestCheckExchange(t *testing.T) {
	d, _ := loadDoc(t)
	envelope := `{"id":"EV-1","create_time":"2026-01-01T00:00:00+08:00","event_type":"TRANSACTION.SUCCESS","resource_type":"encrypt-resource",
		"summary":"支付成功","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"c","nonce":"n","associated_data":"transaction","original_type":"transaction"}}`
	order := `{"out_trade_no":"ORDER0001","status":"NOTPAY","amount":{"total":100,"payer_total":100,"currency":"CNY"},
		"settlement_total":100,"coupon_total":0,"nocash_total":0,"promotion_detail":[],"code_url":"weixin://wxpay/bizpayurl?pr=x"}`
	tests := []struct {
		name string
		x    openapi.Exchange
		want []string // substrings of the violations; none means the exchange matches
	}{
		{"health ok", openapi.Exchange{Method: "GET", Path: "/payments/health", Status: 200, Header: jsonHeader(),
			Body: []byte(`{"function":"payments","status":"ok","checks":{"table":"ok"},"time":"2026-01-01T00:00:00Z"}`)}, nil},
		{"health missing field", openapi.Exchange{Method: "GET", Path: "/payments/health", Status: 200, Header: jsonHeader(),
			Body: []byte(`{"function":"payments","status":"ok","checks":{}}`)}, []string{`$: required property "time" is missing`}},
		{"degraded health is 503 with the report", openapi.Exchange{Method: "GET", Path: "/billing/health", Status: 503, Header: jsonHeader(),
			Body: []byte(`{"function":"billing","status":"degraded","checks":{"table":"failed"},"time":"2026-01-01T00:00:00Z"}`)}, nil},
		{"order ok", openapi.Exchange{Method: "POST", Path: "/payments/orders", Status: 200, Header: jsonHeader(), Body: []byte(order),
			RequestBody: []byte(`{"trade_type":"NATIVE","out_trade_no":"ORDER0001","description":"d","amount":{"total":100}}`)}, nil},
		{"order amount with a float", openapi.Exchange{Method: "POST", Path: "/payments/orders", Status: 200, Header: jsonHeader(),
			Body: []byte(strings.Replace(order, `"total":100,`, `"total":1.5,`, 1))}, []string{"$.amount.total: type is number, want integer"}},
		{"order with an undocumented field", openapi.Exchange{Method: "GET", Path: "/payments/orders/ORDER0001?live=true", Status: 200, Header: jsonHeader(),
			Body: []byte(strings.Replace(order, `"status"`, `"secret":"x","status"`, 1))}, []string{"$.secret: property is not allowed"}},
		{"accepted request the document refuses", openapi.Exchange{Method: "POST", Path: "/payments/orders", Status: 200, Header: jsonHeader(), Body: []byte(order),
			RequestBody: []byte(`{"trade_type":"NATIVE","out_trade_no":"ORDER0001","description":"d","amount":{"total":0}}`)},
			[]string{"request $.amount.total: 0 is below the minimum 1"}},
		{"refused request is not checked", openapi.Exchange{Method: "POST", Path: "/payments/orders", Status: 400, Header: jsonHeader(),
			Body: []byte(`{"code":"PARAM_ERROR","message":"amount.total must be positive"}`), RequestBody: []byte(`{"amount":{"total":0}}`)}, nil},
		{"error without message", openapi.Exchange{Method: "POST", Path: "/payments/refunds", Status: 409, Header: jsonHeader(),
			Body: []byte(`{"code":"CONFLICT"}`)}, []string{`$: required property "message" is missing`}},
		{"error code not upper case", openapi.Exchange{Method: "POST", Path: "/payments/refunds", Status: 400, Header: jsonHeader(),
			Body: []byte(`{"code":"bad","message":"m"}`)}, []string{`$.code: "bad" does not match pattern`}},
		{"gateway 401", openapi.Exchange{Method: "GET", Path: "/coupons/callback", Status: 401, Header: jsonHeader(), Body: []byte(`{"message":"Unauthorized"}`)}, nil},
		{"gateway body is not a 4xx of a function", openapi.Exchange{Method: "GET", Path: "/coupons/callback", Status: 400, Header: jsonHeader(),
			Body: []byte(`{"message":"Bad"}`)}, []string{`$: required property "code" is missing`}},
		{"undocumented status", openapi.Exchange{Method: "GET", Path: "/payments/orders/ORDER0001", Status: 302, Header: http.Header{}},
			[]string{"status 302 is not documented"}},
		{"success body missing", openapi.Exchange{Method: "GET", Path: "/payments/orders/ORDER0001", Status: 200, Header: http.Header{}},
			[]string{"documented with a JSON body, got none"}},
		{"wrong content type", openapi.Exchange{Method: "GET", Path: "/payments/orders/ORDER0001", Status: 200, Header: http.Header{"Content-Type": {"text/plain"}},
			Body: []byte(order)}, []string{`header Content-Type: "text/plain", want application/json`}},
		{"notify 204", openapi.Exchange{Method: "POST", Path: "/notify/payments", Status: 204, Header: http.Header{}, RequestBody: []byte(envelope)}, nil},
		{"notify 204 with a body", openapi.Exchange{Method: "POST", Path: "/notify/payments", Status: 204, Header: jsonHeader(), Body: []byte(`{}`)},
			[]string{"documented without a body"}},
		{"notify without a body", openapi.Exchange{Method: "POST", Path: "/notify/payments", Status: 204, Header: http.Header{}},
			[]string{"request: the request body is documented as required"}},
		{"notify bad channel value", openapi.Exchange{Method: "POST", Path: "/notify/mail", Status: 204, Header: http.Header{}, RequestBody: []byte(envelope)},
			[]string{`path channel: "mail" is not one of`}},
		{"required header missing", openapi.Exchange{Method: "POST", Path: "/billing/reconciliations/2026-01-01", Status: 202, Header: jsonHeader(),
			Body: []byte(`{"bill_date":"2026-01-01","status":"PENDING","run_id":"r","trigger":"api","started_at":"2026-01-02T10:00:00+08:00","retry_after_seconds":1800}`)},
			[]string{"header retry-after: required response header is missing"}},
		{"unknown route answered 404", openapi.Exchange{Method: "GET", Path: "/nowhere", Status: 404, Header: jsonHeader(),
			Body: []byte(`{"code":"NOT_FOUND","message":"no route"}`)}, nil},
		{"unknown route answered 200", openapi.Exchange{Method: "GET", Path: "/nowhere", Status: 200, Header: jsonHeader(), Body: []byte(`{}`)},
			[]string{"no operation in the document matches this request"}},
		{"wrong method is no operation", openapi.Exchange{Method: "PUT", Path: "/payments/orders", Status: 200, Header: jsonHeader(), Body: []byte(`{}`)},
			[]string{"no operation in the document matches"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.CheckExchange(tt.x)
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("CheckExchange(%s %s -> %d %s) = %v, want a match", tt.x.Method, tt.x.Path, tt.x.Status, tt.x.Body, err)
				}
				return
			}
			var me *openapi.MismatchError
			if !errors.As(err, &me) || !errors.Is(err, openapi.ErrMismatch) {
				t.Fatalf("CheckExchange(%s %s -> %d %s) = %v, want a *MismatchError", tt.x.Method, tt.x.Path, tt.x.Status, tt.x.Body, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckExchange(%s %s -> %d) = %v, want a violation containing %q", tt.x.Method, tt.x.Path, tt.x.Status, err, w)
				}
			}
		})
	}
}

// doorWorld serves the five real handlers through the local front door
// (no JWT checks: scopes are the route tests' concern) over DynamoDB Local,
// without a WeChat Pay client.
type doorWorld struct {
	env *lambdatest.Env
	url string
	doc *openapi.Document
}

func newDoorWorld(t *testing.T) *doorWorld {
	t.Helper()
	env := lambdatest.NewEnv(t)
	srv := httptest.NewServer(frontdoor.New(frontdoor.AllFunctions(env.Deps)...))
	t.Cleanup(srv.Close)
	d, _ := loadDoc(t)
	return &doorWorld{env: env, url: srv.URL, doc: d}
}

// exchange sends a request to the real handlers and checks the exchange
// against the document; it returns the status and body.
func (w *doorWorld) exchange(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, w.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	x := openapi.Exchange{Method: method, Path: path, RequestBody: body, Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if err := w.doc.CheckExchange(x); err != nil {
		t.Errorf("%v\n\tresponse body: %s", err, raw)
	}
	return resp.StatusCode, raw
}

// yesterday is the latest bill date the billing routes accept.
func yesterday() string { return ledger.Day(time.Now().AddDate(0, 0, -1)) }

// samplePath fills a path template with values that pass every handler's
// path rules.
func samplePath(template string) string {
	values := map[string]string{"channel": "payments", "authorization_code": "PA0001", "openid": "oUser1", "out_order_no": "PS000001",
		"stock_id": "1212345678", "coupon_code": "CODE0001", "activity_id": "10028001", "out_trade_no": "ORDER0001",
		"out_refund_no": "RF0001", "bill_date": yesterday()}
	return regexp.MustCompile(`\{([^{}]+)\}`).ReplaceAllStringFunc(template, func(m string) string {
		if v, ok := values[m[1:len(m)-1]]; ok {
			return v
		}
		return "x"
	})
}

// TestHandlerErrorsMatchDocument sends every operation of the document to
// the real handlers in a state where none can succeed at WeChat Pay (no
// client configured, empty ledger), with an unknown body field where the
// operation takes a body, and checks each answer against the document:
// every refusal carries the documented error shape and status, and no
// operation with a body accepts an unknown field (the document's "decoded
// strictly" promise).
func TestHandlerErrorsMatchDocument(t *testing.T) {
	w := newDoorWorld(t)
	for _, op := range w.doc.Operations() {
		t.Run(op.Key(), func(t *testing.T) {
			var body []byte
			if _, ok := op.Raw["requestBody"]; ok {
				body = []byte(`{"openapi_probe_unknown_field":1}`)
			}
			status, raw := w.exchange(t, op.Method, samplePath(op.Path), body)
			t.Logf("%s -> %d %s", op.Key(), status, raw)
			if body != nil && (status < 400 || status > 499) {
				t.Errorf("%s with an unknown body field = %d %s, want a 4xx refusal", op.Key(), status, raw)
			}
			if status >= 200 && status < 300 && !strings.HasSuffix(op.Path, "/health") {
				t.Errorf("%s = %d %s without WeChat Pay or ledger data; want a refusal", op.Key(), status, raw)
			}
		})
	}
}

// TestBillingResponsesMatchDocument stores a reconciliation record the way
// the pipeline does (summary and first differences as JSON) and reads it
// through the real billing routes: the billing schemas are checked against
// the handler even where the end-to-end tests do not reach.
func TestBillingResponsesMatchDocument(t *testing.T) {
	w := newDoorWorld(t)
	ctx := context.Background()
	day := yesterday()
	sum := reconcile.Summary{Date: day, Matched: 3, Differences: 1,
		ByClass:    map[reconcile.Class]int64{reconcile.AmountPayer: 1},
		Identities: []reconcile.Identity{{Name: "order_total = settlement + nocash", Left: 300, Right: 300, OK: true}}}
	sumJSON, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := json.Marshal([]reconcile.Difference{{Class: reconcile.AmountPayer, Kind: "charge", Key: "ORDER0001", Side: "both",
		Field: "payer_total", Bill: "1.00", Ledger: "0.90", DeltaFen: 10, Line: 2}})
	if err != nil {
		t.Fatal(err)
	}
	stamp := ledger.WechatTime(time.Now())
	rec := billing.Record{BillDate: day, Status: billing.StatusDone, RunID: "run-1", Trigger: "api", StartedAt: stamp, FinishedAt: stamp,
		TradeBill:   &billing.BillFile{Kind: "tradebill", Type: "ALL", RawBytes: 10, Bytes: 20, Rows: 3, Verified: true},
		ResultRunID: "run-1", ResultAt: stamp, Differences: 1, ByClass: map[string]int64{string(reconcile.AmountPayer): 1},
		Reports: map[string]string{"differences": "reports/" + day + "/differences.csv"}, Ledger: &billing.LedgerStats{Queries: 2, Items: map[string]int{"PAY": 3}},
		SummaryJSON: string(sumJSON), FirstJSON: string(diffs)}
	if err := w.env.Store.Put(ctx, &store.Put{Key: billing.RunKey(day), Value: rec}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		body               []byte
		wantStatus         int
	}{
		{"stored result", http.MethodGet, "/billing/reconciliations/" + day, nil, http.StatusOK},
		{"unknown date", http.MethodGet, "/billing/reconciliations/2020-01-02", nil, http.StatusNotFound},
		{"not a date", http.MethodGet, "/billing/reconciliations/yesterday", nil, http.StatusBadRequest},
		{"future date", http.MethodPost, "/billing/reconciliations/2099-01-01", []byte(`{}`), http.StatusBadRequest},
		{"run without WeChat Pay", http.MethodPost, "/billing/reconciliations/" + day, nil, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, raw := w.exchange(t, tt.method, tt.path, tt.body); status != tt.wantStatus {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, status, raw, tt.wantStatus)
			}
		})
	}
}

// TestNotifyResponsesMatchDocument posts signed notifications through the
// front door to the real notify handler: an accepted delivery (204, no
// body), its duplicate, and a tampered one (401 with the error body).
func TestNotifyResponsesMatchDocument(t *testing.T) {
	w := newDoorWorld(t)
	txn := map[string]any{"appid": w.env.Merchant.AppID, "mchid": w.env.Merchant.MchID, "out_trade_no": "ORDER0001",
		"transaction_id": "4200000000000000000000000001", "trade_type": "NATIVE", "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
		"bank_type": "OTHERS", "success_time": ledger.WechatTime(time.Now()), "payer": map[string]any{"openid": "oUser1"},
		"amount": map[string]any{"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"}}
	ev := w.env.Notification(t, "payments", "TRANSACTION.SUCCESS", "transaction", txn, lambdatest.NotificationOptions{})
	tampered := w.env.Notification(t, "payments", "TRANSACTION.SUCCESS", "transaction", txn, lambdatest.NotificationOptions{Tamper: true})
	tests := []struct {
		name       string
		headers    map[string]string
		body       string
		wantStatus int
	}{
		{"accepted", ev.Headers, ev.Body, http.StatusNoContent},
		{"duplicate", ev.Headers, ev.Body, http.StatusNoContent},
		{"tampered", tampered.Headers, tampered.Body, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, w.url+"/notify/payments", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("POST /notify/payments (%s) = %d %s, want %d", tt.name, resp.StatusCode, raw, tt.wantStatus)
			}
			x := openapi.Exchange{Method: http.MethodPost, Path: "/notify/payments", RequestBody: []byte(tt.body), Status: resp.StatusCode, Header: resp.Header, Body: raw}
			if err := w.doc.CheckExchange(x); err != nil {
				t.Errorf("%v\n\tresponse body: %s", err, raw)
			}
		})
	}
}

// stackWorld is the whole local stack (simulator, JWT front door, DynamoDB
// Local) for operations the end-to-end tests do not reach.
type stackWorld struct {
	s     *stack.Stack
	doc   *openapi.Document
	token string
}

func newStackWorld(t *testing.T) *stackWorld {
	t.Helper()
	s, err := stack.Start(context.Background(), stack.Options{DynamoDBEndpoint: os.Getenv(ddblocal.EnvEndpoint),
		Table: fmt.Sprintf("openapi_%d", time.Now().UnixNano()), TimeScale: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	token, err := s.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := loadDoc(t)
	return &stackWorld{s: s, doc: d, token: token}
}

// call sends in as JSON with the dev token, checks the exchange against the
// document and the status, and decodes the answer.
func (w *stackWorld) call(t *testing.T, method, path string, in any, wantStatus int) map[string]any {
	t.Helper()
	var body []byte
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body, rd = b, bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.s.FrontURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	x := openapi.Exchange{Method: method, Path: path, RequestBody: body, Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if err := w.doc.CheckExchange(x); err != nil {
		t.Errorf("%v\n\tresponse body: %s", err, raw)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, wantStatus)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return out
}

func stockBody(mode, appID string) map[string]any {
	now := time.Now()
	return map[string]any{
		"stock_name": "开放接口测试券", "goods_name": "全场可用", "stock_type": "NORMAL", "coupon_code_mode": mode,
		"coupon_use_rule": map[string]any{
			"coupon_available_time": map[string]any{"available_begin_time": ledger.WechatTime(now.Add(-time.Hour)),
				"available_end_time": ledger.WechatTime(now.Add(30 * 24 * time.Hour))},
			"fixed_normal_coupon": map[string]any{"discount_amount": 500, "transaction_minimum": 1000},
			"use_method":          "OFF_LINE",
		},
		"stock_send_rule": map[string]any{"max_coupons": 10, "max_coupons_per_user": 2},
		"notify_config":   map[string]any{"notify_appid": appID},
	}
}

// TestCouponAdminOperationsMatchDocument drives the coupon operations the
// end-to-end tests do not reach (stock changes, budgets, uploaded codes,
// API sends, order links, the callback query, a replayed answer) against
// the simulator and checks every exchange against the document.
func TestCouponAdminOperationsMatchDocument(t *testing.T) {
	w := newStackWorld(t)
	const openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
	appID := w.s.Merchant.AppID

	w.call(t, http.MethodPut, "/coupons/callback", nil, http.StatusOK)
	if cb := w.call(t, http.MethodGet, "/coupons/callback", nil, http.StatusOK); cb["mchid"] != w.s.Merchant.MchID {
		t.Errorf("GET /coupons/callback = %v, want mchid %s", cb, w.s.Merchant.MchID)
	}

	stock := w.call(t, http.MethodPost, "/coupons/stocks", stockBody("WECHATPAY_MODE", appID), http.StatusOK)["stock_id"].(string)
	w.call(t, http.MethodPatch, "/coupons/stocks/"+stock, map[string]any{"stock_name": "改名后的券"}, http.StatusOK)
	w.call(t, http.MethodPost, "/coupons/stocks/"+stock+"/budget", map[string]any{"target_max_coupons": 20}, http.StatusOK)
	send := map[string]any{"stock_id": stock, "openid": openid}
	code := w.call(t, http.MethodPost, "/coupons/send", send, http.StatusOK)["coupon_code"].(string)
	link := map[string]any{"stock_id": stock, "coupon_code": code, "out_trade_no": "ORDER000001"}
	w.call(t, http.MethodPost, "/coupons/associate", link, http.StatusOK)
	w.call(t, http.MethodPost, "/coupons/disassociate", link, http.StatusOK)
	w.call(t, http.MethodPost, "/coupons/disassociate", link, http.StatusOK) // the same request again: replayed
	w.call(t, http.MethodPost, "/coupons/disassociate", map[string]any{"stock_id": stock, "coupon_code": code, "out_trade_no": "ORDER000002"}, http.StatusConflict)

	upload := w.call(t, http.MethodPost, "/coupons/stocks", stockBody("MERCHANT_UPLOAD", appID), http.StatusOK)["stock_id"].(string)
	codes := "/coupons/stocks/" + upload + "/codes"
	up := map[string]any{"coupon_code_list": []string{"OACODE01", "OACODE02"}, "upload_request_no": "UPLOAD0001"}
	w.call(t, http.MethodPost, codes, up, http.StatusOK)
	w.call(t, http.MethodPost, codes, up, http.StatusOK) // replayed: x-idempotent-replay
	if list := w.call(t, http.MethodGet, codes+"?limit=10&offset=0", nil, http.StatusOK); list["total_count"] != 2.0 {
		t.Errorf("GET %s = %v, want total_count 2", codes, list)
	}
	w.call(t, http.MethodGet, codes+"/OACODE01", nil, http.StatusOK)
	w.call(t, http.MethodDelete, codes+"/OACODE02", nil, http.StatusOK)
	w.call(t, http.MethodGet, codes+"?limit=51", nil, http.StatusBadRequest)
}
