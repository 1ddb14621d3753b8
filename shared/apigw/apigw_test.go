package apigw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

var errSecretish = errors.New("dynamodb endpoint http://10.0.0.1 said no")

func newRouter(logs *bytes.Buffer) *apigw.Router {
	echo := func(_ context.Context, req *apigw.Request) (*apigw.Response, error) {
		var in struct {
			Amount int64 `json:"amount"`
		}
		if err := apigw.DecodeJSON(req.Body, &in); err != nil {
			return nil, err
		}
		return apigw.JSON(http.StatusOK, map[string]any{"amount": in.Amount, "id": req.PathParams["id"], "sig": req.Header("Wechatpay-Signature")}), nil
	}
	fail := func(context.Context, *apigw.Request) (*apigw.Response, error) { return nil, errSecretish }
	classified := func(context.Context, *apigw.Request) (*apigw.Response, error) {
		return nil, errors.Join(errors.New("wrapped"), errConflict)
	}
	return apigw.NewRouter(slog.New(slog.NewJSONHandler(logs, nil)), []apigw.Route{
		{Method: "POST", Path: "/things/{id}", Handle: echo},
		{Method: "GET", Path: "/fail", Handle: fail},
		{Method: "GET", Path: "/conflict", Handle: classified},
	}, func(err error) *apigw.Error {
		if errors.Is(err, errConflict) {
			return &apigw.Error{Status: http.StatusConflict, Code: apigw.CodeConflict, Message: "conflict"}
		}
		return nil
	})
}

var errConflict = errors.New("conflict")

func event(method, path, routeKey, body string, b64 bool, headers map[string]string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: routeKey, RawPath: path, Headers: headers, Body: body, IsBase64Encoded: b64,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}}
}

func TestRouter(t *testing.T) {
	tests := []struct {
		name       string
		ev         events.APIGatewayV2HTTPRequest
		wantStatus int
		wantCode   string
		wantBody   string
	}{
		{"route key with params from the path", event("POST", "/things/42", "$default", `{"amount":551}`, false, map[string]string{"wechatpay-signature": "abc"}), 200, "", `{"amount":551,"id":"42","sig":"abc"}`},
		{"base64 body", event("POST", "/things/7", "$default", base64.StdEncoding.EncodeToString([]byte(`{"amount":1}`)), true, nil), 200, "", `{"amount":1,"id":"7","sig":""}`},
		{"bad base64", event("POST", "/things/7", "$default", "%%%", true, nil), 400, apigw.CodeInvalidRequest, ""},
		{"unknown field", event("POST", "/things/7", "$default", `{"amount":1,"x":2}`, false, nil), 400, apigw.CodeParamError, ""},
		{"wrong type", event("POST", "/things/7", "$default", `{"amount":"1"}`, false, nil), 400, apigw.CodeParamError, ""},
		{"overflowing amount", event("POST", "/things/7", "$default", `{"amount":99999999999999999999}`, false, nil), 400, apigw.CodeParamError, ""},
		{"malformed JSON", event("POST", "/things/7", "$default", `{"amount":`, false, nil), 400, apigw.CodeInvalidRequest, ""},
		{"empty body", event("POST", "/things/7", "$default", ``, false, nil), 400, apigw.CodeInvalidRequest, ""},
		{"trailing data", event("POST", "/things/7", "$default", `{"amount":1}{}`, false, nil), 400, apigw.CodeInvalidRequest, ""},
		{"huge body", event("POST", "/things/7", "$default", `{"amount":1,"pad":"`+strings.Repeat("a", apigw.MaxBodyBytes)+`"}`, false, nil), 413, apigw.CodeTooLarge, ""},
		{"unknown route", event("GET", "/nope", "GET /nope", "", false, nil), 404, apigw.CodeNotFound, ""},
		{"wrong method", event("GET", "/things/7", "$default", "", false, nil), 404, apigw.CodeNotFound, ""},
		{"internal error hidden", event("GET", "/fail", "GET /fail", "", false, nil), 500, apigw.CodeInternal, `{"code":"INTERNAL_ERROR","message":"internal error"}`},
		{"classified error", event("GET", "/conflict", "GET /conflict", "", false, nil), 409, apigw.CodeConflict, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			resp, err := newRouter(&logs).Handle(context.Background(), tc.ev)
			if err != nil {
				t.Fatalf("Handle returned a Go error %v; expected outcomes must be responses", err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, resp.Body, tc.wantStatus)
			}
			if resp.Headers["content-type"] != "application/json" {
				t.Fatalf("content-type = %q", resp.Headers["content-type"])
			}
			if tc.wantCode != "" {
				var eb apigw.ErrorBody
				if err := json.Unmarshal([]byte(resp.Body), &eb); err != nil || eb.Code != tc.wantCode || eb.Message == "" {
					t.Fatalf("body = %s, want code %s with a message", resp.Body, tc.wantCode)
				}
			}
			if tc.wantBody != "" && resp.Body != tc.wantBody {
				t.Fatalf("body = %s, want %s", resp.Body, tc.wantBody)
			}
			if tc.wantStatus == 500 && !strings.Contains(logs.String(), "10.0.0.1") {
				t.Fatalf("internal error was not logged for operators: %s", logs.String())
			}
			if strings.Contains(resp.Body, "10.0.0.1") {
				t.Fatalf("internal error text leaked to the caller: %s", resp.Body)
			}
		})
	}
}

func TestHeaderValueCaseInsensitive(t *testing.T) {
	h := map[string]string{"wechatpay-serial": "PUB_KEY_ID_1", "X-Mixed-Case": "v"}
	for name, want := range map[string]string{"Wechatpay-Serial": "PUB_KEY_ID_1", "WECHATPAY-SERIAL": "PUB_KEY_ID_1", "x-mixed-case": "v", "absent": ""} {
		if got := apigw.HeaderValue(h, name); got != want {
			t.Errorf("HeaderValue(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		tpl, path string
		ok        bool
		params    map[string]string
	}{
		{"/payscore/orders/{out_order_no}/complete", "/payscore/orders/A1/complete", true, map[string]string{"out_order_no": "A1"}},
		{"/payscore/orders/{out_order_no}", "/payscore/orders/A1/complete", false, nil},
		{"/payscore/orders/{out_order_no}", "/payscore/orders//", false, nil},
		{"/payscore/health", "/payscore/health", true, map[string]string{}},
	}
	for _, tc := range tests {
		params, ok := apigw.MatchPath(tc.tpl, tc.path)
		if ok != tc.ok || (ok && len(params) != len(tc.params)) {
			t.Fatalf("MatchPath(%q, %q) = %v %v, want %v %v", tc.tpl, tc.path, params, ok, tc.params, tc.ok)
		}
		for k, v := range tc.params {
			if params[k] != v {
				t.Fatalf("MatchPath(%q, %q)[%s] = %q, want %q", tc.tpl, tc.path, k, params[k], v)
			}
		}
	}
}
