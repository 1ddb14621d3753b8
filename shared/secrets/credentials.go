package secrets

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// Mode says which kind of WeChat Pay verification key material the
// credentials carry.
type Mode string

// Verification modes, derived by [Parse] from the secret's contents.
const (
	// ModePublicKey means only the WeChat Pay public key is configured.
	ModePublicKey Mode = "public_key"
	// ModeCertificate means only platform certificates are configured.
	ModeCertificate Mode = "certificate"
	// ModeMixed means both the public key and platform certificates are
	// configured (migration period).
	ModeMixed Mode = "mixed"
)

// redactedMark replaces every secret value in formatted output.
const redactedMark = "[REDACTED]"

// Credentials are a merchant's validated WeChat Pay credentials. Values
// returned by [Cache] are shared between callers and must be treated as
// read-only.
//
// Formatting a Credentials (or a pointer to one) with fmt, encoding/json or
// log/slog yields a redacted summary; the key fields themselves must never be
// printed directly.
type Credentials struct {
	// MchID is the merchant ID (digits).
	MchID string
	// MerchantCertSerial is the hex serial number of the merchant API
	// certificate, sent in the Authorization header of API requests.
	MerchantCertSerial string
	// MerchantPrivateKey signs API requests.
	MerchantPrivateKey *rsa.PrivateKey
	// APIv3Key is the 32-byte APIv3 key (AES-256-GCM for notifications and
	// platform certificate downloads).
	APIv3Key []byte
	// APIv2Key is the optional 32-byte APIv2 key (HMAC-SHA256 signing, e.g.
	// for the mini-program coupon plugin); nil when absent.
	APIv2Key []byte
	// PublicKeyID is the WeChat Pay public key ID (PUB_KEY_ID_...); empty
	// when no public key is configured.
	PublicKeyID string
	// PublicKey is the WeChat Pay public key identified by PublicKeyID.
	PublicKey *rsa.PublicKey
	// PlatformCerts are the WeChat Pay platform certificates keyed by
	// upper-case hex serial, as utils.GetCertificateSerialNumber in
	// wechatpay-go formats it.
	PlatformCerts map[string]*x509.Certificate
	// AppIDs are the app IDs bound to the merchant (at least one).
	AppIDs []string
	// PayScoreServiceID is the optional WeChat Pay Score service ID.
	PayScoreServiceID string
	// Mode is derived from which verification keys are present.
	Mode Mode
	// Version identifies where the credentials came from (Secrets Manager
	// VersionId or file modification time); for logs.
	Version string
}

