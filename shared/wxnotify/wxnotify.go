// Package wxnotify verifies and decrypts WeChat Pay notifications from the
// exact bytes received and a header lookup — never an *http.Request, so the
// body can't have been consumed or re-serialised before verification
// (pitfalls.md P1).
//
// Order of checks: signature headers (window, SIGNTEST probe, key by
// Wechatpay-Serial with one credentials refresh for an unknown serial,
// RSA-SHA256 over the raw body), then the JSON envelope, then the resource
// (AEAD_AES_256_GCM with the APIv3 key).
package wxnotify

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// Sentinels beyond wxsign's verification ones.
var (
	// ErrBody: the body is not a notification envelope.
	ErrBody = errors.New("wxnotify: body is not a notification envelope")
)

// Envelope is the outer, unencrypted notification. Parse leaves
// Resource.Ciphertext empty: it decrypts straight from the body bytes.
type Envelope struct {
	ID           string          `json:"id"`
	CreateTime   string          `json:"create_time"`
	EventType    string          `json:"event_type"`
	ResourceType string          `json:"resource_type"`
	Summary      string          `json:"summary"`
	Resource     wxsign.Resource `json:"resource"`
}

// Notification is a verified, decrypted notification.
type Notification struct {
	Envelope
	Serial    string          // key that verified it (public key id or certificate serial)
	Plaintext json.RawMessage // the decrypted resource, kept verbatim for audit
}

// Verifier checks notifications. Build one per container and reuse it: it
// keeps the AES-GCM cipher of the current APIv3 key.
type Verifier struct {
	Keys     wxsign.KeyLookup
	APIv3Key func(ctx context.Context) ([]byte, error)
	Now      func() time.Time // nil: time.Now

	aead atomic.Pointer[keyedAEAD]
}

type keyedAEAD struct {
	key  string
	aead cipher.AEAD
}

// cipherFor returns the AEAD of key, rebuilding it when the key rotates.
func (v *Verifier) cipherFor(key []byte) (cipher.AEAD, error) {
	if c := v.aead.Load(); c != nil && c.key == string(key) {
		return c.aead, nil
	}
	aead, err := wxsign.NewAEAD(key)
	if err != nil {
		return nil, err
	}
	v.aead.Store(&keyedAEAD{key: string(key), aead: aead})
	return aead, nil
}

// Parse verifies and decrypts one notification. Errors match the wxsign
// sentinels (ErrMalformed, ErrBadSignature, ErrSignTest, ErrStale,
// ErrUnknownSerial, ErrAlgorithm, ErrDecrypt) or ErrBody.
func (v *Verifier) Parse(ctx context.Context, header func(string) string, body []byte) (*Notification, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	h := wxsign.HeadersFrom(header)
	if err := h.Verify(ctx, v.Keys, now(), body); err != nil {
		return nil, err
	}
	env, ciphertext, err := parseEnvelope(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBody, err)
	}
	if env.ID == "" || env.EventType == "" || len(ciphertext) == 0 {
		return nil, fmt.Errorf("%w: id, event_type and resource.ciphertext are required", ErrBody)
	}
	key, err := v.APIv3Key(ctx)
	if err != nil {
		return nil, fmt.Errorf("wxnotify: APIv3 key: %w", err)
	}
	aead, err := v.cipherFor(key)
	if err != nil {
		return nil, err
	}
	r := env.Resource
	plain, err := wxsign.OpenResource(aead, r.Algorithm, r.Nonce, r.AssociatedData, ciphertext)
	if err != nil {
		return nil, err
	}
	return &Notification{Envelope: env, Serial: h.Serial, Plaintext: plain}, nil
}
