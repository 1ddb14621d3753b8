// Package wxsign is the WeChat Pay APIv3 protocol without transport: the
// canonical messages, the Authorization header, RSA-SHA256 signatures,
// signature-header verification with the ±5 minute window and key choice by
// Wechatpay-Serial, and AEAD_AES_256_GCM resources.
//
// The cryptography is wechatpay-go's (utils.SignSHA256WithRSA, the
// SHA256WithRSA public-key verifier, utils.DecryptAES256GCM); this package adds
// what a Lambda and a simulator need around it: inputs as bytes and header
// lookups instead of *http.Request, an injectable clock, and errors that can
// be told apart with errors.Is.
//
// Protocol rules implemented here (wechatpay-apiv3.md 1.2-1.6; WeChat Pay
// "签名生成" / "签名验证" / "证书和回调报文解密" guides):
//   - request message: METHOD\nURI\ntimestamp\nnonce\nbody\n (each line ends in \n,
//     the body is the exact bytes sent, empty for GET);
//   - response/notification message: timestamp\nnonce\nbody\n;
//   - signature: RSA PKCS#1 v1.5 over SHA-256, standard base64;
//   - freshness: |now - Wechatpay-Timestamp| < 5 minutes;
//   - Wechatpay-Signature values starting with WECHATPAY/SIGNTEST/ are probes
//     that must fail verification (the official guidance: answer non-2xx);
//   - resources: AES-256-GCM with the 32-byte APIv3 key, 12-byte nonce as
//     text, associated_data as AAD, base64(ciphertext || 16-byte tag).
package wxsign

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Header names and protocol constants.
const (
	HeaderAuthorization = "Authorization"
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderSerial        = "Wechatpay-Serial"
	HeaderSignatureType = "Wechatpay-Signature-Type"
	HeaderRequestID     = "Request-ID"

	Scheme            = "WECHATPAY2-SHA256-RSA2048"
	AlgorithmAESGCM   = "AEAD_AES_256_GCM"
	SignTestPrefix    = "WECHATPAY/SIGNTEST/"
	PublicKeyIDPrefix = "PUB_KEY_ID_"
	// MaxSkew is the freshness window of signed responses and notifications.
	MaxSkew = 5 * time.Minute
	// NonceLength is the length of generated nonces, as the official SDKs use.
	NonceLength = 32
)

// Sentinels. Every verification failure matches exactly one of them (a
// SIGNTEST probe also matches ErrBadSignature).
var (
	ErrMalformed     = errors.New("wxsign: malformed signature headers")
	ErrBadSignature  = errors.New("wxsign: signature does not verify")
	ErrStale         = errors.New("wxsign: timestamp outside the 5-minute window")
	ErrUnknownSerial = errors.New("wxsign: unknown key serial")
	ErrSignTest      = signTestError{}
	ErrAlgorithm     = errors.New("wxsign: unsupported resource algorithm")
	ErrDecrypt       = errors.New("wxsign: resource does not decrypt")
)

type signTestError struct{}

func (signTestError) Error() string { return "wxsign: WECHATPAY/SIGNTEST probe signature" }

// Is makes a probe also an ErrBadSignature: it must fail like one.
func (signTestError) Is(target error) bool { return target == ErrBadSignature }

// RequestMessage is the string a merchant signs for a request.
func RequestMessage(method, requestURI string, timestamp int64, nonce string, body []byte) string {
	var b strings.Builder
	b.Grow(len(method) + len(requestURI) + len(nonce) + len(body) + 24)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(requestURI)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(timestamp, 10))
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte('\n')
	return b.String()
}

// ResponseMessage is the string WeChat Pay signs for a response or a
// notification; timestamp is the header value exactly as received.
func ResponseMessage(timestamp, nonce string, body []byte) string {
	var b strings.Builder
	b.Grow(len(timestamp) + len(nonce) + len(body) + 3)
	b.WriteString(timestamp)
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte('\n')
	return b.String()
}

// Sign signs message with key (RSA PKCS#1 v1.5, SHA-256) and returns base64.
func Sign(key *rsa.PrivateKey, message string) (string, error) {
	if key == nil {
		return "", errors.New("wxsign: sign: no private key")
	}
	sig, err := utils.SignSHA256WithRSA(message, key)
	if err != nil {
		return "", fmt.Errorf("wxsign: sign: %w", err)
	}
	return sig, nil
}

// VerifySignature checks a base64 signature of message with pub.
func VerifySignature(pub *rsa.PublicKey, message, signature string) error {
	sum := sha256.Sum256([]byte(message))
	return verifyDigest(pub, sum[:], signature)
}

