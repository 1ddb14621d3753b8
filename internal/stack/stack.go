// Package stack runs the whole bundle in one process, the way `make dev` and
// the end-to-end tests need it: the WeChat Pay simulator on a loopback port,
// the local front door (API Gateway stand-in) with all five function
// handlers, DynamoDB Local for state, and the simulator's notify_url pointing
// back at the front door so notifications flow end to end.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/s3fake"
	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/blobstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/metrics"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Options configure a stack. Zero values are test-friendly defaults.
type Options struct {
	DynamoDBEndpoint string // required
	Table            string // required; created when missing
	DynamoDBOptions  []func(*dynamodb.Options)
	Merchant         *testkeys.Merchant // nil: generated
	Platform         *testkeys.Platform // nil: generated
	Mode             wxpaysim.Mode      // default mixed (public key + certificates in the secret)
	SimAddr          string             // default 127.0.0.1:0
	FrontAddr        string             // default 127.0.0.1:0
	TimeScale        float64            // notification retry schedule scale; default 1
	Log              io.Writer          // handler logs; default discard
	Events           domainevent.Publisher
	Now              func() time.Time // handler clock; default Clock, then time.Now
	// Clock, when set, is the one clock of the simulator, the WeChat Pay
	// client and the handlers (billing tests move it to the morning after,
	// when a day's bills exist); nil means time.Now everywhere.
	Clock func() time.Time
	// BillsDir keeps bills and reports as files under a directory; ""
	// keeps them in an in-memory S3 fake behind the real S3 client.
	BillsDir string
	// Authorizer checks JWTs at the front door like the HTTP API's JWT
	// authorizer; nil generates a TEST dev issuer.
	Authorizer *frontdoor.Authorizer
}

// Stack is a running bundle.
type Stack struct {
	Sim       *wxpaysim.Sim
	SimURL    string
	FrontURL  string
	Deps      app.Deps
	Store     *ddbstore.Store
	DB        *dynamodb.Client
	Merchant  *testkeys.Merchant
	Platform  *testkeys.Platform
	Secrets   *secrets.Cache
	Targets   []frontdoor.Target
	Client    *wxpay.Client
	Auth      *frontdoor.Authorizer
	Bills     blobstore.Store // the billing function's bucket (bills.go)
	S3        *s3fake.Server  // nil with Options.BillsDir
	s3Srv     *http.Server
	dir       string
	simSrv    *http.Server
	frontSrv  *http.Server
	serveErrs chan error
}

