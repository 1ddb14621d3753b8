package secrets

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// JSON field names of the secret document.
const (
	fieldMchID              = "mchid"
	fieldMerchantCertSerial = "merchant_cert_serial"
	fieldMerchantPrivateKey = "merchant_private_key"
	fieldAPIv3Key           = "apiv3_key"
	fieldAPIv2Key           = "apiv2_key"
	fieldPublicKeyID        = "wechatpay_public_key_id"
	fieldPublicKey          = "wechatpay_public_key"
	fieldPlatformCerts      = "platform_certificates"
	fieldAppIDs             = "appids"
	fieldPayScoreServiceID  = "payscore_service_id"
)

const (
	// minRSABits is the smallest accepted RSA modulus.
	minRSABits = 2048
	// keyLen is the required length of the APIv3 and APIv2 keys.
	keyLen = 32
	// publicKeyIDPrefix starts every WeChat Pay public key ID.
	publicKeyIDPrefix = "PUB_KEY_ID_"
	// maxSerialLen bounds merchant_cert_serial (x509 serials are at most 20
	// bytes, i.e. 40 hex digits; leave room).
	maxSerialLen = 64
	// maxFieldNameLen bounds how much of an unknown field name is echoed.
	maxFieldNameLen = 64
)

// isKnownField reports whether name is a field of the secret document.
func isKnownField(name string) bool {
	switch name {
	case fieldMchID, fieldMerchantCertSerial, fieldMerchantPrivateKey, fieldAPIv3Key,
		fieldAPIv2Key, fieldPublicKeyID, fieldPublicKey, fieldPlatformCerts,
		fieldAppIDs, fieldPayScoreServiceID:
		return true
	}
	return false
}

