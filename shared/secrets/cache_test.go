package secrets_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/wxpay-serverless/wxpay-serverless/internal/smfake"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
)

// Compile-time checks of the interfaces other packages rely on.
var (
	_ secrets.GetSecretValueAPI = (*secretsmanager.Client)(nil)
	_ secrets.Source            = (*secrets.SecretsManagerSource)(nil)
	_ secrets.Source            = (*secrets.FileSource)(nil)
	_ slog.LogValuer            = secrets.Credentials{}
	_ slog.LogValuer            = (*secrets.Credentials)(nil)
)

const (
	testSecretID = "wxpay/merchant/1900000001"
	testTTL      = 15 * time.Minute
	testMinRef   = 30 * time.Second
)

// sdkEnv is a Cache reading from smfake through the real SDK client.
type sdkEnv struct {
	fake  *smfake.Server
	clock *fakeClock
	logs  *syncBuffer
	cache *secrets.Cache
}

// newSMClient returns a real Secrets Manager client for the fake endpoint.
func newSMClient(baseURL string, httpClient aws.HTTPClient) *secretsmanager.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
		HTTPClient:  httpClient,
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(baseURL)
		o.RetryMaxAttempts = 1
	})
}

// newSDKEnv starts smfake over HTTP, stores doc (unless nil) under
// testSecretID and builds a Cache with an injected clock and a JSON logger.
// At cleanup it asserts that no secret value was logged.
func newSDKEnv(t *testing.T, fx *fixture, doc map[string]any, secretID string) *sdkEnv {
	t.Helper()
	env := &sdkEnv{fake: smfake.New(), clock: newFakeClock(), logs: &syncBuffer{}}
	if doc != nil {
		env.fake.Put(testSecretID, string(mustJSON(t, doc)))
	}
	srv := httptest.NewServer(env.fake)
	t.Cleanup(srv.Close)
	api := newSMClient(srv.URL, nil)
	env.cache = secrets.NewCache(secrets.NewSecretsManagerSource(api, secretID), secrets.CacheOptions{
		TTL:                testTTL,
		MinRefreshInterval: testMinRef,
		Now:                env.clock.Now,
		Logger:             slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(func() {
		logs := env.logs.String()
		assertNoSecrets(t, "cache logs", logs, fx.secretValues())
		if strings.Contains(logs, "BEGIN") {
			t.Errorf("cache logs: got %q, want no PEM armor", logs)
		}
	})
	return env
}

// checkCalls asserts the number of GetSecretValue calls smfake served.
func (e *sdkEnv) checkCalls(t *testing.T, step string, want int) {
	t.Helper()
	if got := e.fake.Calls(); got != want {
		t.Errorf("%s: got %d GetSecretValue calls, want %d", step, got, want)
	}
}

func TestCacheGetAndTTL(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	env := newSDKEnv(t, fx, fx.doc(), testSecretID)

	first, err := env.cache.Get(t.Context())
	if err != nil {
		t.Fatalf("Get on empty cache: got error %v, want nil", err)
	}
	if first.MchID != testMchID || first.Mode != secrets.ModeMixed {
		t.Errorf("Get on empty cache: got mchid %q mode %q, want %q %q", first.MchID, first.Mode, testMchID, secrets.ModeMixed)
	}
	if !strings.HasPrefix(first.Version, "00000000-") {
		t.Errorf("Get on empty cache: got Version %q, want the smfake VersionId", first.Version)
	}
	env.checkCalls(t, "first Get", 1)

	steps := []struct {
		name      string
		advance   time.Duration
		wantCalls int
		wantSame  bool
	}{
		{name: "immediately", advance: 0, wantCalls: 1, wantSame: true},
		{name: "just before TTL", advance: testTTL - time.Second, wantCalls: 1, wantSame: true},
		{name: "at TTL", advance: time.Second, wantCalls: 2, wantSame: false},
		{name: "right after refetch", advance: time.Second, wantCalls: 2, wantSame: false},
	}
	for _, st := range steps {
		env.clock.Advance(st.advance)
		got, err := env.cache.Get(t.Context())
		if err != nil {
			t.Fatalf("Get %s: got error %v, want nil", st.name, err)
		}
		if (got == first) != st.wantSame {
			t.Errorf("Get %s: got same pointer as first Get = %v, want %v", st.name, got == first, st.wantSame)
		}
		env.checkCalls(t, "Get "+st.name, st.wantCalls)
	}

	logs := env.logs.String()
	if got := strings.Count(logs, `"msg":"secrets loaded"`); got != 2 {
		t.Errorf("logs after 2 fetches: got %d \"secrets loaded\" records in %s, want 2", got, logs)
	}
	if !strings.Contains(logs, testMchID) || !strings.Contains(logs, first.Version) {
		t.Errorf("logs: got %s, want mchid %q and version %q", logs, testMchID, first.Version)
	}
}

func TestCacheRefreshRateLimit(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	env := newSDKEnv(t, fx, fx.doc(), testSecretID)

	if _, err := env.cache.Get(t.Context()); err != nil {
		t.Fatalf("Get: got error %v, want nil", err)
	}
	steps := []struct {
		name      string
		advance   time.Duration
		wantCalls int
	}{
		{name: "immediately after Get", advance: 0, wantCalls: 1},
		{name: "just before MinRefreshInterval", advance: testMinRef - time.Nanosecond, wantCalls: 1},
		{name: "at MinRefreshInterval", advance: time.Nanosecond, wantCalls: 2},
		{name: "immediately after refresh", advance: 0, wantCalls: 2},
		{name: "another interval later", advance: testMinRef, wantCalls: 3},
	}
	for _, st := range steps {
		env.clock.Advance(st.advance)
		creds, err := env.cache.Refresh(t.Context())
		if err != nil || creds == nil {
			t.Fatalf("Refresh %s: got (%v, %v), want credentials and nil error", st.name, creds, err)
		}
		env.checkCalls(t, "Refresh "+st.name, st.wantCalls)
	}
}

func TestCacheRotation(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	oldDoc := fx.doc()
	delete(oldDoc, "platform_certificates")
	env := newSDKEnv(t, fx, oldDoc, testSecretID)

	if _, err := env.cache.Get(t.Context()); err != nil {
		t.Fatalf("Get: got error %v, want nil", err)
	}
	const newID = "PUB_KEY_ID_0114232134912410000000000999"
	newKey := newRSAKey(t, 2048)
	newDoc := fx.doc()
	delete(newDoc, "platform_certificates")
	newDoc["wechatpay_public_key_id"] = newID
	newDoc["wechatpay_public_key"] = pkixPEM(t, &newKey.PublicKey)
	env.fake.Put(testSecretID, string(mustJSON(t, newDoc)))

	steps := []struct {
		name      string
		advance   time.Duration
		serial    string
		wantKey   bool
		wantCalls int
	}{
		{name: "old id still cached", serial: testPubKeyID, wantKey: true, wantCalls: 1},
		{name: "new id within MinRefreshInterval is rate-limited", serial: newID, wantKey: false, wantCalls: 1},
		{name: "new id after MinRefreshInterval refreshes once", advance: testMinRef, serial: newID, wantKey: true, wantCalls: 2},
		{name: "new id again is cached", serial: newID, wantKey: true, wantCalls: 2},
		{name: "rotated-out id within interval does not refetch", serial: testPubKeyID, wantKey: false, wantCalls: 2},
		{name: "storm of unknown serials within interval", serial: "PUB_KEY_ID_STORM", wantKey: false, wantCalls: 2},
		{name: "unknown serial after interval refreshes exactly once", advance: testMinRef, serial: "PUB_KEY_ID_UNKNOWN", wantKey: false, wantCalls: 3},
		{name: "empty serial never refreshes", advance: testMinRef, serial: "", wantKey: false, wantCalls: 3},
	}
	for _, st := range steps {
		env.clock.Advance(st.advance)
		key, err := env.cache.VerificationKey(t.Context(), st.serial)
		if st.wantKey {
			if err != nil {
				t.Fatalf("VerificationKey(%q) %s: got error %v, want nil", st.serial, st.name, err)
			}
			want := &fx.publicKey.PublicKey
			if st.serial == newID {
				want = &newKey.PublicKey
			}
			if !key.Equal(want) {
				t.Errorf("VerificationKey(%q) %s: got a different key, want the key published under that id", st.serial, st.name)
			}
		} else {
			if !errors.Is(err, secrets.ErrUnknownSerial) {
				t.Errorf("VerificationKey(%q) %s: got (%v, %v), want ErrUnknownSerial", st.serial, st.name, key != nil, err)
			}
			if st.serial != "" && err != nil && !strings.Contains(err.Error(), st.serial) {
				t.Errorf("VerificationKey(%q) %s: got error %q, want it to name the serial", st.serial, st.name, err)
			}
		}
		env.checkCalls(t, "VerificationKey "+st.name, st.wantCalls)
	}
}

func TestCacheConcurrentGet(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	env := newSDKEnv(t, fx, fx.doc(), testSecretID)

	const n = 16
	start := make(chan struct{})
	results := make([]*secrets.Credentials, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = env.cache.Get(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i] == nil || results[i] != results[0] {
			t.Errorf("Get in goroutine %d: got (%p, %v), want the shared credentials %p and nil error", i, results[i], errs[i], results[0])
		}
	}
	env.checkCalls(t, "16 concurrent Gets", 1)
}

// gatedClient serves SDK requests in memory through a handler, holding every
// request until gate is closed, and counts requests.
type gatedClient struct {
	h    http.Handler
	gate chan struct{}
	mu   sync.Mutex
	reqs int
}

// Do implements aws.HTTPClient.
func (c *gatedClient) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs++
	c.mu.Unlock()
	<-c.gate
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// requests returns the number of requests seen so far.
func (c *gatedClient) requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs
}

func TestCacheSingleFlight(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	doc := string(mustJSON(t, fx.doc()))

	synctest.Test(t, func(t *testing.T) {
		fake := smfake.New()
		fake.Put(testSecretID, doc)
		client := &gatedClient{h: fake, gate: make(chan struct{})}
		logs := &syncBuffer{}
		cache := secrets.NewCache(
			secrets.NewSecretsManagerSource(newSMClient("https://secretsmanager.invalid", client), testSecretID),
			secrets.CacheOptions{Logger: slog.New(slog.NewJSONHandler(logs, nil))},
		)

		const n = 16
		results := make([]*secrets.Credentials, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errs[i] = cache.Get(context.Background()) })
		}
		// Every goroutine is now either inside the one SDK call (held by the
		// gate) or waiting for that fetch to finish.
		synctest.Wait()
		if got := client.requests(); got != 1 {
			t.Errorf("requests while %d Gets are blocked: got %d, want 1", n, got)
		}
		close(client.gate)
		wg.Wait()

		for i := range n {
			if errs[i] != nil || results[i] == nil || results[i] != results[0] {
				t.Errorf("Get in goroutine %d: got (%p, %v), want the shared credentials %p and nil error", i, results[i], errs[i], results[0])
			}
		}
		if got := fake.Calls(); got != 1 {
			t.Errorf("GetSecretValue calls after %d concurrent Gets: got %d, want 1", n, got)
		}
		assertNoSecrets(t, "single-flight logs", logs.String(), fx.secretValues())
	})
}

