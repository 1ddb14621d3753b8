package secrets_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
)

func TestFileSource(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "merchant.json")
	doc := mustJSON(t, fx.doc())
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatalf("os.WriteFile(%s): got error %v, want nil", path, err)
	}
	mtime := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatalf("os.Chtimes(%s): got error %v, want nil", path, err)
	}
	// Some filesystems truncate mtimes; compare with what was stored.
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("os.Stat(%s): got error %v, want nil", path, err)
	}
	wantVersion := info.ModTime().UTC().Format(time.RFC3339Nano)

	t.Run("Fetch", func(t *testing.T) {
		raw, version, err := secrets.NewFileSource(path).Fetch(t.Context())
		if err != nil {
			t.Fatalf("Fetch(%s): got error %v, want nil", path, err)
		}
		if string(raw) != string(doc) {
			t.Errorf("Fetch(%s): got %d bytes that differ from the file, want the file contents", path, len(raw))
		}
		if version != wantVersion {
			t.Errorf("Fetch(%s) version: got %q, want %q", path, version, wantVersion)
		}
	})

	t.Run("Cache", func(t *testing.T) {
		cache := secrets.NewCache(secrets.NewFileSource(path), secrets.CacheOptions{})
		creds, err := cache.Get(t.Context())
		if err != nil {
			t.Fatalf("Cache(FileSource %s).Get: got error %v, want nil", path, err)
		}
		if creds.MchID != testMchID || creds.Version != wantVersion {
			t.Errorf("Cache(FileSource %s).Get: got mchid %q version %q, want %q %q", path, creds.MchID, creds.Version, testMchID, wantVersion)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(dir, "nope.json")
		_, _, err := secrets.NewFileSource(missing).Fetch(t.Context())
		if !errors.Is(err, secrets.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Fetch(%s): got error %v, want ErrNotFound and fs.ErrNotExist", missing, err)
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err := secrets.NewFileSource(path).Fetch(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Fetch(%s) with canceled context: got error %v, want context.Canceled", path, err)
		}
	})
}

// stubAPI is a GetSecretValueAPI returning canned answers.
type stubAPI struct {
	out *secretsmanager.GetSecretValueOutput
	err error
	ids []string
}

// GetSecretValue implements secrets.GetSecretValueAPI.
func (s *stubAPI) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.ids = append(s.ids, aws.ToString(in.SecretId))
	return s.out, s.err
}

func TestSecretsManagerSource(t *testing.T) {
	t.Parallel()
	const id = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wxpay-AbCdEf"
	otherErr := errors.New("throttled")

	tests := []struct {
		name        string
		api         *stubAPI
		wantRaw     string
		wantVersion string
		wantIs      []error
		wantNotIs   []error
	}{
		{
			name:    "SecretString",
			api:     &stubAPI{out: &secretsmanager.GetSecretValueOutput{SecretString: aws.String(`{"a":1}`), VersionId: aws.String("v1")}},
			wantRaw: `{"a":1}`, wantVersion: "v1",
		},
		{
			name:    "SecretBinary fallback",
			api:     &stubAPI{out: &secretsmanager.GetSecretValueOutput{SecretBinary: []byte(`{"b":2}`), VersionId: aws.String("v2")}},
			wantRaw: `{"b":2}`, wantVersion: "v2",
		},
		{
			name:   "neither string nor binary",
			api:    &stubAPI{out: &secretsmanager.GetSecretValueOutput{VersionId: aws.String("v3")}},
			wantIs: []error{secrets.ErrInvalid},
		},
		{
			name:      "resource not found",
			api:       &stubAPI{err: &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}},
			wantIs:    []error{secrets.ErrNotFound},
			wantNotIs: []error{secrets.ErrInvalid},
		},
		{
			name:      "other error",
			api:       &stubAPI{err: otherErr},
			wantIs:    []error{otherErr},
			wantNotIs: []error{secrets.ErrNotFound},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, version, err := secrets.NewSecretsManagerSource(tc.api, id).Fetch(t.Context())
			if len(tc.api.ids) != 1 || tc.api.ids[0] != id {
				t.Errorf("%s: got SecretIds %q, want [%q]", tc.name, tc.api.ids, id)
			}
			if len(tc.wantIs) == 0 {
				if err != nil {
					t.Fatalf("%s: got error %v, want nil", tc.name, err)
				}
				if string(raw) != tc.wantRaw || version != tc.wantVersion {
					t.Errorf("%s: got (%q, %q), want (%q, %q)", tc.name, raw, version, tc.wantRaw, tc.wantVersion)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: got nil error, want one", tc.name)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("%s: got error %v, want errors.Is(err, %v)", tc.name, err, target)
				}
			}
			for _, target := range tc.wantNotIs {
				if errors.Is(err, target) {
					t.Errorf("%s: got error %v, want !errors.Is(err, %v)", tc.name, err, target)
				}
			}
			if !strings.Contains(err.Error(), id) {
				t.Errorf("%s: got error %q, want it to name the secret id", tc.name, err)
			}
		})
	}
}
