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
	"os"
	"path/filepath"
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

// bundle is the on-disk form of a merchant + platform pair, so that `make
// dev`, `make invoke` and the simulator agree on keys across runs. It lives
// under the git-ignored .local/ and holds TEST keys only.
type bundle struct {
	Note               string `json:"note"`
	MchID              string `json:"mchid"`
	MerchantKeyPEM     string `json:"merchant_key_pem"`
	MerchantCertPEM    string `json:"merchant_cert_pem"`
	APIv3Key           string `json:"apiv3_key"`
	APIv2Key           string `json:"apiv2_key"`
	AppID              string `json:"appid"`
	ServiceID          string `json:"service_id"`
	PublicKeyID        string `json:"public_key_id"`
	PlatformKeyPEM     string `json:"platform_key_pem"`
	PlatformCertKeyPEM string `json:"platform_cert_key_pem"`
	PlatformCertPEM    string `json:"platform_cert_pem"`
}

// SaveBundle writes the pair to path (mode 0600).
func SaveBundle(path string, m *Merchant, p *Platform) error {
	pk, err := x509.MarshalPKCS8PrivateKey(p.Key)
	if err != nil {
		return fmt.Errorf("testkeys: %w", err)
	}
	ck, err := x509.MarshalPKCS8PrivateKey(p.CertKey)
	if err != nil {
		return fmt.Errorf("testkeys: %w", err)
	}
	b, err := json.MarshalIndent(bundle{
		Note:  "TEST KEYS generated by wxpay-serverless for local runs; never use them for a real merchant",
		MchID: m.MchID, MerchantKeyPEM: string(m.KeyPEM), MerchantCertPEM: string(m.CertPEM),
		APIv3Key: m.APIv3Key, APIv2Key: m.APIv2Key, AppID: m.AppID, ServiceID: m.ServiceID,
		PublicKeyID:        p.PublicKeyID,
		PlatformKeyPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})),
		PlatformCertKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ck})),
		PlatformCertPEM:    string(p.CertPEM),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("testkeys: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("testkeys: %w", err)
	}
	return os.WriteFile(path, b, 0o600)
}

// LoadBundle reads a pair written by SaveBundle.
func LoadBundle(path string) (*Merchant, *Platform, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: %w", err)
	}
	var b bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, nil, fmt.Errorf("testkeys: %s: %w", path, err)
	}
	mk, err := parseKey(b.MerchantKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	pk, err := parseKey(b.PlatformKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	ck, err := parseKey(b.PlatformCertKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	mcert, err := parseCert(b.MerchantCertPEM)
	if err != nil {
		return nil, nil, err
	}
	pcert, err := parseCert(b.PlatformCertPEM)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&pk.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("testkeys: %w", err)
	}
	m := &Merchant{MchID: b.MchID, CertSerial: serialHex(mcert), Key: mk, KeyPEM: []byte(b.MerchantKeyPEM), CertPEM: []byte(b.MerchantCertPEM),
		APIv3Key: b.APIv3Key, APIv2Key: b.APIv2Key, AppID: b.AppID, ServiceID: b.ServiceID}
	p := &Platform{PublicKeyID: b.PublicKeyID, Key: pk, PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		CertKey: ck, Cert: pcert, CertPEM: []byte(b.PlatformCertPEM), CertSerial: serialHex(pcert)}
	return m, p, nil
}

// LoadOrCreateBundle loads path, or generates and saves a new pair.
func LoadOrCreateBundle(path, mchID string) (*Merchant, *Platform, error) {
	if _, err := os.Stat(path); err == nil {
		return LoadBundle(path)
	}
	m, err := NewMerchant(mchID)
	if err != nil {
		return nil, nil, err
	}
	p, err := NewPlatform()
	if err != nil {
		return nil, nil, err
	}
	if err := SaveBundle(path, m, p); err != nil {
		return nil, nil, err
	}
	return m, p, nil
}

func parseKey(text string) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode([]byte(text))
	if blk == nil {
		return nil, fmt.Errorf("testkeys: bundle holds no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("testkeys: bundle key is not RSA")
	}
	return rk, nil
}

func parseCert(text string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(text))
	if blk == nil {
		return nil, fmt.Errorf("testkeys: bundle holds no PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("testkeys: %w", err)
	}
	return c, nil
}
