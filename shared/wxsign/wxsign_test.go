package wxsign_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

func TestVerifyRejections(t *testing.T) {
	key := testingKey(t, "platform_key.testing.pem")
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const serial = "PUB_KEY_ID_0114232134912410000000000000"
	keys := func(_ context.Context, s string) (*rsa.PublicKey, error) {
		if s != serial {
			return nil, wxsign.ErrUnknownSerial
		}
		return &key.PublicKey, nil
	}
	now := time.Unix(1795399200, 0)
	body := []byte(`{"id":"EV-1"}`)
	good, err := wxsign.SignResponse(key, serial, now.Unix(), "nonce123", body)
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Verify(context.Background(), keys, now, body); err != nil {
		t.Fatalf("valid headers rejected: %v", err)
	}
	wrongKey, _ := wxsign.SignResponse(other, serial, now.Unix(), "nonce123", body)
	mod := func(f func(h *wxsign.SignatureHeaders)) wxsign.SignatureHeaders { h := good; f(&h); return h }
	tests := []struct {
		name string
		h    wxsign.SignatureHeaders
		body []byte
		now  time.Time
		want error
	}{
		{"tampered body", good, []byte(`{"id":"EV-2"}`), now, wxsign.ErrBadSignature},
		{"wrong key", wrongKey, body, now, wxsign.ErrBadSignature},
		{"stale by 5 minutes", good, body, now.Add(5 * time.Minute), wxsign.ErrStale},
		{"future by 5 minutes", good, body, now.Add(-5 * time.Minute), wxsign.ErrStale},
		{"unknown serial", mod(func(h *wxsign.SignatureHeaders) { h.Serial = "PUB_KEY_ID_999" }), body, now, wxsign.ErrUnknownSerial},
		{"signtest probe", mod(func(h *wxsign.SignatureHeaders) { h.Signature = wxsign.SignTestPrefix + "Zm9v" }), body, now, wxsign.ErrSignTest},
		{"signature not base64", mod(func(h *wxsign.SignatureHeaders) { h.Signature = "%%%" }), body, now, wxsign.ErrMalformed},
		{"missing nonce", mod(func(h *wxsign.SignatureHeaders) { h.Nonce = "" }), body, now, wxsign.ErrMalformed},
		{"timestamp in ms", mod(func(h *wxsign.SignatureHeaders) { h.Timestamp = "1795399200000" }), body, now, wxsign.ErrStale},
		{"timestamp not a number", mod(func(h *wxsign.SignatureHeaders) { h.Timestamp = "yesterday" }), body, now, wxsign.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Verify(context.Background(), keys, tc.now, tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if !errors.Is(wxsign.ErrSignTest, wxsign.ErrBadSignature) {
		t.Fatal("a SIGNTEST probe must also be a bad signature")
	}
	within := now.Add(4*time.Minute + 59*time.Second)
	if err := good.Verify(context.Background(), keys, within, body); err != nil {
		t.Fatalf("4m59s old message rejected: %v", err)
	}
}

func TestAuthorizationRoundTrip(t *testing.T) {
	a := wxsign.Authorization{MchID: "1900000109", Nonce: "593BEC0C930BF1AFEB40B4A08C8FB242", Timestamp: 1795399200, Serial: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C", Signature: "c2ln"}
	h := a.String()
	if !strings.HasPrefix(h, `WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",timestamp="1795399200",serial_no="1DDE`) {
		t.Fatalf("header = %s", h)
	}
	got, err := wxsign.ParseAuthorization(h)
	if err != nil || got != a {
		t.Fatalf("ParseAuthorization = %+v, %v; want %+v", got, err, a)
	}
	reordered := `WECHATPAY2-SHA256-RSA2048 signature="c2ln",serial_no="S",timestamp="1",nonce_str="n",mchid="1"`
	if _, err := wxsign.ParseAuthorization(reordered); err != nil {
		t.Fatalf("parameter order should not matter: %v", err)
	}
	for _, bad := range []string{
		"", "Bearer x", `WECHATPAY2-SHA256-RSA2048 mchid="1"`,
		`WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str="n",timestamp="1",serial_no="S",signature="s"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="n",timestamp="1",serial_no="S",signature="s"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="x",serial_no="S",signature="s"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="1",serial_no="S",signature="s",extra="e"`,
	} {
		if _, err := wxsign.ParseAuthorization(bad); !errors.Is(err, wxsign.ErrMalformed) {
			t.Errorf("ParseAuthorization(%q) err = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestResourceRejections(t *testing.T) {
	key := []byte("TESTKEY0123456789abcdefghijklmno")
	r, err := wxsign.Seal(key, "abcdefghijkl", "transaction", "transaction", []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(r *wxsign.Resource, k *[]byte)
		want error
	}{
		{"wrong algorithm", func(r *wxsign.Resource, _ *[]byte) { r.Algorithm = "AEAD_SM4_GCM" }, wxsign.ErrAlgorithm},
		{"wrong key", func(_ *wxsign.Resource, k *[]byte) { *k = bytes.Repeat([]byte("k"), 32) }, wxsign.ErrDecrypt},
		{"short key", func(_ *wxsign.Resource, k *[]byte) { *k = []byte("short") }, wxsign.ErrDecrypt},
		{"wrong associated data", func(r *wxsign.Resource, _ *[]byte) { r.AssociatedData = "refund" }, wxsign.ErrDecrypt},
		{"bad nonce", func(r *wxsign.Resource, _ *[]byte) { r.Nonce = "short" }, wxsign.ErrDecrypt},
		{"ciphertext not base64", func(r *wxsign.Resource, _ *[]byte) { r.Ciphertext = "%%%" }, wxsign.ErrDecrypt},
		{"truncated tag", func(r *wxsign.Resource, _ *[]byte) { r.Ciphertext = r.Ciphertext[:8] }, wxsign.ErrDecrypt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr, k := r, append([]byte{}, key...)
			tc.mod(&rr, &k)
			if _, err := rr.Open(k); !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
		})
	}
	if got, err := r.Open(key); err != nil || string(got) != `{"a":1}` {
		t.Fatalf("round trip = %s, %v", got, err)
	}
}

func TestNonce(t *testing.T) {
	n, err := wxsign.Nonce(bytes.NewReader(bytes.Repeat([]byte{0, 61, 62}, 11)))
	if err != nil || len(n) != wxsign.NonceLength || !strings.HasPrefix(n, "0z0") {
		t.Fatalf("Nonce = %q, %v", n, err)
	}
	if _, err := wxsign.Nonce(bytes.NewReader([]byte{1})); err == nil {
		t.Fatal("a short random source must fail")
	}
}
