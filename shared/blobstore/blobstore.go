// Package blobstore keeps bill files and reconciliation reports: Amazon S3
// in AWS (bucket BILLS_BUCKET), a directory for local runs. Objects are
// written as streams, so a bill of any size costs one bounded buffer.
package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound: no object under the key.
var ErrNotFound = errors.New("blobstore: not found")

// ErrKey: a key that is empty, absolute, or climbs out of the store.
var ErrKey = errors.New("blobstore: invalid key")

// Store is where bills and reports go.
type Store interface {
	// Put writes the object key from body (read to its end) and returns
	// the bytes written. A failed Put leaves no partial object.
	Put(ctx context.Context, key string, body io.Reader, contentType string) (int64, error)
	// Get opens the object key; ErrNotFound when absent.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// CheckKey validates an object key: relative, slash-separated, no empty,
// "." or ".." segment, printable.
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 || strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: %q", ErrKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", ErrKey, key)
		}
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: %q", ErrKey, key)
		}
	}
	return nil
}

// Dir stores objects as files under Root (local runs: `make dev`, the
// operator command).
type Dir struct {
	Root string
}

// Put writes the file atomically (temporary file, then rename).
func (d Dir) Put(ctx context.Context, key string, body io.Reader, _ string) (int64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	path := filepath.Join(d.Root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, fmt.Errorf("blobstore: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".put-*")
	if err != nil {
		return 0, fmt.Errorf("blobstore: %w", err)
	}
	n, err := io.Copy(f, ctxReader{ctx, body})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, fmt.Errorf("blobstore: put %s: %w", key, err)
	}
	return n, nil
}

// Get opens the file.
func (d Dir) Get(_ context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(d.Root, filepath.FromSlash(key)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	return f, nil
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
