package smfake_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/wxpay-serverless/wxpay-serverless/internal/smfake"
)

// newClient returns a real SDK client talking to srv without retries.
func newClient(srv *httptest.Server) *secretsmanager.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.RetryMaxAttempts = 1
	})
}

func TestSDKGetSecretValue(t *testing.T) {
	created := time.Date(2025, 3, 4, 5, 6, 7, 250_000_000, time.UTC)
	fake := smfake.New()
	fake.Now = func() time.Time { return created }
	fake.Put("wxpay/merchant", `{"k":"v1"}`)
	arn, ok := fake.ARN("wxpay/merchant")
	if !ok {
		t.Fatalf("ARN(%q): got ok=false, want true", "wxpay/merchant")
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := newClient(srv)

	tests := []struct {
		name     string
		secretID string
	}{
		{name: "by name", secretID: "wxpay/merchant"},
		{name: "by ARN", secretID: arn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := client.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(tc.secretID)})
			if err != nil {
				t.Fatalf("GetSecretValue(%q): got error %v, want nil", tc.secretID, err)
			}
			if got, want := aws.ToString(out.SecretString), `{"k":"v1"}`; got != want {
				t.Errorf("GetSecretValue(%q).SecretString: got %q, want %q", tc.secretID, got, want)
			}
			if got, want := aws.ToString(out.Name), "wxpay/merchant"; got != want {
				t.Errorf("GetSecretValue(%q).Name: got %q, want %q", tc.secretID, got, want)
			}
			if got := aws.ToString(out.ARN); got != arn {
				t.Errorf("GetSecretValue(%q).ARN: got %q, want %q", tc.secretID, got, arn)
			}
			if got := aws.ToString(out.VersionId); got == "" {
				t.Errorf("GetSecretValue(%q).VersionId: got empty, want non-empty", tc.secretID)
			}
			if got, want := out.VersionStages, []string{"AWSCURRENT"}; len(got) != 1 || got[0] != want[0] {
				t.Errorf("GetSecretValue(%q).VersionStages: got %v, want %v", tc.secretID, got, want)
			}
			if got := aws.ToTime(out.CreatedDate); !got.Equal(created) {
				t.Errorf("GetSecretValue(%q).CreatedDate: got %v, want %v", tc.secretID, got, created)
			}
		})
	}
	if got, want := fake.Calls(), len(tests); got != want {
		t.Errorf("Calls() after %d requests: got %d, want %d", len(tests), got, want)
	}
}

func TestSDKPutBumpsVersion(t *testing.T) {
	fake := smfake.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := newClient(srv)
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")}

	fake.Put("s", "one")
	first, err := client.GetSecretValue(t.Context(), in)
	if err != nil {
		t.Fatalf("GetSecretValue(s) after first Put: got error %v, want nil", err)
	}
	fake.Put("s", "two")
	second, err := client.GetSecretValue(t.Context(), in)
	if err != nil {
		t.Fatalf("GetSecretValue(s) after second Put: got error %v, want nil", err)
	}
	if got, want := aws.ToString(second.SecretString), "two"; got != want {
		t.Errorf("SecretString after second Put: got %q, want %q", got, want)
	}
	if a, b := aws.ToString(first.VersionId), aws.ToString(second.VersionId); a == b {
		t.Errorf("VersionId across Puts: got %q twice, want different versions", a)
	}
}

func TestSDKErrors(t *testing.T) {
	fake := smfake.New()
	fake.Put("exists", "v")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := newClient(srv)

	t.Run("not found", func(t *testing.T) {
		_, err := client.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Fatalf("GetSecretValue(missing): got error %v, want *types.ResourceNotFoundException", err)
		}
		if got, want := rnf.ErrorMessage(), "Secrets Manager can't find the specified secret."; got != want {
			t.Errorf("GetSecretValue(missing) message: got %q, want %q", got, want)
		}
	})

	t.Run("injected fault", func(t *testing.T) {
		fake.FailNext(1)
		in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("exists")}
		_, err := client.GetSecretValue(t.Context(), in)
		var ise *types.InternalServiceError
		if !errors.As(err, &ise) {
			t.Fatalf("GetSecretValue(exists) after FailNext(1): got error %v, want *types.InternalServiceError", err)
		}
		if _, err := client.GetSecretValue(t.Context(), in); err != nil {
			t.Errorf("GetSecretValue(exists) after the fault was used up: got error %v, want nil", err)
		}
	})
}

