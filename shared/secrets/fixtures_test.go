package secrets_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// Distinctive 32-byte test keys, so that a leak is easy to spot.
const (
	testAPIv3Key = "APIv3Key-Secret-0123456789abcdef"
	testAPIv2Key = "APIv2Key-Secret-fedcba9876543210"
	testMchID    = "1900000001"
	testSerial   = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testPubKeyID = "PUB_KEY_ID_0114232134912410000000000000"
	testAppID    = "wxd678efh567hg6787"
	// testCertSerialHex is the serial of the generated platform certificate.
	testCertSerialHex = "3E0B5A3C1F2D4E6F708192A3B4C5D6E7F8091A2B"
)

// fixture holds key material generated at test time.
type fixture struct {
	merchantKey   *rsa.PrivateKey
	merchantPEM   string // PKCS#8
	merchantPKCS1 string // PKCS#1 PEM of the same key
	publicKey     *rsa.PrivateKey
	publicPEM     string // PKIX PEM of publicKey's public half
	certKey       *rsa.PrivateKey
	certPEM       string // self-signed certificate for certKey
}

// newFixture generates fresh RSA keys and a platform certificate.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{
		merchantKey: newRSAKey(t, 2048),
		publicKey:   newRSAKey(t, 2048),
		certKey:     newRSAKey(t, 2048),
	}
	fx.merchantPEM = pkcs8PEM(t, fx.merchantKey)
	fx.merchantPKCS1 = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(fx.merchantKey)}))
	fx.publicPEM = pkixPEM(t, &fx.publicKey.PublicKey)
	fx.certPEM = certPEM(t, fx.certKey, testCertSerialHex)
	return fx
}

// doc returns a valid document in mixed mode using every field.
func (fx *fixture) doc() map[string]any {
	return map[string]any{
		"mchid":                   testMchID,
		"merchant_cert_serial":    testSerial,
		"merchant_private_key":    fx.merchantPEM,
		"apiv3_key":               testAPIv3Key,
		"apiv2_key":               testAPIv2Key,
		"wechatpay_public_key_id": testPubKeyID,
		"wechatpay_public_key":    fx.publicPEM,
		"platform_certificates":   []any{fx.certPEM},
		"appids":                  []any{testAppID, "wx1234567890abcdef"},
		"payscore_service_id":     "500001",
	}
}

// secretValues lists strings that must never appear in errors or logs: the
// APIv3/APIv2 keys, every body line of the merchant private key PEM, the
// base64 of its DER encodings, and the decimal and hex forms of its private
// exponent and primes (as fmt or encoding/json would print a raw key).
func (fx *fixture) secretValues() []string {
	out := []string{testAPIv3Key, testAPIv2Key}
	out = append(out, pemBodyLines(fx.merchantPEM)...)
	out = append(out, pemBodyLines(fx.merchantPKCS1)...)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(fx.merchantKey)
	if err == nil {
		out = append(out, base64.StdEncoding.EncodeToString(pkcs8))
	}
	out = append(out, base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(fx.merchantKey)))
	for _, n := range append([]*big.Int{fx.merchantKey.D}, fx.merchantKey.Primes...) {
		out = append(out, n.String(), n.Text(16), fmt.Sprintf("%X", n))
	}
	return out
}

// pemBodyLines returns the base64 lines of a PEM text (not the armor).
func pemBodyLines(p string) []string {
	var out []string
	for line := range strings.SplitSeq(p, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

// assertNoSecrets fails the test if text contains any of secrets.
func assertNoSecrets(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(text, s) {
			t.Errorf("%s: got output containing secret value %.12q..., want it redacted", what, s)
		}
	}
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%T): got error %v, want nil", v, err)
	}
	return b
}

// newRSAKey generates an RSA key of the given size.
func newRSAKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("rsa.GenerateKey(%d): got error %v, want nil", bits, err)
	}
	return key
}

// pkcs8PEM encodes a private key as a PKCS#8 PEM.
func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("x509.MarshalPKCS8PrivateKey(%T): got error %v, want nil", key, err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// pkixPEM encodes a public key as a PKIX PEM.
func pkixPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("x509.MarshalPKIXPublicKey(%T): got error %v, want nil", pub, err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// certPEM returns a self-signed certificate PEM for key with the given hex
// serial.
func certPEM(t *testing.T, key *rsa.PrivateKey, serialHex string) string {
	t.Helper()
	serial, ok := new(big.Int).SetString(serialHex, 16)
	if !ok {
		t.Fatalf("big.Int.SetString(%q, 16): got ok=false, want true", serialHex)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Tenpay.com Test Platform", Organization: []string{"Test"}},
		NotBefore:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("x509.CreateCertificate: got error %v, want nil", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// newFakeClock returns a clock set to a fixed instant.
func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the current fake time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a goroutine-safe bytes.Buffer for capturing logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
