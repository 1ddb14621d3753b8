// Package apigw adapts API Gateway HTTP API (payload format 2.0) events to the
// project's handlers: a route table keyed by the API Gateway route key, JSON
// responses, and the {code, message} error body every route answers with.
//
// Handlers never see an *http.Request: the same events reach them in Lambda, in
// tests (through lambda.NewHandler(...).Invoke) and in the local front door,
// which builds v2 events from net/http requests.
package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Scope is an OAuth scope the JWT authorizer requires on a route.
type Scope string

// Scopes used by the app routes. ScopeNone marks the public notify route.
const (
	ScopeNone  Scope = ""
	ScopeApp   Scope = "wxpay/app"
	ScopeAdmin Scope = "wxpay/admin"
)

// HandlerFunc answers one routed request.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// Route is one HTTP API route owned by a function.
type Route struct {
	Method string // GET, POST, PUT, PATCH or DELETE
	Path   string // API Gateway path template, e.g. /payscore/orders/{out_order_no}
	Scope  Scope  // scope the JWT authorizer requires; ScopeNone for public routes
	Handle HandlerFunc
}

// Key is the API Gateway route key: "METHOD /path".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Request is a decoded API Gateway v2 request.
type Request struct {
	Event      *events.APIGatewayV2HTTPRequest
	Body       []byte // raw bytes as received (base64 already decoded)
	PathParams map[string]string
}

// Header returns the first value of a header, matching its name
// case-insensitively (API Gateway lower-cases names, local tools may not).
func (r *Request) Header(name string) string {
	return HeaderValue(r.Event.Headers, name)
}

// Query returns a query-string parameter.
func (r *Request) Query(name string) string {
	return r.Event.QueryStringParameters[name]
}

// HeaderValue looks a header up case-insensitively.
func HeaderValue(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	if v, ok := h[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// DecodeBody returns the raw request body, decoding base64 when API Gateway
// flagged it.
func DecodeBody(e *events.APIGatewayV2HTTPRequest) ([]byte, error) {
	if !e.IsBase64Encoded {
		return []byte(e.Body), nil
	}
	b, err := base64.StdEncoding.DecodeString(e.Body)
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, CodeInvalidRequest, "body is not valid base64")
	}
	return b, nil
}

// Response is what a route returns; Router turns it into the v2 response.
type Response struct {
	Status  int
	Headers map[string]string
	Body    any // marshalled as JSON; nil means no body
}

// JSON builds a JSON response.
func JSON(status int, body any) *Response { return &Response{Status: status, Body: body} }

// Error codes of the {code, message} body. They follow WeChat Pay's style.
const (
	CodeInvalidRequest = "INVALID_REQUEST"
	CodeParamError     = "PARAM_ERROR"
	CodeNotFound       = "NOT_FOUND"
	CodeConflict       = "CONFLICT"
	CodeMethod         = "METHOD_NOT_ALLOWED"
	CodeTooLarge       = "PAYLOAD_TOO_LARGE"
	CodeUnauthorized   = "UNAUTHORIZED"
	CodeNotImplemented = "NOT_IMPLEMENTED"
	CodeUpstream       = "UPSTREAM_ERROR"
	CodeInternal       = "INTERNAL_ERROR"
)

// Error is an expected failure with the HTTP status and the body to answer.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error // optional cause, never shown to the caller
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON error shape of every route.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Classifier maps errors that are not *Error (store sentinels, remote errors)
// to an *Error. It returns nil when it does not know the error.
type Classifier func(error) *Error

// MaxBodyBytes bounds request bodies; API Gateway allows 10 MB, no route of
// ours needs more than this.
const MaxBodyBytes = 256 << 10

// Router dispatches v2 events by route key.
type Router struct {
	routes   map[string]Route
	list     []Route
	classify []Classifier
	log      *slog.Logger
}

// NewRouter builds a router. Classifiers are tried in order for errors that
// are not *Error; anything unclassified becomes a 500 with a generic message.
func NewRouter(log *slog.Logger, routes []Route, classify ...Classifier) *Router {
	r := &Router{routes: make(map[string]Route, len(routes)), list: routes, classify: classify, log: log}
	for _, rt := range routes {
		r.routes[rt.Key()] = rt
	}
	return r
}

// Routes lists the router's routes in declaration order.
func (r *Router) Routes() []Route { return append([]Route(nil), r.list...) }

// Handle is the Lambda entry point for HTTP API events.
func (r *Router) Handle(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	resp, err := r.serve(ctx, &e)
	if err != nil {
		return r.errorResponse(ctx, &e, err), nil
	}
	return encode(resp), nil
}

func (r *Router) serve(ctx context.Context, e *events.APIGatewayV2HTTPRequest) (*Response, error) {
	key := e.RouteKey
	rt, ok := r.routes[key]
	if !ok {
		rt, e.PathParameters, ok = r.match(e)
	}
	if !ok {
		return nil, Errorf(http.StatusNotFound, CodeNotFound, "no route for %s %s", e.RequestContext.HTTP.Method, e.RawPath)
	}
	if len(e.Body) > MaxBodyBytes*4/3+4 {
		return nil, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	}
	body, err := DecodeBody(e)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBodyBytes {
		return nil, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	}
	params := e.PathParameters
	if params == nil {
		params = map[string]string{}
	}
	return rt.Handle(ctx, &Request{Event: e, Body: body, PathParams: params})
}