// verifyDigest is the RSA PKCS#1 v1.5 SHA-256 check that wechatpay-go's
// SHA256WithRSA verifiers perform (a test cross-checks the two agree); it is
// done here over a streamed digest so a notification body is hashed in place
// instead of being copied into a message string first.
func verifyDigest(pub *rsa.PublicKey, digest []byte, signature string) error {
	if pub == nil {
		return ErrUnknownSerial
	}
	if strings.HasPrefix(signature, SignTestPrefix) {
		return ErrSignTest
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: signature is not base64", ErrMalformed)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig); err != nil {
		return ErrBadSignature
	}
	return nil
}

// KeyLookup returns the WeChat Pay verification key named by a
// Wechatpay-Serial value (a PUB_KEY_ID_ public key id or a platform
// certificate serial). Unknown serials return an error matching ErrUnknownSerial.
type KeyLookup func(ctx context.Context, serial string) (*rsa.PublicKey, error)

// SignatureHeaders are the four headers WeChat Pay signs with.
type SignatureHeaders struct {
	Timestamp string
	Nonce     string
	Signature string
	Serial    string
}

// HeadersFrom reads the signature headers through get, which must match
// names case-insensitively (API Gateway lower-cases them).
func HeadersFrom(get func(name string) string) SignatureHeaders {
	return SignatureHeaders{
		Timestamp: get(HeaderTimestamp),
		Nonce:     get(HeaderNonce),
		Signature: get(HeaderSignature),
		Serial:    get(HeaderSerial),
	}
}

// Verify checks the headers against the exact body bytes: presence, the
// SIGNTEST probe, the 5-minute window around now, the key named by Serial,
// then the signature.
func (h SignatureHeaders) Verify(ctx context.Context, keys KeyLookup, now time.Time, body []byte) error {
	if h.Timestamp == "" || h.Nonce == "" || h.Signature == "" || h.Serial == "" {
		return fmt.Errorf("%w: missing Wechatpay-Timestamp, -Nonce, -Signature or -Serial", ErrMalformed)
	}
	if strings.HasPrefix(h.Signature, SignTestPrefix) {
		return ErrSignTest
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: Wechatpay-Timestamp is not unix seconds", ErrMalformed)
	}
	if err := Fresh(now, ts); err != nil {
		return err
	}
	pub, err := keys(ctx, h.Serial)
	if err != nil {
		if errors.Is(err, ErrUnknownSerial) {
			return fmt.Errorf("%w: %q", ErrUnknownSerial, h.Serial)
		}
		return fmt.Errorf("wxsign: key for serial %q: %w", h.Serial, err)
	}
	d := sha256.New()
	d.Write([]byte(h.Timestamp))
	d.Write(newline)
	d.Write([]byte(h.Nonce))
	d.Write(newline)
	d.Write(body)
	d.Write(newline)
	return verifyDigest(pub, d.Sum(nil), h.Signature)
}

var newline = []byte{'\n'}

// Fresh returns ErrStale when the unix timestamp ts is MaxSkew or more away
// from now, in either direction.
func Fresh(now time.Time, ts int64) error {
	skew := now.Sub(time.Unix(ts, 0))
	if skew >= MaxSkew || skew <= -MaxSkew {
		return fmt.Errorf("%w: %s away from the clock", ErrStale, skew.Round(time.Second))
	}
	return nil
}

// Verify checks a request's Authorization (server side): the timestamp
// window, then the signature over METHOD\nURI\nts\nnonce\nbody\n with the
// merchant's API certificate key.
func (a Authorization) Verify(pub *rsa.PublicKey, method, requestURI string, body []byte, now time.Time) error {
	if err := Fresh(now, a.Timestamp); err != nil {
		return err
	}
	return VerifySignature(pub, RequestMessage(method, requestURI, a.Timestamp, a.Nonce, body), a.Signature)
}

// SignResponse produces the signature headers for body (simulator side and
// tests): serial is the public key id or platform certificate serial.
func SignResponse(key *rsa.PrivateKey, serial string, timestamp int64, nonce string, body []byte) (SignatureHeaders, error) {
	ts := strconv.FormatInt(timestamp, 10)
	sig, err := Sign(key, ResponseMessage(ts, nonce, body))
	if err != nil {
		return SignatureHeaders{}, err
	}
	return SignatureHeaders{Timestamp: ts, Nonce: nonce, Signature: sig, Serial: serial}, nil
}

// Authorization is the parsed request Authorization header.
type Authorization struct {
	MchID     string
	Nonce     string
	Timestamp int64
	Serial    string // merchant API certificate serial
	Signature string
}

// String renders the header value in the order the official SDK uses.
func (a Authorization) String() string {
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",timestamp="%d",serial_no="%s",signature="%s"`,
		Scheme, a.MchID, a.Nonce, a.Timestamp, a.Serial, a.Signature)
}