func TestSDKRetriesInjectedFault(t *testing.T) {
	fake := smfake.New()
	fake.Put("s", "v")
	fake.FailNext(1)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := secretsmanager.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
	}, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 2
			so.MaxBackoff = time.Millisecond
		})
	})
	out, err := client.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
	if err != nil {
		t.Fatalf("GetSecretValue(s) with 2 attempts and FailNext(1): got error %v, want nil", err)
	}
	if got, want := aws.ToString(out.SecretString), "v"; got != want {
		t.Errorf("SecretString: got %q, want %q", got, want)
	}
	if got, want := fake.Calls(), 2; got != want {
		t.Errorf("Calls(): got %d, want %d", got, want)
	}
}

func TestProtocolChecks(t *testing.T) {
	fake := smfake.New()
	fake.Put("s", "v")

	valid := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"SecretId":"s"}`))
		r.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00")
		return r
	}
	tests := []struct {
		name       string
		mutate     func(r *http.Request) *http.Request
		wantStatus int
		wantType   string
	}{
		{name: "valid", mutate: func(r *http.Request) *http.Request { return r }, wantStatus: http.StatusOK},
		{
			name: "other target",
			mutate: func(r *http.Request) *http.Request {
				r.Header.Set("X-Amz-Target", "secretsmanager.PutSecretValue")
				return r
			},
			wantStatus: http.StatusBadRequest, wantType: "InvalidRequestException",
		},
		{
			name:       "wrong content type",
			mutate:     func(r *http.Request) *http.Request { r.Header.Set("Content-Type", "application/json"); return r },
			wantStatus: http.StatusBadRequest, wantType: "InvalidRequestException",
		},
		{
			name:       "missing authorization",
			mutate:     func(r *http.Request) *http.Request { r.Header.Del("Authorization"); return r },
			wantStatus: http.StatusForbidden, wantType: "MissingAuthenticationTokenException",
		},
		{
			name:       "non-SigV4 authorization",
			mutate:     func(r *http.Request) *http.Request { r.Header.Set("Authorization", "Basic Zm9vOmJhcg=="); return r },
			wantStatus: http.StatusForbidden, wantType: "IncompleteSignatureException",
		},
		{
			name: "GET",
			mutate: func(r *http.Request) *http.Request {
				g := httptest.NewRequest(http.MethodGet, "/", nil)
				g.Header = r.Header
				return g
			},
			wantStatus: http.StatusMethodNotAllowed, wantType: "InvalidRequestException",
		},
		{
			name: "malformed body",
			mutate: func(r *http.Request) *http.Request {
				b := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{`))
				b.Header = r.Header
				return b
			},
			wantStatus: http.StatusBadRequest, wantType: "SerializationException",
		},
		{
			name: "missing SecretId",
			mutate: func(r *http.Request) *http.Request {
				b := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
				b.Header = r.Header
				return b
			},
			wantStatus: http.StatusBadRequest, wantType: "ValidationException",
		},
		{
			name: "unknown secret",
			mutate: func(r *http.Request) *http.Request {
				b := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"SecretId":"nope"}`))
				b.Header = r.Header
				return b
			},
			wantStatus: http.StatusBadRequest, wantType: "ResourceNotFoundException",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			fake.ServeHTTP(rec, tc.mutate(valid()))
			if rec.Code != tc.wantStatus {
				t.Fatalf("%s: got status %d (body %s), want %d", tc.name, rec.Code, rec.Body, tc.wantStatus)
			}
			if got, want := rec.Header().Get("Content-Type"), "application/x-amz-json-1.1"; got != want {
				t.Errorf("%s: got Content-Type %q, want %q", tc.name, got, want)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: got undecodable body %q (%v), want JSON", tc.name, rec.Body, err)
			}
			if tc.wantType == "" {
				if got, want := body["SecretString"], "v"; got != want {
					t.Errorf("%s: got SecretString %v, want %q", tc.name, got, want)
				}
				return
			}
			if got := body["__type"]; got != tc.wantType {
				t.Errorf("%s: got __type %v, want %q", tc.name, got, tc.wantType)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Errorf("%s: got empty message, want non-empty", tc.name)
			}
		})
	}
}
