package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// maxDocumentBytes bounds a secret document read from a file (Secrets
// Manager itself caps secrets at 64 KiB).
const maxDocumentBytes = 1 << 20

// Source fetches the raw secret document and a version label identifying it.
type Source interface {
	// Fetch returns the raw document and its version. Errors must not
	// contain the document.
	Fetch(ctx context.Context) (raw []byte, version string, err error)
}

// GetSecretValueAPI is the subset of *secretsmanager.Client used by
// [SecretsManagerSource].
type GetSecretValueAPI interface {
	// GetSecretValue is (*secretsmanager.Client).GetSecretValue.
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretsManagerSource is a [Source] reading the current version of one AWS
// Secrets Manager secret.
type SecretsManagerSource struct {
	api      GetSecretValueAPI
	secretID string
}

// NewSecretsManagerSource returns a Source for the secret with the given name
// or ARN.
func NewSecretsManagerSource(api GetSecretValueAPI, secretID string) *SecretsManagerSource {
	return &SecretsManagerSource{api: api, secretID: secretID}
}

// Fetch implements [Source]. The version is the secret's VersionId. The value
// is taken from SecretString, or SecretBinary when SecretString is unset. A
// missing secret yields an error matching both errors.Is(err, ErrNotFound)
// and errors.As(err, **types.ResourceNotFoundException).
func (s *SecretsManagerSource) Fetch(ctx context.Context) ([]byte, string, error) {
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.secretID)})
	if err != nil {
		var rnf *types.ResourceNotFoundException
		if errors.As(err, &rnf) {
			return nil, "", fmt.Errorf("secrets: get secret value %q: %w: %w", s.secretID, ErrNotFound, err)
		}
		return nil, "", fmt.Errorf("secrets: get secret value %q: %w", s.secretID, err)
	}
	version := aws.ToString(out.VersionId)
	switch {
	case out.SecretString != nil:
		return []byte(*out.SecretString), version, nil
	case len(out.SecretBinary) > 0:
		return out.SecretBinary, version, nil
	default:
		return nil, "", fmt.Errorf("secrets: secret %q version %q has neither SecretString nor SecretBinary: %w",
			s.secretID, version, &FieldError{Field: documentField, Reason: "empty secret"})
	}
}

// FileSource is a [Source] reading a local file, for local runs and tests.
type FileSource struct {
	path string
}

// NewFileSource returns a Source reading the document at path.
func NewFileSource(path string) *FileSource {
	return &FileSource{path: path}
}

// Fetch implements [Source]. The version is the file's modification time
// (UTC, RFC 3339 with nanoseconds). A missing file yields an error matching
// both errors.Is(err, ErrNotFound) and errors.Is(err, fs.ErrNotExist).
func (s *FileSource) Fetch(ctx context.Context) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("secrets: read %s: %w", s.path, err)
	}
	f, err := os.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("secrets: read %s: %w: %w", s.path, ErrNotFound, err)
		}
		return nil, "", fmt.Errorf("secrets: read %s: %w", s.path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("secrets: stat %s: %w", s.path, err)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxDocumentBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("secrets: read %s: %w", s.path, err)
	}
	if len(raw) > maxDocumentBytes {
		return nil, "", fmt.Errorf("secrets: read %s: %w", s.path,
			&FieldError{Field: documentField, Reason: fmt.Sprintf("larger than %d bytes", maxDocumentBytes)})
	}
	return raw, info.ModTime().UTC().Format(time.RFC3339Nano), nil
}