func TestCacheNotFound(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	env := newSDKEnv(t, fx, fx.doc(), "wxpay/does-not-exist")

	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{name: "Get", call: func(ctx context.Context) error { _, err := env.cache.Get(ctx); return err }},
		{name: "Refresh", call: func(ctx context.Context) error { _, err := env.cache.Refresh(ctx); return err }},
		{name: "VerificationKey", call: func(ctx context.Context) error {
			_, err := env.cache.VerificationKey(ctx, testPubKeyID)
			return err
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t.Context())
			if !errors.Is(err, secrets.ErrNotFound) {
				t.Errorf("%s on missing secret: got error %v, want ErrNotFound", tc.name, err)
			}
			var rnf *types.ResourceNotFoundException
			if !errors.As(err, &rnf) {
				t.Errorf("%s on missing secret: got error %v, want *types.ResourceNotFoundException", tc.name, err)
			}
			if err != nil && !strings.Contains(err.Error(), "wxpay/does-not-exist") {
				t.Errorf("%s on missing secret: got error %q, want it to name the secret id", tc.name, err)
			}
			env.checkCalls(t, tc.name+" on missing secret", i+1)
		})
	}
}

func TestCacheStaleOnFailure(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	env := newSDKEnv(t, fx, fx.doc(), testSecretID)

	first, err := env.cache.Get(t.Context())
	if err != nil {
		t.Fatalf("Get: got error %v, want nil", err)
	}
	env.fake.FailNext(1)
	env.clock.Advance(testTTL)

	steps := []struct {
		name      string
		advance   time.Duration
		call      func(ctx context.Context) (*secrets.Credentials, error)
		wantSame  bool
		wantCalls int
	}{
		{name: "Get after TTL with SM failing serves stale", call: env.cache.Get, wantSame: true, wantCalls: 2},
		{name: "Get right after the failure backs off", call: env.cache.Get, wantSame: true, wantCalls: 2},
		{name: "Refresh right after the failure is rate-limited", call: env.cache.Refresh, wantSame: true, wantCalls: 2},
		{name: "Get after MinRefreshInterval refetches", advance: testMinRef, call: env.cache.Get, wantSame: false, wantCalls: 3},
	}
	for _, st := range steps {
		env.clock.Advance(st.advance)
		got, err := st.call(t.Context())
		if err != nil {
			t.Fatalf("%s: got error %v, want nil", st.name, err)
		}
		if (got == first) != st.wantSame {
			t.Errorf("%s: got same credentials as before = %v, want %v", st.name, got == first, st.wantSame)
		}
		env.checkCalls(t, st.name, st.wantCalls)
	}

	logs := env.logs.String()
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "serving cached credentials") || !strings.Contains(logs, "InternalServiceError") {
		t.Errorf("logs after failed refresh: got %s, want a WARN record about serving cached credentials with the SM error", logs)
	}
}

