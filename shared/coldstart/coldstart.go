// Package coldstart builds what a function needs once per Lambda container,
// before lambda.Start: configuration from the environment, the AWS config
// (loaded once), the DynamoDB store, and the merchant credentials fetched from
// Secrets Manager (fetched once here, then cached with a TTL and refreshed on
// an unknown signing serial).
//
// functions/<fn>/main.go calls Load and hands Env.Deps() to its handler
// package; nothing else reads the environment.
package coldstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/blobstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/metrics"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// DefaultWechatPayBaseURL is the production API host; the simulator's URL
// replaces it in tests and `make dev`.
const DefaultWechatPayBaseURL = "https://api.mch.weixin.qq.com"

// Environment variable names (template.yaml sets them).
const (
	EnvTableName        = "TABLE_NAME"
	EnvSecretID         = "SECRET_ID"   // Secrets Manager ARN or name
	EnvSecretFile       = "SECRET_FILE" // local runs only: a JSON file with the same schema
	EnvWechatPayBaseURL = "WECHATPAY_BASE_URL"
	EnvNotifyBaseURL    = "NOTIFY_BASE_URL"
	EnvBillsBucket      = "BILLS_BUCKET"
	EnvEventBusName     = "EVENT_BUS_NAME"
	EnvLogLevel         = "LOG_LEVEL"
	EnvSecretTTL        = "SECRET_TTL" // Go duration, default 15m
)

// ErrConfig classifies configuration errors.
var ErrConfig = errors.New("coldstart: invalid configuration")

// Config is the environment, parsed.
type Config struct {
	Function         string
	TableName        string
	SecretID         string
	SecretFile       string
	WechatPayBaseURL string
	NotifyBaseURL    string
	BillsBucket      string
	EventBusName     string
	LogLevel         slog.Level
	SecretTTL        time.Duration
}

// ParseConfig reads the configuration through getenv (os.Getenv in main).
func ParseConfig(function string, getenv func(string) string) (Config, error) {
	c := Config{
		Function:         function,
		TableName:        getenv(EnvTableName),
		SecretID:         getenv(EnvSecretID),
		SecretFile:       getenv(EnvSecretFile),
		WechatPayBaseURL: strings.TrimRight(getenv(EnvWechatPayBaseURL), "/"),
		NotifyBaseURL:    strings.TrimRight(getenv(EnvNotifyBaseURL), "/"),
		BillsBucket:      getenv(EnvBillsBucket),
		EventBusName:     getenv(EnvEventBusName),
		SecretTTL:        15 * time.Minute,
	}
	var missing []string
	if c.TableName == "" {
		missing = append(missing, EnvTableName)
	}
	if c.SecretID == "" && c.SecretFile == "" {
		missing = append(missing, EnvSecretID+" (or "+EnvSecretFile+" for local runs)")
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("%w: missing %s", ErrConfig, strings.Join(missing, ", "))
	}
	if c.WechatPayBaseURL == "" {
		c.WechatPayBaseURL = DefaultWechatPayBaseURL
	}
	if !strings.HasPrefix(c.WechatPayBaseURL, "https://") && !strings.HasPrefix(c.WechatPayBaseURL, "http://127.0.0.1") &&
		!strings.HasPrefix(c.WechatPayBaseURL, "http://localhost") {
		return Config{}, fmt.Errorf("%w: %s must be https (plain http only on loopback)", ErrConfig, EnvWechatPayBaseURL)
	}
	if lvl := getenv(EnvLogLevel); lvl != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
			return Config{}, fmt.Errorf("%w: %s=%q: %w", ErrConfig, EnvLogLevel, lvl, err)
		}
	}
	if ttl := getenv(EnvSecretTTL); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("%w: %s=%q is not a positive duration", ErrConfig, EnvSecretTTL, ttl)
		}
		c.SecretTTL = d
	}
	return c, nil
}

// Env is everything built at cold start.
type Env struct {
	Config   Config
	AWS      aws.Config
	DynamoDB *dynamodb.Client
	Store    *ddbstore.Store
	Secrets  *secrets.Cache
	Log      *slog.Logger
	Events   domainevent.Publisher // nil without EVENT_BUS_NAME
	Metrics  *metrics.EMF
	WeChat   *wxpay.Client
	Bills    blobstore.Store // nil without BILLS_BUCKET
}

// Options adjust Load for tests and local tools.
type Options struct {
	Stdout io.Writer // log destination, default os.Stdout
	// AWSOptions are appended to config.LoadDefaultConfig's options.
	AWSOptions []func(*config.LoadOptions) error
}

// Load parses the configuration, loads the AWS config, builds the clients
// and fetches the credentials once. Any failure stops the container's init
// with an error that names the problem but no secret value.
func Load(ctx context.Context, function string, getenv func(string) string, opts Options) (*Env, error) {
	cfg, err := ParseConfig(function, getenv)
	if err != nil {
		return nil, err
	}
	out := opts.Stdout
	if out == nil {
		out = os.Stdout
	}
	log := NewLogger(out, cfg.LogLevel, function)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts.AWSOptions...)
	if err != nil {
		return nil, fmt.Errorf("coldstart: load AWS config: %w", err)
	}
	db := dynamodb.NewFromConfig(awsCfg)
	var src secrets.Source
	if cfg.SecretFile != "" {
		src = secrets.NewFileSource(cfg.SecretFile)
	} else {
		src = secrets.NewSecretsManagerSource(secretsmanager.NewFromConfig(awsCfg), cfg.SecretID)
	}
	cache := secrets.NewCache(src, secrets.CacheOptions{TTL: cfg.SecretTTL, Logger: log})
	creds, err := cache.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("coldstart: load merchant credentials: %w", err)
	}
	// Every later line names the merchant (an identifier, not a secret).
	log = log.With("mchid", creds.MchID)
	env := &Env{Config: cfg, AWS: awsCfg, DynamoDB: db, Store: ddbstore.New(db, cfg.TableName), Secrets: cache, Log: log,
		Metrics: &metrics.EMF{Namespace: "wxpay-serverless", W: out},
		WeChat:  wxpay.New(wxpay.Config{Credentials: cache, BaseURL: cfg.WechatPayBaseURL})}
	if cfg.EventBusName != "" {
		env.Events = &domainevent.EventBridge{API: eventbridge.NewFromConfig(awsCfg), Bus: cfg.EventBusName}
	}
	if cfg.BillsBucket != "" {
		env.Bills = &blobstore.S3{API: s3.NewFromConfig(awsCfg), Bucket: cfg.BillsBucket}
	}
	return env, nil
}

// Deps returns the handler dependencies.
func (e *Env) Deps() app.Deps {
	return app.Deps{Store: e.Store, Secrets: e.Secrets, Log: e.Log, Now: time.Now, Events: e.Events, Metrics: e.Metrics,
		WeChat: e.WeChat, NotifyBaseURL: e.Config.NotifyBaseURL, Bills: e.Bills}
}

// NewLogger is the functions' logger: JSON lines on out, the function name
// on every line and the Lambda request id on every line logged with the
// invocation's context.
func NewLogger(out io.Writer, level slog.Level, function string) *slog.Logger {
	return slog.New(requestIDHandler{slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})}).With("function", function)
}

// requestIDHandler adds the Lambda request id of the invocation to every
// record logged with a context (the *Context slog calls), so each line of
// one request can be found together in CloudWatch Logs.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("aws_request_id", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
