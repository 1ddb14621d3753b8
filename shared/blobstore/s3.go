package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3API is the part of *s3.Client the store uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// MinPartSize is S3's smallest part (all but the last).
const MinPartSize = 5 << 20

// S3 stores objects in one bucket. Bodies up to PartSize go in one
// PutObject; longer ones in a multipart upload of PartSize parts, read one
// at a time into a single reused buffer (so memory is PartSize whatever the
// object size). The bucket's default encryption applies.
type S3 struct {
	API    S3API
	Bucket string
	// PartSize defaults to 8 MiB; values below MinPartSize are raised.
	PartSize int
}

func (s *S3) partSize() int {
	switch {
	case s.PartSize == 0:
		return 8 << 20
	case s.PartSize < MinPartSize:
		return MinPartSize
	}
	return s.PartSize
}

// Put uploads body under key.
func (s *S3) Put(ctx context.Context, key string, body io.Reader, contentType string) (int64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	buf := make([]byte, s.partSize())
	n, err := io.ReadFull(body, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		_, err := s.API.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(buf[:n]),
			ContentLength: aws.Int64(int64(n)), ContentType: contentTypeOrNil(contentType)})
		if err != nil {
			return 0, fmt.Errorf("blobstore: put s3://%s/%s: %w", s.Bucket, key, err)
		}
		return int64(n), nil
	}
	if err != nil {
		return 0, fmt.Errorf("blobstore: put %s: read: %w", key, err)
	}
	return s.multipart(ctx, key, body, contentType, buf)
}

func contentTypeOrNil(ct string) *string {
	if ct == "" {
		return nil
	}
	return &ct
}

// multipart uploads buf (a full first part) and the rest of body.
func (s *S3) multipart(ctx context.Context, key string, body io.Reader, contentType string, buf []byte) (int64, error) {
	up, err := s.API.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.Bucket, Key: &key,
		ContentType: contentTypeOrNil(contentType), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		return 0, fmt.Errorf("blobstore: put s3://%s/%s: start multipart upload: %w", s.Bucket, key, err)
	}
	fail := func(err error) (int64, error) {
		// Best effort: the bucket's lifecycle rule aborts incomplete uploads
		// after 7 days if this call is not allowed or fails.
		_, aerr := s.API.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &s.Bucket, Key: &key, UploadId: up.UploadId})
		if aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort upload: %w", aerr))
		}
		return 0, fmt.Errorf("blobstore: put s3://%s/%s: %w", s.Bucket, key, err)
	}
	var parts []types.CompletedPart
	var total int64
	n := len(buf)
	for part := int32(1); ; part++ {
		if part > 10000 {
			return fail(errors.New("more than 10000 parts"))
		}
		out, err := s.API.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.Bucket, Key: &key, UploadId: up.UploadId, PartNumber: aws.Int32(part),
			Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			return fail(fmt.Errorf("part %d: %w", part, err))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(part), ChecksumCRC32: out.ChecksumCRC32})
		total += int64(n)
		var rerr error
		n, rerr = io.ReadFull(body, buf)
		if rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			return fail(fmt.Errorf("read: %w", rerr))
		}
	}
	_, err = s.API.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.Bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return fail(fmt.Errorf("complete: %w", err))
	}
	return total, nil
}

// Get opens the object.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	out, err := s.API.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		var nsk *types.NoSuchKey
		var ae smithy.APIError
		if errors.As(err, &nsk) || (errors.As(err, &ae) && ae.ErrorCode() == "NoSuchKey") {
			return nil, fmt.Errorf("%w: s3://%s/%s", ErrNotFound, s.Bucket, key)
		}
		return nil, fmt.Errorf("blobstore: get s3://%s/%s: %w", s.Bucket, key, err)
	}
	return out.Body, nil
}