func TestCacheFailureWithoutValue(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	env := newSDKEnv(t, fx, fx.doc(), testSecretID)
	env.fake.FailNext(1)

	_, err := env.cache.Get(t.Context())
	var ise *types.InternalServiceError
	if !errors.As(err, &ise) {
		t.Fatalf("Get with SM failing and nothing cached: got error %v, want *types.InternalServiceError", err)
	}
	if !strings.Contains(env.logs.String(), `"level":"ERROR"`) {
		t.Errorf("logs after failed first load: got %s, want an ERROR record", env.logs.String())
	}
	if _, err := env.cache.Get(t.Context()); err != nil {
		t.Errorf("Get after the fault cleared: got error %v, want nil", err)
	}
	env.checkCalls(t, "failed then successful Get", 2)
}

func TestCacheInvalidSecret(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	doc := fx.doc()
	doc["apiv3_key"] = testAPIv3Key[:31]
	env := newSDKEnv(t, fx, doc, testSecretID)

	_, err := env.cache.Get(t.Context())
	var fe *secrets.FieldError
	if !errors.Is(err, secrets.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "apiv3_key" {
		t.Fatalf("Get with invalid secret: got error %v, want ErrInvalid with FieldError for apiv3_key", err)
	}
	assertNoSecrets(t, "Get with invalid secret error", err.Error(), append(fx.secretValues(), testAPIv3Key[:31]))
	assertNoSecrets(t, "logs with invalid secret", env.logs.String(), []string{testAPIv3Key[:31]})
}
