// Package frontdoor is the local stand-in for API Gateway: it turns net/http
// requests into the same HTTP API (payload 2.0) events the functions get in
// AWS, calls the function handlers in-process, and writes their responses
// back. Only local tools and tests use it; Lambda never links it.
package frontdoor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

// Target is one function behind the door.
type Target struct {
	Function string
	Routes   []apigw.Route
	Handle   func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
}

// Door routes requests to targets by method and path template.
type Door struct {
	targets []Target
	auth    *Authorizer // nil: no JWT checks (unit tests of handlers only)
	now     func() time.Time
	seq     atomic.Int64
}

// New builds a door over targets without JWT checks.
func New(targets ...Target) *Door { return &Door{targets: targets, now: time.Now} }

// NewWithAuthorizer builds a door that enforces JWTs on every route with a
// scope, as the HTTP API's JWT authorizer does in AWS.
func NewWithAuthorizer(auth *Authorizer, targets ...Target) *Door {
	return &Door{targets: targets, auth: auth, now: time.Now}
}

// ServeHTTP implements http.Handler.
func (d *Door) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tgt, route, params, ok := d.match(r.Method, r.URL.Path)
	if !ok {
		writeJSON(w, http.StatusNotFound, `{"code":"NOT_FOUND","message":"no route"}`)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, apigw.MaxBodyBytes*2))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"code":"INVALID_REQUEST","message":"unreadable body"}`)
		return
	}
	e := d.Event(r, route, params, body)
	if d.auth != nil && route.Scope != apigw.ScopeNone {
		jwt, err := d.auth.Check(r.Header.Get("Authorization"), route.Scope)
		switch {
		case errors.Is(err, ErrForbidden):
			writeJSON(w, http.StatusForbidden, `{"message":"Forbidden"}`)
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, `{"message":"Unauthorized"}`)
			return
		}
		e.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: jwt}
	}
	resp, err := tgt.Handle(r.Context(), e)
	if err != nil {
		// A Go error from an HTTP function is an API Gateway 500.
		writeJSON(w, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	out := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			writeJSON(w, http.StatusBadGateway, `{"message":"bad base64 response body"}`)
			return
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (d *Door) match(method, path string) (Target, apigw.Route, map[string]string, bool) {
	for _, t := range d.targets {
		for _, rt := range t.Routes {
			if rt.Method != method {
				continue
			}
			if params, ok := apigw.MatchPath(rt.Path, path); ok {
				return t, rt, params, true
			}
		}
	}
	return Target{}, apigw.Route{}, nil, false
}

// Event builds the v2 event API Gateway would send for r on route.
func (d *Door) Event(r *http.Request, route apigw.Route, params map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	seq := d.seq.Add(1)
	now := d.now()
	headers := map[string]string{}
	for k, vs := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	query := map[string]string{}
	for k, vs := range r.URL.Query() {
		query[k] = strings.Join(vs, ",")
	}
	e := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       route.Key(),
		RawPath:        r.URL.Path,
		RawQueryString: r.URL.RawQuery,
		Headers:        headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     route.Key(),
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    fmt.Sprintf("local-%d-%d", now.UnixNano(), seq),
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: "local",
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: strings.Split(r.RemoteAddr, ":")[0], UserAgent: r.UserAgent(),
			},
		},
	}
	if len(query) > 0 {
		e.QueryStringParameters = query
	}
	if len(params) > 0 {
		e.PathParameters = params
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			e.Body = string(body)
		} else {
			e.Body = base64.StdEncoding.EncodeToString(body)
			e.IsBase64Encoded = true
		}
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
