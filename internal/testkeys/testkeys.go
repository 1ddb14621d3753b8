// Package testkeys generates TEST-ONLY merchant and WeChat Pay platform key
// material at run time: nothing is committed, every key is fresh per process,
// and the APIv3/APIv2 keys carry a TESTKEY prefix so they can never be
// mistaken for production values. Lambda binaries must not link this package
// (make check-deps).
package testkeys

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Merchant is a test merchant: its API key pair and certificate, APIv3 key and ids.
type Merchant struct {
	MchID      string
	CertSerial string // upper-case hex, as WeChat Pay shows it
	Key        *rsa.PrivateKey
	KeyPEM     []byte // PKCS#8 "PRIVATE KEY"
	CertPEM    []byte
	APIv3Key   string // 32 bytes, "TESTKEY" prefixed
	APIv2Key   string // 32 bytes, "TESTKEY" prefixed
	AppID      string
	ServiceID  string // Pay Score service_id
}

// Platform is the WeChat Pay side: a public key with a PUB_KEY_ID_ id and a
// platform certificate (legacy mode), each with its own key pair.
type Platform struct {
	PublicKeyID  string
	Key          *rsa.PrivateKey // signs in public-key mode
	PublicKeyPEM []byte
	CertKey      *rsa.PrivateKey // signs in certificate mode
	Cert         *x509.Certificate
	CertPEM      []byte
	CertSerial   string
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n characters of [A-Za-z0-9] from crypto/rand.
func RandomString(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alnum)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(fmt.Sprintf("testkeys: crypto/rand failed: %v", err)) // test-only package: no sane fallback
		}
		b[i] = alnum[v.Int64()]
	}
	return string(b)
}

// NewMerchant generates a merchant with a 2048-bit key and a self-signed API certificate.
func NewMerchant(mchID string) (*Merchant, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	cert, certPEM, err := selfSigned(key, mchID, "Test Merchant (TEST KEY)")
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	return &Merchant{
		MchID:      mchID,
		CertSerial: serialHex(cert),
		Key:        key,
		KeyPEM:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		CertPEM:    certPEM,
		APIv3Key:   "TESTKEY" + RandomString(25),
		APIv2Key:   "TESTKEY" + RandomString(25),
		AppID:      "wxtest" + strings.ToLower(RandomString(12)),
		ServiceID:  "5000" + digits(RandomString(8)),
	}, nil
}

// NewPlatform generates the WeChat Pay public key and a platform certificate.
func NewPlatform() (*Platform, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	certKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	cert, certPEM, err := selfSigned(certKey, "Tenpay.com Root CA (TEST)", "Test WeChat Pay Platform (TEST KEY)")
	if err != nil {
		return nil, err
	}
	return &Platform{
		PublicKeyID:  "PUB_KEY_ID_0119" + digits(RandomString(24)),
		Key:          key,
		PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		CertKey:      certKey,
		Cert:         cert,
		CertPEM:      certPEM,
		CertSerial:   serialHex(cert),
	}, nil
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(byte('0' + int(r)%10))
	}
	return b.String()
}

func selfSigned(key *rsa.PrivateKey, cn, org string) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: %w", err)
	}
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{org}, Country: []string{"CN"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// serialHex formats a serial the way WeChat Pay and wechatpay-go do: the
// big-endian bytes in upper-case hex (leading zero nibble kept).
func serialHex(c *x509.Certificate) string { return fmt.Sprintf("%X", c.SerialNumber.Bytes()) }

// SecretOptions select what goes into the secret document.
type SecretOptions struct {
	PublicKey    bool // include wechatpay_public_key_id + wechatpay_public_key
	Certificates bool // include platform_certificates
}

// SecretJSON renders the merchant credentials secret (the schema documented
// in package secrets and the README).
func SecretJSON(m *Merchant, p *Platform, opts SecretOptions) ([]byte, error) {
	doc := map[string]any{
		"mchid":                m.MchID,
		"merchant_cert_serial": m.CertSerial,
		"merchant_private_key": string(m.KeyPEM),
		"apiv3_key":            m.APIv3Key,
		"apiv2_key":            m.APIv2Key,
		"appids":               []string{m.AppID},
		"payscore_service_id":  m.ServiceID,
	}
	if opts.PublicKey {
		doc["wechatpay_public_key_id"] = p.PublicKeyID
		doc["wechatpay_public_key"] = string(p.PublicKeyPEM)
	}
	if opts.Certificates {
		doc["platform_certificates"] = []string{string(p.CertPEM)}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	return b, nil
}
