package blobstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wxpay-serverless/wxpay-serverless/internal/s3fake"
	"github.com/wxpay-serverless/wxpay-serverless/shared/blobstore"
)

const bucket = "bills-test"

// newS3 serves a fake S3 over plain HTTP or TLS and returns the store on
// the real SDK client. Over TLS the SDK sends aws-chunked bodies with a
// trailing CRC32 (as in AWS), over HTTP a CRC32 header and a signed
// payload hash: the fake checks both.
func newS3(t *testing.T, tls bool) (*blobstore.S3, *s3fake.Server) {
	t.Helper()
	fake := s3fake.New(bucket)
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(fake)
	} else {
		srv = httptest.NewServer(fake)
	}
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "ap-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
		HTTPClient: srv.Client()}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
	return &blobstore.S3{API: client, Bucket: bucket, PartSize: blobstore.MinPartSize}, fake
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// failingReader returns data, then an error instead of EOF.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestS3PutGet(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[tls]
		t.Run(name, func(t *testing.T) {
			store, fake := newS3(t, tls)
			ctx := context.Background()
			tests := []struct {
				name       string
				size       int
				wantUpload int // multipart uploads started
			}{
				{"empty", 0, 0},
				{"small", 1234, 0},
				{"exactly one part", blobstore.MinPartSize, 1},
				{"three parts", 2*blobstore.MinPartSize + 777, 1},
			}
			for _, tc := range tests {
				data := random(t, tc.size)
				key := "bills/2026-11-22/" + tc.name
				before := fake.Calls("CreateMultipartUpload")
				n, err := store.Put(ctx, key, bytes.NewReader(data), "application/gzip")
				if err != nil || n != int64(tc.size) {
					t.Fatalf("%s: Put = %d, %v; want %d", tc.name, n, err, tc.size)
				}
				if got := fake.Calls("CreateMultipartUpload") - before; got != tc.wantUpload {
					t.Fatalf("%s: %d multipart uploads, want %d", tc.name, got, tc.wantUpload)
				}
				rc, err := store.Get(ctx, key)
				if err != nil {
					t.Fatalf("%s: Get: %v", tc.name, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s: Get returned %d bytes (%v), want the %d put", tc.name, len(got), err, len(data))
				}
			}
			if fake.PendingUploads(bucket) != 0 {
				t.Fatalf("%d uploads left pending", fake.PendingUploads(bucket))
			}
		})
	}
}

func TestS3FailedPutLeavesNothing(t *testing.T) {
	store, fake := newS3(t, false)
	boom := errors.New("download broke")
	body := &failingReader{r: bytes.NewReader(random(t, blobstore.MinPartSize+100)), err: boom}
	if _, err := store.Put(context.Background(), "bills/x.gz", body, ""); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	if keys := fake.Keys(bucket); len(keys) != 0 || fake.PendingUploads(bucket) != 0 || fake.Calls("AbortMultipartUpload") != 1 {
		t.Fatalf("after a failed upload: keys %v, pending %d, aborts %d", keys, fake.PendingUploads(bucket), fake.Calls("AbortMultipartUpload"))
	}
	// A failed small Put writes nothing either.
	small := &failingReader{r: bytes.NewReader([]byte("abc")), err: boom}
	if _, err := store.Put(context.Background(), "bills/y.gz", small, ""); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	if keys := fake.Keys(bucket); len(keys) != 0 {
		t.Fatalf("keys %v after failed puts", keys)
	}
}

func TestS3Errors(t *testing.T) {
	store, fake := newS3(t, false)
	ctx := context.Background()
	if _, err := store.Get(ctx, "reports/none.json"); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Get of a missing key = %v, want ErrNotFound", err)
	}
	for _, key := range []string{"", "/abs", "a//b", "../x", "a/../../b", "a\\b"} {
		if _, err := store.Put(ctx, key, bytes.NewReader(nil), ""); !errors.Is(err, blobstore.ErrKey) {
			t.Errorf("Put(%q) = %v, want ErrKey", key, err)
		}
	}
	if n := fake.Calls("PutObject"); n != 0 {
		t.Fatalf("invalid keys reached S3 (%d calls)", n)
	}
	// A transient 500 is retried by the SDK and the object still lands.
	fake.FailNext(1)
	if _, err := store.Put(ctx, "reports/r.json", bytes.NewReader([]byte("{}")), "application/json"); err != nil {
		t.Fatalf("Put after one 500: %v", err)
	}
	// The fake is strict about integrity: a wrong CRC32 is rejected.
	client := store.API.(*s3.Client)
	_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("data")),
		ChecksumCRC32: aws.String("AAAAAA==")})
	if err == nil {
		t.Fatal("a PutObject with a wrong CRC32 was accepted")
	}
}

func TestDirStore(t *testing.T) {
	root := t.TempDir()
	d := blobstore.Dir{Root: root}
	ctx := context.Background()
	if _, err := d.Put(ctx, "bills/2026-11-22/run/tradebill.csv.gz", bytes.NewReader([]byte("abc")), ""); err != nil {
		t.Fatal(err)
	}
	rc, err := d.Get(ctx, "bills/2026-11-22/run/tradebill.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "abc" {
		t.Fatalf("got %q", got)
	}
	boom := errors.New("boom")
	if _, err := d.Put(ctx, "bills/broken", &failingReader{r: bytes.NewReader([]byte("xyz")), err: boom}, ""); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want boom", err)
	}
	if _, err := os.Stat(filepath.Join(root, "bills", "broken")); !os.IsNotExist(err) {
		t.Fatalf("a failed Put left a file: %v", err)
	}
	if _, err := d.Get(ctx, "bills/none"); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Get missing = %v", err)
	}
	if _, err := d.Put(ctx, "../escape", bytes.NewReader(nil), ""); !errors.Is(err, blobstore.ErrKey) {
		t.Fatalf("Put ../escape = %v, want ErrKey", err)
	}
}