// Parse decodes and validates a secret document (see the package
// documentation for the schema). Every validation failure is a *FieldError,
// which matches errors.Is(err, ErrInvalid); error messages never contain
// secret values. The returned Credentials have an empty Version.
func Parse(data []byte) (*Credentials, error) {
	doc, err := decodeDocument(data)
	if err != nil {
		return nil, err
	}

	mchid, err := requiredString(doc, fieldMchID)
	if err != nil {
		return nil, err
	}
	if !isDigits(mchid) {
		return nil, fieldErr(fieldMchID, "must contain only decimal digits")
	}

	serial, err := requiredString(doc, fieldMerchantCertSerial)
	if err != nil {
		return nil, err
	}
	if len(serial) > maxSerialLen || !isHex(serial) {
		return nil, fieldErr(fieldMerchantCertSerial, "must be a hexadecimal certificate serial number of at most %d digits", maxSerialLen)
	}

	privPEM, err := requiredString(doc, fieldMerchantPrivateKey)
	if err != nil {
		return nil, err
	}
	priv, err := parsePrivateKey(fieldMerchantPrivateKey, privPEM)
	if err != nil {
		return nil, err
	}

	v3, err := requiredString(doc, fieldAPIv3Key)
	if err != nil {
		return nil, err
	}
	if len(v3) != keyLen {
		return nil, fieldErr(fieldAPIv3Key, "must be exactly %d bytes, got %d", keyLen, len(v3))
	}

	v2, err := optionalString(doc, fieldAPIv2Key)
	if err != nil {
		return nil, err
	}
	if v2 != "" && len(v2) != keyLen {
		return nil, fieldErr(fieldAPIv2Key, "must be exactly %d bytes when set, got %d", keyLen, len(v2))
	}

	pubID, err := optionalString(doc, fieldPublicKeyID)
	if err != nil {
		return nil, err
	}
	pubPEM, err := optionalString(doc, fieldPublicKey)
	if err != nil {
		return nil, err
	}
	var pub *rsa.PublicKey
	switch {
	case pubID != "" && pubPEM == "":
		return nil, fieldErr(fieldPublicKey, "required when %s is set", fieldPublicKeyID)
	case pubID == "" && pubPEM != "":
		return nil, fieldErr(fieldPublicKeyID, "required when %s is set", fieldPublicKey)
	case pubID != "":
		if !strings.HasPrefix(pubID, publicKeyIDPrefix) || len(pubID) == len(publicKeyIDPrefix) {
			return nil, fieldErr(fieldPublicKeyID, "must start with %q", publicKeyIDPrefix)
		}
		if pub, err = parsePublicKey(fieldPublicKey, pubPEM); err != nil {
			return nil, err
		}
	}

	certPEMs, err := optionalStrings(doc, fieldPlatformCerts)
	if err != nil {
		return nil, err
	}
	var certs map[string]*x509.Certificate
	if len(certPEMs) > 0 {
		certs = make(map[string]*x509.Certificate, len(certPEMs))
		for i, p := range certPEMs {
			field := fmt.Sprintf("%s[%d]", fieldPlatformCerts, i)
			cert, err := parseCertificate(field, p)
			if err != nil {
				return nil, err
			}
			sn := utils.GetCertificateSerialNumber(*cert)
			if _, dup := certs[sn]; dup {
				return nil, fieldErr(field, "duplicate certificate serial %s", sn)
			}
			certs[sn] = cert
		}
	}

	if pub == nil && len(certs) == 0 {
		return nil, fieldErr(fieldPublicKey,
			"a WeChat Pay public key (%s and %s) or at least one entry in %s is required",
			fieldPublicKeyID, fieldPublicKey, fieldPlatformCerts)
	}

	appIDs, err := optionalStrings(doc, fieldAppIDs)
	if err != nil {
		return nil, err
	}
	if len(appIDs) == 0 {
		return nil, fieldErr(fieldAppIDs, "required, at least one app ID")
	}
	for i, id := range appIDs {
		if id == "" {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", fieldAppIDs, i), "must not be empty")
		}
	}

	payScore, err := optionalString(doc, fieldPayScoreServiceID)
	if err != nil {
		return nil, err
	}

	c := &Credentials{
		MchID:              mchid,
		MerchantCertSerial: serial,
		MerchantPrivateKey: priv,
		APIv3Key:           []byte(v3),
		PublicKeyID:        pubID,
		PublicKey:          pub,
		PlatformCerts:      certs,
		AppIDs:             appIDs,
		PayScoreServiceID:  payScore,
	}
	if v2 != "" {
		c.APIv2Key = []byte(v2)
	}
	switch {
	case pub != nil && len(certs) > 0:
		c.Mode = ModeMixed
	case pub != nil:
		c.Mode = ModePublicKey
	default:
		c.Mode = ModeCertificate
	}
	return c, nil
}

// decodeDocument decodes the top-level JSON object and rejects unknown
// fields. Errors never echo the input.
func decodeDocument(data []byte) (map[string]json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntaxErr):
			return nil, fieldErr(documentField, "malformed JSON: syntax error at byte offset %d", syntaxErr.Offset)
		case errors.As(err, &typeErr):
			return nil, fieldErr(documentField, "malformed JSON: the document must be a JSON object")
		default:
			return nil, fieldErr(documentField, "malformed JSON")
		}
	}
	if doc == nil {
		return nil, fieldErr(documentField, "malformed JSON: the document must be a JSON object")
	}
	var unknown []string
	for name := range doc {
		if !isKnownField(name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		name := unknown[0]
		if len(name) > maxFieldNameLen {
			name = name[:maxFieldNameLen] + "..."
		}
		return nil, fieldErr(name, "unknown field")
	}
	return doc, nil
}

// optionalString returns the string field name, or "" when it is absent or
// null.
func optionalString(doc map[string]json.RawMessage, name string) (string, error) {
	raw, ok := doc[name]
	if !ok {
		return "", nil
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(name, "must be a JSON string")
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// requiredString returns the string field name, failing when it is absent,
// null or empty.
func requiredString(doc map[string]json.RawMessage, name string) (string, error) {
	s, err := optionalString(doc, name)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", fieldErr(name, "required")
	}
	return s, nil
}

// optionalStrings returns the string-array field name, or nil when it is
// absent or null.
func optionalStrings(doc map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := doc[name]
	if !ok {
		return nil, nil
	}
	var list []*string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fieldErr(name, "must be a JSON array of strings")
	}
	out := make([]string, len(list))
	for i, s := range list {
		if s == nil {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", name, i), "must be a string, not null")
		}
		out[i] = *s
	}
	return out, nil
}

