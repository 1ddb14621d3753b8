package wxnotify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxnotify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

type fixture struct {
	key      *rsa.PrivateKey
	apiKey   []byte
	body     []byte
	headers  map[string]string
	now      time.Time
	message  []byte
	sig      []byte
	nonce    []byte
	ct       []byte
	aad      []byte
	plainLen int
}

const plaintext = `{"mchid":"1900000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000000000000000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2026-11-23T10:00:00+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":551,"payer_total":550,"currency":"CNY","payer_currency":"CNY"},"promotion_detail":[{"coupon_id":"109519","name":"单品惠-6","scope":"GLOBAL","type":"NOCASH","amount":1,"stock_id":"931386","wechatpay_contribute":0,"merchant_contribute":1,"other_contribute":0,"currency":"CNY"}]}`

func newFixture(b *testing.B) *fixture {
	// A fixed TEST key (the known-answer platform key) keeps the setup
	// deterministic, so instruction counts (callgrind) compare run to run.
	key := testingKey(b)
	apiKey := []byte("TESTKEY0123456789abcdefghijklmno")
	res, err := wxsign.Seal(apiKey, "fdasflkja484", "transaction", "transaction", []byte(plaintext))
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"id": "EV-2018022511223320873", "create_time": "2026-11-23T10:00:00+08:00",
		"resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功", "resource": res})
	now := time.Unix(1795399200, 0)
	h, err := wxsign.SignResponse(key, "PUB_KEY_ID_1", now.Unix(), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", body)
	if err != nil {
		b.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(h.Signature)
	ct, _ := base64.StdEncoding.DecodeString(res.Ciphertext)
	return &fixture{key: key, apiKey: apiKey, body: body, now: now,
		headers: map[string]string{"wechatpay-timestamp": h.Timestamp, "wechatpay-nonce": h.Nonce, "wechatpay-signature": h.Signature, "wechatpay-serial": h.Serial},
		message: []byte(strconv.FormatInt(now.Unix(), 10) + "\n" + h.Nonce + "\n" + string(body) + "\n"),
		sig:     sig, nonce: []byte(res.Nonce), ct: ct, aad: []byte("transaction"), plainLen: len(plaintext)}
}

// BenchmarkFloor is the irreducible cryptographic work of one notification:
// SHA-256 + RSA-2048 PKCS#1 v1.5 verify of the message, AES-256-GCM open of
// the resource (cipher prepared, inputs already decoded).
func BenchmarkFloor(b *testing.B) {
	f := newFixture(b)
	block, _ := aes.NewCipher(f.apiKey)
	gcm, _ := cipher.NewGCM(block)
	dst := make([]byte, 0, f.plainLen)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sum := sha256.Sum256(f.message)
		if err := rsa.VerifyPKCS1v15(&f.key.PublicKey, crypto.SHA256, sum[:], f.sig); err != nil {
			b.Fatal(err)
		}
		if _, err := gcm.Open(dst[:0], f.nonce, f.ct, f.aad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDecryptDecode is what notify does per delivery before the
// store: verify the headers over the raw body, decode the envelope, decrypt,
// decode the typed payload. Target: <= 1.15x BenchmarkFloor.
func BenchmarkVerifyDecryptDecode(b *testing.B) {
	f := newFixture(b)
	pub := &f.key.PublicKey
	v := &wxnotify.Verifier{
		Keys:     func(context.Context, string) (*rsa.PublicKey, error) { return pub, nil },
		APIv3Key: func(context.Context) ([]byte, error) { return f.apiKey, nil },
		Now:      func() time.Time { return f.now },
	}
	get := func(name string) string { return f.headers[lower(name)] }
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, err := v.Parse(ctx, get, f.body)
		if err != nil {
			b.Fatal(err)
		}
		tx, err := wxnotify.DecodeTransaction(n.Plaintext)
		if err != nil || tx.Amount.Total != 551 || len(tx.PromotionDetail) != 1 {
			b.Fatal(err)
		}
	}
}

func testingKey(b *testing.B) *rsa.PrivateKey {
	raw, err := os.ReadFile("../wxsign/testdata/platform_key.testing.pem")
	if err != nil {
		b.Fatal(err)
	}
	blk, _ := pem.Decode(bytes.ReplaceAll(raw, []byte("TESTING KEY"), []byte("PRIVATE KEY")))
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func lower(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c >= 'A' && c <= 'Z' {
			out[i] = c + 32
		}
	}
	return string(out)
}

// BenchmarkWechatpayGoNotifyHandler is the reference: wechatpay-go's own
// notify handler (verify + decrypt + decode into a map) on the same
// notification, from an *http.Request as that API requires.
func BenchmarkWechatpayGoNotifyHandler(b *testing.B) {
	f := newFixture(b)
	now := time.Now()
	h, err := wxsign.SignResponse(f.key, "PUB_KEY_ID_1", now.Unix(), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", f.body)
	if err != nil {
		b.Fatal(err)
	}
	handler, err := notify.NewRSANotifyHandler(string(f.apiKey), verifiers.NewSHA256WithRSAPubkeyVerifier("PUB_KEY_ID_1", f.key.PublicKey))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPost, "https://merchant.example/notify/payments", bytes.NewReader(f.body))
		req.Header.Set("Wechatpay-Timestamp", h.Timestamp)
		req.Header.Set("Wechatpay-Nonce", h.Nonce)
		req.Header.Set("Wechatpay-Signature", h.Signature)
		req.Header.Set("Wechatpay-Serial", h.Serial)
		content := map[string]any{}
		if _, err := handler.ParseNotifyRequest(ctx, req, &content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTransaction isolates the typed decode of the payment resource.
func BenchmarkDecodeTransaction(b *testing.B) {
	in := []byte(plaintext)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := wxnotify.DecodeTransaction(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTransactionEncodingJSON is the same decode with encoding/json.
func BenchmarkDecodeTransactionEncodingJSON(b *testing.B) {
	in := []byte(plaintext)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var t wxnotify.Transaction
		if err := json.Unmarshal(in, &t); err != nil {
			b.Fatal(err)
		}
	}
}