// ParseAuthorization parses an Authorization header value. Parameter order
// is not significant (whether WeChat Pay cares is unconfirmed; accepting any
// order is the safe reading for a server).
func ParseAuthorization(h string) (Authorization, error) {
	scheme, params, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || scheme != Scheme {
		return Authorization{}, fmt.Errorf("%w: authorization scheme must be %s", ErrMalformed, Scheme)
	}
	var a Authorization
	seen := map[string]bool{}
	for _, part := range strings.Split(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return Authorization{}, fmt.Errorf("%w: authorization parameter %q", ErrMalformed, k)
		}
		v = v[1 : len(v)-1]
		if seen[k] {
			return Authorization{}, fmt.Errorf("%w: duplicate authorization parameter %q", ErrMalformed, k)
		}
		seen[k] = true
		switch k {
		case "mchid":
			a.MchID = v
		case "nonce_str":
			a.Nonce = v
		case "timestamp":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Authorization{}, fmt.Errorf("%w: timestamp is not unix seconds", ErrMalformed)
			}
			a.Timestamp = ts
		case "serial_no":
			a.Serial = v
		case "signature":
			a.Signature = v
		default:
			return Authorization{}, fmt.Errorf("%w: unknown authorization parameter %q", ErrMalformed, k)
		}
	}
	if a.MchID == "" || a.Nonce == "" || a.Timestamp == 0 || a.Serial == "" || a.Signature == "" {
		return Authorization{}, fmt.Errorf("%w: authorization needs mchid, nonce_str, timestamp, serial_no and signature", ErrMalformed)
	}
	return a, nil
}

// Nonce returns NonceLength characters of [0-9A-Za-z] read from r
// (crypto/rand.Reader in production, a fixed reader in tests).
func Nonce(r io.Reader) (string, error) { return NonceN(r, NonceLength) }

// NonceN returns n characters of [0-9A-Za-z] read from r (12 for resource
// nonces). Byte % 62 is slightly biased; nonces need uniqueness, not
// uniformity, and 32 characters carry ~190 bits either way.
func NonceN(r io.Reader, n int) (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", fmt.Errorf("wxsign: nonce: %w", err)
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf), nil
}

// Resource is an encrypted notification/certificate resource.
type Resource struct {
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
	OriginalType   string `json:"original_type,omitempty"`
}

// NewAEAD prepares AES-256-GCM for an APIv3 key (reusable, safe for
// concurrent use).
func NewAEAD(apiV3Key []byte) (cipher.AEAD, error) {
	if len(apiV3Key) != 32 {
		return nil, fmt.Errorf("%w: the APIv3 key must be 32 bytes", ErrDecrypt)
	}
	block, err := aes.NewCipher(apiV3Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	return gcm, nil
}

// Open decrypts a resource with the APIv3 key. It is the []byte form of
// wechatpay-go's utils.DecryptAES256GCM (no string round trips on the
// notification hot path); the known-answer test checks it against Node's
// crypto and the SDK.
func (r Resource) Open(apiV3Key []byte) ([]byte, error) {
	aead, err := NewAEAD(apiV3Key)
	if err != nil {
		return nil, err
	}
	return OpenResource(aead, r.Algorithm, r.Nonce, r.AssociatedData, []byte(r.Ciphertext))
}

// OpenResource decrypts base64(ciphertext || tag) with a prepared AEAD. The
// ciphertext is decoded from bytes so a caller holding the raw notification
// body needs no string copy of it.
func OpenResource(aead cipher.AEAD, algorithm, nonce, associatedData string, ciphertextB64 []byte) ([]byte, error) {
	if algorithm != AlgorithmAESGCM {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, algorithm)
	}
	if len(nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("%w: nonce must be 12 bytes", ErrDecrypt)
	}
	ct := make([]byte, base64.StdEncoding.DecodedLen(len(ciphertextB64)))
	n, err := base64.StdEncoding.Decode(ct, ciphertextB64)
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext is not base64", ErrDecrypt)
	}
	plain, err := aead.Open(ct[:0], []byte(nonce), ct[:n], []byte(associatedData))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// Seal encrypts plaintext into a resource (simulator side and tests). The
// official SDK has no encrypt helper; this is the stdlib inverse of its
// DecryptAES256GCM.
func Seal(apiV3Key []byte, nonce, associatedData, originalType string, plaintext []byte) (Resource, error) {
	if len(nonce) != 12 {
		return Resource{}, errors.New("wxsign: seal: nonce must be 12 bytes")
	}
	if len(apiV3Key) != 32 {
		return Resource{}, errors.New("wxsign: seal: the APIv3 key must be 32 bytes")
	}
	block, err := aes.NewCipher(apiV3Key)
	if err != nil {
		return Resource{}, fmt.Errorf("wxsign: seal: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return Resource{}, fmt.Errorf("wxsign: seal: %w", err)
	}
	ct := gcm.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return Resource{Algorithm: AlgorithmAESGCM, Ciphertext: base64.StdEncoding.EncodeToString(ct),
		AssociatedData: associatedData, Nonce: nonce, OriginalType: originalType}, nil
}