// Start brings a stack up.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.DynamoDBEndpoint == "" || o.Table == "" {
		return nil, errors.New("stack: DynamoDBEndpoint and Table are required")
	}
	s := &Stack{Merchant: o.Merchant, Platform: o.Platform, serveErrs: make(chan error, 2)}
	var err error
	if s.Merchant == nil {
		if s.Merchant, err = testkeys.NewMerchant("1900000109"); err != nil {
			return nil, err
		}
	}
	if s.Platform == nil {
		if s.Platform, err = testkeys.NewPlatform(); err != nil {
			return nil, err
		}
	}
	if o.Mode == "" {
		o.Mode = wxpaysim.ModeMixed
	}
	s.DB = ddblocal.Client(o.DynamoDBEndpoint, o.DynamoDBOptions...)
	if err := ddbstore.CreateTable(ctx, s.DB, o.Table); err != nil {
		return nil, err
	}
	s.Store = ddbstore.New(s.DB, o.Table)

	s.dir, err = os.MkdirTemp("", "wxpay-stack-")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	doc, err := testkeys.SecretJSON(s.Merchant, s.Platform, testkeys.SecretOptions{
		PublicKey: o.Mode != wxpaysim.ModeCertificate, Certificates: o.Mode != wxpaysim.ModePublicKey})
	if err != nil {
		return nil, err
	}
	secretFile := filepath.Join(s.dir, "merchant-secret.json")
	if err := os.WriteFile(secretFile, doc, 0o600); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	logOut := o.Log
	if logOut == nil {
		logOut = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	s.Secrets = secrets.NewCache(secrets.NewFileSource(secretFile), secrets.CacheOptions{Logger: log})
	if _, err := s.Secrets.Get(ctx); err != nil {
		return nil, err
	}

	simLn, err := net.Listen("tcp", orDefault(o.SimAddr))
	if err != nil {
		return nil, fmt.Errorf("stack: simulator listen: %w", err)
	}
	frontLn, err := net.Listen("tcp", orDefault(o.FrontAddr))
	if err != nil {
		simLn.Close()
		return nil, fmt.Errorf("stack: front door listen: %w", err)
	}
	s.SimURL = "http://" + simLn.Addr().String()
	s.FrontURL = "http://" + frontLn.Addr().String()

	s.Sim, err = wxpaysim.New(wxpaysim.Config{Platform: s.Platform, TimeScale: o.TimeScale, Now: o.Clock})
	if err != nil {
		return nil, err
	}
	if err := s.Sim.AddMerchant(wxpaysim.MerchantFromTestKeys(s.Merchant, o.Mode, s.FrontURL+"/notify/payments")); err != nil {
		return nil, err
	}
	// The merchant's Pay Score service (the handler's default mode) sends
	// authorization callbacks that came without a pre-authorization to the
	// payscore channel, as service_notify_url does in production.
	if err := s.Sim.SetPayScoreService(s.Merchant.MchID, wxpaysim.PayScoreService{ServiceID: s.Merchant.ServiceID,
		AppIDs: []string{s.Merchant.AppID}, NotifyURL: s.FrontURL + "/notify/payscore"}); err != nil {
		return nil, err
	}
	// The WeChat client and the handlers follow the simulator's clock, so an
	// advance (POST /sim/clock/advance) moves the whole system, as the demo's
	// "next morning" reconciliation needs.
	s.Client = wxpay.New(wxpay.Config{Credentials: s.Secrets, BaseURL: s.SimURL, Now: s.Sim.Now})
	if err := s.startBills(o.BillsDir); err != nil {
		return nil, err
	}
	handlerNow := o.Now
	if handlerNow == nil {
		handlerNow = s.Sim.Now
	}
	s.Deps = app.Deps{Store: s.Store, Secrets: s.Secrets, Log: log, Now: handlerNow, Events: o.Events,
		Metrics: &metrics.EMF{Namespace: "wxpay-serverless", W: logOut}, WeChat: s.Client, NotifyBaseURL: s.FrontURL + "/notify", Bills: s.Bills}
	s.Targets = frontdoor.AllFunctions(s.Deps)

	s.Auth = o.Authorizer
	if s.Auth == nil {
		if s.Auth, err = frontdoor.NewDevAuthorizer(); err != nil {
			return nil, err
		}
	}
	s.simSrv = &http.Server{Handler: s.Sim, ReadHeaderTimeout: 10 * time.Second}
	s.frontSrv = &http.Server{Handler: frontdoor.NewWithAuthorizer(s.Auth, s.Targets...), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serveErrs <- s.simSrv.Serve(simLn) }()
	go func() { s.serveErrs <- s.frontSrv.Serve(frontLn) }()
	return s, nil
}

func orDefault(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// Token issues a dev JWT with the given scopes (both app and admin when
// none are named), valid for ttl.
func (s *Stack) Token(ttl time.Duration, scopes ...apigw.Scope) (string, error) {
	if len(scopes) == 0 {
		scopes = []apigw.Scope{apigw.ScopeApp, apigw.ScopeAdmin}
	}
	return s.Auth.Token("dev-merchant-backend", ttl, scopes...)
}

// Close stops the servers and the simulator's deliveries.
func (s *Stack) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.Sim != nil {
		s.Sim.Close()
	}
	if s.frontSrv != nil {
		_ = s.frontSrv.Shutdown(ctx)
	}
	if s.simSrv != nil {
		_ = s.simSrv.Shutdown(ctx)
	}
	if s.s3Srv != nil {
		_ = s.s3Srv.Shutdown(ctx)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
