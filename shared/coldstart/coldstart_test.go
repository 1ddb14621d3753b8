package coldstart_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxpay-serverless/wxpay-serverless/shared/coldstart"
)

func TestParseConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := coldstart.ParseConfig("payscore", env("TABLE_NAME", "t", "SECRET_ID", "arn:aws:secretsmanager:ap-east-1:1:secret:x"))
		if err != nil {
			t.Fatal(err)
		}
		if c.WechatPayBaseURL != coldstart.DefaultWechatPayBaseURL || c.SecretTTL != 15*time.Minute || c.LogLevel != slog.LevelInfo {
			t.Fatalf("defaults = %+v", c)
		}
	})
	t.Run("overrides", func(t *testing.T) {
		c, err := coldstart.ParseConfig("notify", env("TABLE_NAME", "t", "SECRET_FILE", "/tmp/s.json", "WECHATPAY_BASE_URL", "http://127.0.0.1:8787/",
			"LOG_LEVEL", "DEBUG", "SECRET_TTL", "1m"))
		if err != nil {
			t.Fatal(err)
		}
		if c.WechatPayBaseURL != "http://127.0.0.1:8787" || c.LogLevel != slog.LevelDebug || c.SecretTTL != time.Minute {
			t.Fatalf("config = %+v", c)
		}
	})
	bad := map[string]struct {
		env  func(string) string
		want string
	}{
		"nothing":           {env(), "TABLE_NAME"},
		"no secret":         {env("TABLE_NAME", "t"), "SECRET_ID"},
		"plain http remote": {env("TABLE_NAME", "t", "SECRET_ID", "s", "WECHATPAY_BASE_URL", "http://api.example.com"), "WECHATPAY_BASE_URL"},
		"bad level":         {env("TABLE_NAME", "t", "SECRET_ID", "s", "LOG_LEVEL", "LOUD"), "LOG_LEVEL"},
		"bad ttl":           {env("TABLE_NAME", "t", "SECRET_ID", "s", "SECRET_TTL", "-1s"), "SECRET_TTL"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := coldstart.ParseConfig("fn", tc.env)
			if !errors.Is(err, coldstart.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig naming %s", err, tc.want)
			}
		})
	}
}

func TestLogLinesCarryRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := coldstart.NewLogger(&buf, slog.LevelInfo, "payscore")
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-42"})
	log.With("mchid", "1900000109").InfoContext(ctx, "hello")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"aws_request_id":"req-42"`) || !strings.Contains(lines[0], `"function":"payscore"`) ||
		!strings.Contains(lines[0], `"mchid":"1900000109"`) || strings.Contains(lines[1], "aws_request_id") {
		t.Fatalf("log lines = %q", lines)
	}
}