// decodePEM decodes the single PEM block in text, which must have one of
// wantTypes.
func decodePEM(field, text string, wantTypes ...string) (*pem.Block, error) {
	block, err := decodeAnyPEM(field, text)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(wantTypes, block.Type) {
		return nil, fieldErr(field, "PEM block type is %q, want %s", block.Type, strings.Join(quoteAll(wantTypes), " or "))
	}
	return block, nil
}

// decodeAnyPEM decodes the single PEM block in text, whatever its type.
func decodeAnyPEM(field, text string) (*pem.Block, error) {
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		if strings.Contains(text, `\n`) {
			return nil, fieldErr(field, `not a PEM block (it contains a literal backslash-n; line breaks must be JSON-encoded newlines)`)
		}
		return nil, fieldErr(field, "not a PEM block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fieldErr(field, "unexpected data after the PEM block")
	}
	return block, nil
}

// parsePrivateKey parses an RSA private key PEM (PKCS#8, then PKCS#1).
func parsePrivateKey(field, text string) (*rsa.PrivateKey, error) {
	block, err := decodeAnyPEM(field, text)
	if err != nil {
		return nil, err
	}
	switch {
	case block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "":
		return nil, fieldErr(field, "encrypted private keys are not supported")
	case block.Type == "EC PRIVATE KEY":
		return nil, fieldErr(field, "not an RSA key (got ECDSA)")
	case block.Type != "PRIVATE KEY" && block.Type != "RSA PRIVATE KEY":
		return nil, fieldErr(field, "PEM block type is %q, want \"PRIVATE KEY\" or \"RSA PRIVATE KEY\"", block.Type)
	}
	var key any
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else if _, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return nil, fieldErr(field, "not an RSA key (got ECDSA)")
	} else {
		return nil, fieldErr(field, "cannot parse the PEM block as a PKCS#8 or PKCS#1 private key")
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fieldErr(field, "not an RSA key (got %s)", keyKind(key))
	}
	if bits := rsaKey.N.BitLen(); bits < minRSABits {
		return nil, fieldErr(field, "RSA key is %d bits, want at least %d", bits, minRSABits)
	}
	return rsaKey, nil
}

// parsePublicKey parses a PKIX ("PUBLIC KEY") RSA public key PEM.
func parsePublicKey(field, text string) (*rsa.PublicKey, error) {
	block, err := decodePEM(field, text, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fieldErr(field, "cannot parse the PEM block as a PKIX public key")
	}
	return rsaPublicKey(field, key)
}

// parseCertificate parses an x509 certificate PEM carrying an RSA key.
func parseCertificate(field, text string) (*x509.Certificate, error) {
	block, err := decodePEM(field, text, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fieldErr(field, "cannot parse the PEM block as an X.509 certificate")
	}
	if _, err := rsaPublicKey(field, cert.PublicKey); err != nil {
		return nil, err
	}
	return cert, nil
}

// rsaPublicKey checks that key is an RSA public key of acceptable size.
func rsaPublicKey(field string, key any) (*rsa.PublicKey, error) {
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fieldErr(field, "not an RSA key (got %s)", keyKind(key))
	}
	if bits := pub.N.BitLen(); bits < minRSABits {
		return nil, fieldErr(field, "RSA key is %d bits, want at least %d", bits, minRSABits)
	}
	return pub, nil
}

// keyKind names the algorithm of a parsed key without revealing it.
func keyKind(key any) string {
	switch key.(type) {
	case *ecdsa.PrivateKey, *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PrivateKey, *ecdh.PublicKey:
		return "ECDH"
	default:
		return "unsupported key type"
	}
}

// quoteAll returns each string quoted.
func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// isDigits reports whether s is non-empty and all ASCII decimal digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isHex reports whether s is non-empty and all ASCII hexadecimal digits.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