// match finds a route when the event carries no usable route key (for example
// "$default" from a catch-all stage) by matching method and path templates.
func (r *Router) match(e *events.APIGatewayV2HTTPRequest) (Route, map[string]string, bool) {
	method := e.RequestContext.HTTP.Method
	path := e.RawPath
	if path == "" {
		path = e.RequestContext.HTTP.Path
	}
	for _, rt := range r.list {
		if rt.Method != method {
			continue
		}
		if params, ok := MatchPath(rt.Path, path); ok {
			return rt, params, true
		}
	}
	return Route{}, nil, false
}

// MatchPath matches a concrete path against a template with {name} segments.
func MatchPath(template, path string) (map[string]string, bool) {
	ts := strings.Split(strings.Trim(template, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	if len(ts) != len(ps) {
		return nil, false
	}
	params := map[string]string{}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if ps[i] == "" {
				return nil, false
			}
			params[t[1:len(t)-1]] = ps[i]
			continue
		}
		if t != ps[i] {
			return nil, false
		}
	}
	return params, true
}

func (r *Router) errorResponse(ctx context.Context, e *events.APIGatewayV2HTTPRequest, err error) events.APIGatewayV2HTTPResponse {
	var ae *Error
	if !errors.As(err, &ae) {
		for _, c := range r.classify {
			if ae = c(err); ae != nil {
				break
			}
		}
	}
	if ae == nil {
		// Unknown failures are logged with their cause and answered with a
		// generic message: internal error text never reaches the caller.
		r.log.ErrorContext(ctx, "request failed", "route", e.RouteKey, "request_id", e.RequestContext.RequestID, "error", err)
		ae = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	} else if ae.Status >= 500 {
		r.log.ErrorContext(ctx, "request failed", "route", e.RouteKey, "request_id", e.RequestContext.RequestID, "status", ae.Status, "code", ae.Code, "error", err)
	}
	return encode(&Response{Status: ae.Status, Body: ErrorBody{Code: ae.Code, Message: ae.Message}})
}

func encode(resp *Response) events.APIGatewayV2HTTPResponse {
	out := events.APIGatewayV2HTTPResponse{StatusCode: resp.Status, Headers: map[string]string{}}
	for k, v := range resp.Headers {
		out.Headers[k] = v
	}
	if resp.Body != nil {
		b, err := json.Marshal(resp.Body)
		if err != nil {
			out.StatusCode = http.StatusInternalServerError
			b = []byte(`{"code":"INTERNAL_ERROR","message":"internal error"}`)
		}
		out.Body = string(b)
		out.Headers["content-type"] = "application/json"
	}
	return out
}

// DecodeJSON strictly decodes a JSON request body into v: unknown fields,
// trailing data and an empty body are rejected with a 400 naming the problem.
func DecodeJSON(body []byte, v any) error {
	if len(body) == 0 {
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request body is empty")
	}
	if err := CheckText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return Errorf(http.StatusBadRequest, CodeInvalidRequest, "malformed JSON at byte %d", se.Offset)
		case errors.As(err, &te):
			return Errorf(http.StatusBadRequest, CodeParamError, "field %q must be %s", te.Field, te.Type.String())
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return Errorf(http.StatusBadRequest, CodeParamError, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return Errorf(http.StatusBadRequest, CodeInvalidRequest, "malformed JSON body")
		}
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "unexpected data after the JSON body")
	}
	return nil
}

// CheckText refuses what WeChat Pay refuses in any field (wechatpay-apiv3.md
// 1.1: only UTF-8 characters of 1-3 bytes): invalid UTF-8, which encoding/json
// would silently replace with U+FFFD, and 4-byte characters such as emoji,
// raw or as JSON surrogate escapes. Rejecting them at decoding means no
// route sends WeChat a request it can only refuse.
func CheckText(body []byte) error {
	if !utf8.Valid(body) {
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request body is not valid UTF-8")
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c >= 0xF0 {
			return Errorf(http.StatusBadRequest, CodeParamError, "4-byte characters (such as emoji) are not accepted by WeChat Pay")
		}
		// \uD800-\uDFFF: a surrogate escape is half of a 4-byte character.
		if c == '\\' && i+2 < len(body) && body[i+1] == 'u' && (body[i+2] == 'd' || body[i+2] == 'D') && i+3 < len(body) {
			switch body[i+3] {
			case '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'A', 'B', 'C', 'D', 'E', 'F':
				if !escapedBackslash(body, i) {
					return Errorf(http.StatusBadRequest, CodeParamError, "4-byte characters (such as emoji) are not accepted by WeChat Pay")
				}
			}
		}
	}
	return nil
}

// escapedBackslash reports whether the backslash at i is itself escaped
// (preceded by an odd number of backslashes).
func escapedBackslash(b []byte, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// NotImplemented is the handler of routes declared in the template whose
// product issue has not landed yet. It answers 501 with the standard body.
func NotImplemented(_ context.Context, req *Request) (*Response, error) {
	return nil, Errorf(http.StatusNotImplemented, CodeNotImplemented, "%s is declared but not implemented yet", req.Event.RouteKey)
}
