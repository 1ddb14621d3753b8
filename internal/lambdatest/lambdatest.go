// Package lambdatest holds the test harness shared by handler tests: a fresh
// DynamoDB Local table, generated test credentials, and the sample events in
// events/<fn>/*.json decoded strictly into the type each handler takes.
package lambdatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
)

// Env is one test's world: table, credentials and the deps built from them.
type Env struct {
	DB         *dynamodb.Client
	Table      string
	Store      *ddbstore.Store
	Merchant   *testkeys.Merchant
	Platform   *testkeys.Platform
	SecretJSON []byte
	SecretFile string
	Secrets    *secrets.Cache
	Logs       *SyncBuffer // everything the handlers logged
	Deps       app.Deps
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NewEnv builds a world; the caller's TestMain must run ddblocal.RunTests.
// optFns configure the DynamoDB client (e.g. a CallCounter).
func NewEnv(tb testing.TB, optFns ...func(*dynamodb.Options)) *Env {
	tb.Helper()
	m, err := testkeys.NewMerchant("1900000109")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := testkeys.NewPlatform()
	if err != nil {
		tb.Fatal(err)
	}
	secret, err := testkeys.SecretJSON(m, p, testkeys.SecretOptions{PublicKey: true, Certificates: true})
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "merchant-secret.json")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		tb.Fatal(err)
	}
	db, table := ddblocal.NewTable(tb, optFns...)
	logs := &SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cache := secrets.NewCache(secrets.NewFileSource(file), secrets.CacheOptions{Logger: log})
	st := ddbstore.New(db, table)
	return &Env{DB: db, Table: table, Store: st, Merchant: m, Platform: p, SecretJSON: secret, SecretFile: file,
		Secrets: cache, Logs: logs, Deps: app.Deps{Store: st, Secrets: cache, Log: log}}
}

// SecretValues lists the strings that must never appear in logs or output.
func (e *Env) SecretValues() []string {
	vals := []string{e.Merchant.APIv3Key, e.Merchant.APIv2Key}
	for _, line := range strings.Split(string(e.Merchant.KeyPEM), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") {
			vals = append(vals, line)
		}
	}
	return vals
}

// AssertNoSecrets fails the test if text contains any secret value.
func (e *Env) AssertNoSecrets(tb testing.TB, what, text string) {
	tb.Helper()
	for _, v := range e.SecretValues() {
		if strings.Contains(text, v) {
			tb.Fatalf("%s contains a secret value (%d chars)", what, len(v))
		}
	}
}

// EventFile is one sample event.
type EventFile struct {
	Function string // directory under events/
	Name     string // file name
	Path     string
	Raw      []byte
}

// Key is "<fn>/<name>".
func (f EventFile) Key() string { return f.Function + "/" + f.Name }

// LoadEvents lists every events/<fn>/*.json under the repo root.
func LoadEvents(root string) ([]EventFile, error) {
	paths, err := filepath.Glob(filepath.Join(root, "events", "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("lambdatest: %w", err)
	}
	sort.Strings(paths)
	var out []EventFile
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("lambdatest: %w", err)
		}
		out = append(out, EventFile{Function: filepath.Base(filepath.Dir(p)), Name: filepath.Base(p), Path: p, Raw: raw})
	}
	return out, nil
}

// DecodeStrict decodes exactly one JSON value into v, rejecting unknown
// fields and trailing data.
func DecodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// JSONEqual reports whether two JSON documents are semantically equal.
func JSONEqual(a, b []byte) (bool, error) {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false, err
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb), nil
}
