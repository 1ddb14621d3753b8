package stack

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wxpay-serverless/wxpay-serverless/internal/s3fake"
	"github.com/wxpay-serverless/wxpay-serverless/shared/blobstore"
)

// BillsBucket is the bucket of the stack's S3 fake.
const BillsBucket = "wxpay-bills-local"

// startBills gives the billing function its bucket: files under dir, or an
// in-memory S3 fake on a loopback port behind the real aws-sdk-go-v2 S3
// client (the adapter Lambda runs, multipart uploads included).
func (s *Stack) startBills(dir string) error {
	if dir != "" {
		s.Bills = blobstore.Dir{Root: dir}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("stack: S3 fake listen: %w", err)
	}
	s.S3 = s3fake.New(BillsBucket)
	s.s3Srv = &http.Server{Handler: s.S3, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.s3Srv.Serve(ln) }()
	cfg := aws.Config{Region: "ap-east-1", Credentials: credentials.NewStaticCredentialsProvider("LOCAL", "LOCAL", "")}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://" + ln.Addr().String())
		o.UsePathStyle = true
	})
	s.Bills = &blobstore.S3{API: client, Bucket: BillsBucket}
	return nil
}
