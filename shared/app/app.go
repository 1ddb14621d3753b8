// Package app holds what every function's handler package shares: the
// dependencies built once per container by package coldstart and the error
// classification from store sentinels to HTTP answers.
//
// One handler package per function lives below it (notify, payscore, coupons,
// payments, billing). They are importable so that Lambda, the local front door
// and the tests run exactly the same code.
package app

import (
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/blobstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/health"
	"github.com/wxpay-serverless/wxpay-serverless/shared/metrics"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Credentials is the part of the secrets cache handlers use (*secrets.Cache).
type Credentials interface {
	Get(ctx context.Context) (*secrets.Credentials, error)
	// VerificationKey returns the WeChat Pay key a Wechatpay-Serial names,
	// refreshing the credentials once for an unknown serial.
	VerificationKey(ctx context.Context, serial string) (*rsa.PublicKey, error)
}

// Table is the store plus a reachability probe.
type Table interface {
	store.Store
	Ping(ctx context.Context) error
}

// Deps are the dependencies of a handler package. Zero fields get safe
// defaults so that route tables can be listed without any wiring.
type Deps struct {
	Store   Table
	Secrets Credentials
	Log     *slog.Logger
	Now     func() time.Time
	// Events publishes domain events after their outbox commit; nil leaves
	// them in the outbox for a later drain.
	Events domainevent.Publisher
	// Metrics writes CloudWatch EMF lines; nil discards.
	Metrics *metrics.EMF
	// WeChat is the APIv3 client (production host, or the simulator locally).
	WeChat *wxpay.Client
	// Bills keeps downloaded bills and reconciliation reports (S3 bucket
	// BILLS_BUCKET in AWS, a directory or an S3 fake locally); nil where a
	// function has no bucket.
	Bills blobstore.Store
	// NotifyBaseURL is where WeChat Pay reaches the notify function:
	// notify_url = NotifyBaseURL + "/" + channel. Empty in AWS unless the
	// NotifyBaseURL parameter is set; then NotifyURL derives it from the
	// request (the API's own domain and stage).
	NotifyBaseURL string
}

// NotifyURL is the notify_url for channel (payments, refunds, payscore,
// coupons) given the API Gateway request being served.
func (d Deps) NotifyURL(req *apigw.Request, channel string) string {
	if d.NotifyBaseURL != "" {
		return d.NotifyBaseURL + "/" + channel
	}
	rc := req.Event.RequestContext
	base := "https://" + rc.DomainName
	if rc.Stage != "" && rc.Stage != "$default" {
		base += "/" + rc.Stage
	}
	return base + "/notify/" + channel
}

// Logger returns the configured logger or one that discards.
func (d Deps) Logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return d.Log
}

// Clock returns the configured clock or time.Now.
func (d Deps) Clock() func() time.Time {
	if d.Now == nil {
		return time.Now
	}
	return d.Now
}

// HealthRoute is the GET /<prefix>/health route: credentials loaded and the
// table reachable.
func (d Deps) HealthRoute(function, prefix string) apigw.Route {
	var checks []health.Check
	if d.Secrets != nil {
		checks = append(checks, health.Check{Name: "credentials", Probe: func(ctx context.Context) error {
			_, err := d.Secrets.Get(ctx)
			return err
		}})
	}
	if d.Store != nil {
		checks = append(checks, health.Check{Name: "table", Probe: d.Store.Ping})
	}
	return apigw.Route{Method: http.MethodGet, Path: prefix + "/health", Scope: apigw.ScopeApp,
		Handle: health.Handler(function, d.Now, checks...)}
}

// ClassifyStore maps store sentinels to HTTP answers for the router.
func ClassifyStore(err error) *apigw.Error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &apigw.Error{Status: http.StatusNotFound, Code: apigw.CodeNotFound, Message: "resource not found", Err: err}
	case errors.Is(err, store.ErrDuplicate), errors.Is(err, store.ErrConflict):
		return &apigw.Error{Status: http.StatusConflict, Code: apigw.CodeConflict, Message: "the resource changed or already exists", Err: err}
	case errors.Is(err, store.ErrContention):
		return &apigw.Error{Status: http.StatusServiceUnavailable, Code: "TRY_AGAIN", Message: "busy, retry the same request", Err: err}
	}
	return nil
}

// NewRouter builds a router with the store classification.
func (d Deps) NewRouter(routes []apigw.Route) *apigw.Router {
	return apigw.NewRouter(d.Logger(), routes, ClassifyStore)
}