// VerificationKey returns the WeChat Pay key that verifies responses and
// notifications carrying the given Wechatpay-Serial: the public key when
// serial equals PublicKeyID, otherwise the key of the platform certificate
// with that serial (hex compared case-insensitively). It reports false when
// no key matches.
func (c *Credentials) VerificationKey(serial string) (*rsa.PublicKey, bool) {
	if c == nil || serial == "" {
		return nil, false
	}
	if c.PublicKey != nil && c.PublicKeyID != "" && serial == c.PublicKeyID {
		return c.PublicKey, true
	}
	cert, ok := c.PlatformCerts[strings.ToUpper(serial)]
	if !ok || cert == nil {
		return nil, false
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	return key, ok
}

// summary is the redacted view of Credentials used by every formatter.
type summary struct {
	MchID              string   `json:"mchid"`
	MerchantCertSerial string   `json:"merchant_cert_serial"`
	MerchantPrivateKey string   `json:"merchant_private_key,omitempty"`
	APIv3Key           string   `json:"apiv3_key,omitempty"`
	APIv2Key           string   `json:"apiv2_key,omitempty"`
	PublicKeyID        string   `json:"wechatpay_public_key_id,omitempty"`
	PublicKey          string   `json:"wechatpay_public_key,omitempty"`
	PlatformSerials    []string `json:"platform_certificate_serials,omitempty"`
	AppIDs             []string `json:"appids"`
	PayScoreServiceID  string   `json:"payscore_service_id,omitempty"`
	Mode               Mode     `json:"mode"`
	Version            string   `json:"version,omitempty"`
}

// redact returns a redaction marker when present is true and "" otherwise.
func redact(present bool) string {
	if present {
		return redactedMark
	}
	return ""
}

// summarize builds the redacted view of c.
func (c Credentials) summarize() summary {
	serials := make([]string, 0, len(c.PlatformCerts))
	for serial := range c.PlatformCerts {
		serials = append(serials, serial)
	}
	slices.Sort(serials)
	return summary{
		MchID:              c.MchID,
		MerchantCertSerial: c.MerchantCertSerial,
		MerchantPrivateKey: redact(c.MerchantPrivateKey != nil),
		APIv3Key:           redact(len(c.APIv3Key) > 0),
		APIv2Key:           redact(len(c.APIv2Key) > 0),
		PublicKeyID:        c.PublicKeyID,
		PublicKey:          redact(c.PublicKey != nil),
		PlatformSerials:    serials,
		AppIDs:             slices.Clone(c.AppIDs),
		PayScoreServiceID:  c.PayScoreServiceID,
		Mode:               c.Mode,
		Version:            c.Version,
	}
}

// String returns a redacted, human-readable summary. It also serves %v and
// %+v for both Credentials and *Credentials.
func (c Credentials) String() string {
	s := c.summarize()
	var b strings.Builder
	b.WriteString("secrets.Credentials{")
	first := true
	field := func(name, value string) {
		if value == "" {
			return
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(value)
	}
	list := func(values []string) string {
		if len(values) == 0 {
			return ""
		}
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = strconv.Quote(v)
		}
		return "[" + strings.Join(quoted, " ") + "]"
	}
	field("mchid", strconv.Quote(s.MchID))
	field("merchant_cert_serial", strconv.Quote(s.MerchantCertSerial))
	field("merchant_private_key", s.MerchantPrivateKey)
	field("apiv3_key", s.APIv3Key)
	field("apiv2_key", s.APIv2Key)
	if s.PublicKeyID != "" {
		field("wechatpay_public_key_id", strconv.Quote(s.PublicKeyID))
	}
	field("wechatpay_public_key", s.PublicKey)
	field("platform_certificate_serials", list(s.PlatformSerials))
	field("appids", list(s.AppIDs))
	if s.PayScoreServiceID != "" {
		field("payscore_service_id", strconv.Quote(s.PayScoreServiceID))
	}
	field("mode", string(s.Mode))
	if s.Version != "" {
		field("version", strconv.Quote(s.Version))
	}
	b.WriteByte('}')
	return b.String()
}

// GoString returns the same redacted summary as String, so that %#v does not
// print the key fields.
func (c Credentials) GoString() string {
	return c.String()
}

// MarshalJSON encodes the redacted summary. Credentials cannot be round-tripped
// through JSON; use [Parse] on the original secret document instead.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.summarize())
}

// LogValue implements slog.LogValuer with the redacted summary.
func (c Credentials) LogValue() slog.Value {
	s := c.summarize()
	attrs := []slog.Attr{
		slog.String("mchid", s.MchID),
		slog.String("merchant_cert_serial", s.MerchantCertSerial),
	}
	add := func(key, value string) {
		if value != "" {
			attrs = append(attrs, slog.String(key, value))
		}
	}
	add("merchant_private_key", s.MerchantPrivateKey)
	add("apiv3_key", s.APIv3Key)
	add("apiv2_key", s.APIv2Key)
	add("wechatpay_public_key_id", s.PublicKeyID)
	add("wechatpay_public_key", s.PublicKey)
	if len(s.PlatformSerials) > 0 {
		attrs = append(attrs, slog.Any("platform_certificate_serials", s.PlatformSerials))
	}
	attrs = append(attrs, slog.Any("appids", s.AppIDs))
	add("payscore_service_id", s.PayScoreServiceID)
	attrs = append(attrs, slog.String("mode", string(s.Mode)))
	add("version", s.Version)
	return slog.GroupValue(attrs...)
}
