package lambdatest

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// NotificationOptions shape a signed notification. Zero values give a valid
// delivery signed with the platform public key at Now.
type NotificationOptions struct {
	ID             string
	Now            time.Time // signing time, default time.Now
	SignWith       *rsa.PrivateKey
	Serial         string // default the platform public key id
	APIv3Key       string // default the merchant's
	Algorithm      string // default AEAD_AES_256_GCM
	AssociatedData string // default original type
	Base64         bool   // deliver the body base64-encoded, as API Gateway may
	Tamper         bool   // change the body after signing
	Signature      string // override the signature header
	UpperHeaders   bool   // header names in canonical case instead of lower case
}

// Notification builds the API Gateway v2 event of a WeChat Pay notification
// on /notify/{channel}, encrypted and signed like WeChat Pay does.
func (e *Env) Notification(tb testing.TB, channel, eventType, originalType string, resource any, o NotificationOptions) events.APIGatewayV2HTTPRequest {
	tb.Helper()
	plain, err := json.Marshal(resource)
	if err != nil {
		tb.Fatal(err)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.ID == "" {
		o.ID = "EV-" + testkeys.RandomString(20)
	}
	if o.SignWith == nil {
		o.SignWith = e.Platform.Key
	}
	if o.Serial == "" {
		o.Serial = e.Platform.PublicKeyID
	}
	if o.APIv3Key == "" {
		o.APIv3Key = e.Merchant.APIv3Key
	}
	if o.AssociatedData == "" {
		o.AssociatedData = originalType
	}
	res, err := wxsign.Seal([]byte(o.APIv3Key), testkeys.RandomString(12), o.AssociatedData, originalType, plain)
	if err != nil {
		tb.Fatal(err)
	}
	if o.Algorithm != "" {
		res.Algorithm = o.Algorithm
	}
	body, err := json.Marshal(map[string]any{"id": o.ID, "create_time": o.Now.Format(time.RFC3339), "resource_type": "encrypt-resource",
		"event_type": eventType, "summary": "notification", "resource": res})
	if err != nil {
		tb.Fatal(err)
	}
	return e.SignedDelivery(tb, channel, body, o)
}

// SignedDelivery signs raw body bytes as a notification delivery.
func (e *Env) SignedDelivery(tb testing.TB, channel string, body []byte, o NotificationOptions) events.APIGatewayV2HTTPRequest {
	tb.Helper()
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.SignWith == nil {
		o.SignWith = e.Platform.Key
	}
	if o.Serial == "" {
		o.Serial = e.Platform.PublicKeyID
	}
	h, err := wxsign.SignResponse(o.SignWith, o.Serial, o.Now.Unix(), testkeys.RandomString(32), body)
	if err != nil {
		tb.Fatal(err)
	}
	if o.Signature != "" {
		h.Signature = o.Signature
	}
	if o.Tamper {
		body = append([]byte{}, body...)
		body[len(body)-2] ^= 0x01
	}
	names := []string{"wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial", "wechatpay-signature-type", "content-type"}
	if o.UpperHeaders {
		names = []string{wxsign.HeaderTimestamp, wxsign.HeaderNonce, wxsign.HeaderSignature, wxsign.HeaderSerial, wxsign.HeaderSignatureType, "Content-Type"}
	}
	headers := map[string]string{names[0]: h.Timestamp, names[1]: h.Nonce, names[2]: h.Signature, names[3]: h.Serial,
		names[4]: wxsign.Scheme, names[5]: "application/json"}
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /notify/{channel}", RawPath: "/notify/" + channel,
		Headers: headers, PathParameters: map[string]string{"channel": channel}, Body: string(body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: "POST /notify/{channel}", RequestID: "req-" + testkeys.RandomString(8),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/notify/" + channel}}}
	if o.Base64 {
		ev.Body = base64.StdEncoding.EncodeToString(body)
		ev.IsBase64Encoded = true
	}
	return ev
}

// CallCounter counts DynamoDB operations (by name) made through a client
// built with its option.
type CallCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// Option installs the counting middleware on a DynamoDB client.
func (c *CallCounter) Option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				if c.counts == nil {
					c.counts = map[string]int{}
				}
				c.counts[middleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

// Total is the number of calls so far.
func (c *CallCounter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// Count is the number of calls of one operation.
func (c *CallCounter) Count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// Reset zeroes the counters.
func (c *CallCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = nil
}

// ItemCount scans the table (tests only) and returns how many items it holds.
func (e *Env) ItemCount(tb testing.TB) int {
	tb.Helper()
	out, err := e.DB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.Table), Select: "COUNT", ConsistentRead: aws.Bool(true)})
	if err != nil {
		tb.Fatal(err)
	}
	return int(out.Count)
}
