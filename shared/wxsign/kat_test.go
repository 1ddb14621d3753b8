package wxsign_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestingKey loads a TEST key stored with the "TESTING KEY" label.
func testingKey(tb testing.TB, name string) *rsa.PrivateKey {
	tb.Helper()
	text := strings.ReplaceAll(string(readFile(tb, name)), "TESTING KEY", "PRIVATE KEY")
	blk, _ := pem.Decode([]byte(text))
	if blk == nil {
		tb.Fatalf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func TestKnownAnswerRequestSignature(t *testing.T) {
	key := testingKey(t, "merchant_key.testing.pem")
	body := readFile(t, "request_body.json")
	msg := wxsign.RequestMessage("POST", "/v3/pay/transactions/native", 1795399200, "593BEC0C930BF1AFEB40B4A08C8FB242", body)
	if want := string(readFile(t, "request_message.txt")); msg != want {
		t.Fatalf("request message differs from the openssl input:\n got %q\nwant %q", msg, want)
	}
	sig, err := wxsign.Sign(key, msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(readFile(t, "request_signature.b64")); sig != want {
		t.Fatalf("signature differs from openssl's:\n got %s\nwant %s", sig, want)
	}
}

func TestKnownAnswerResponseSignature(t *testing.T) {
	pub := &testingKey(t, "platform_key.testing.pem").PublicKey
	h := wxsign.SignatureHeaders{Timestamp: "1795399201", Nonce: "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
		Signature: string(readFile(t, "response_signature.b64")), Serial: "PUB_KEY_ID_0114232134912410000000000000"}
	body := readFile(t, "response_body.json")
	keys := func(_ context.Context, serial string) (*rsa.PublicKey, error) {
		if serial != h.Serial {
			return nil, wxsign.ErrUnknownSerial
		}
		return pub, nil
	}
	now := time.Unix(1795399201, 0).Add(2 * time.Minute)
	if err := h.Verify(context.Background(), keys, now, body); err != nil {
		t.Fatalf("openssl-signed response rejected: %v", err)
	}
	if msg := wxsign.ResponseMessage(h.Timestamp, h.Nonce, body); msg != string(readFile(t, "response_message.txt")) {
		t.Fatalf("response message differs from the openssl input: %q", msg)
	}
	tampered := append([]byte{}, body...)
	tampered[3] ^= 1
	if err := h.Verify(context.Background(), keys, now, tampered); !errors.Is(err, wxsign.ErrBadSignature) {
		t.Fatalf("tampered body: err = %v, want ErrBadSignature", err)
	}
}

func TestKnownAnswerResourceDecryption(t *testing.T) {
	key := readFile(t, "apiv3_key.testing.txt")
	plain := readFile(t, "resource_plaintext.json")
	ct := strings.TrimSpace(string(readFile(t, "resource_ciphertext.b64")))
	r := wxsign.Resource{Algorithm: wxsign.AlgorithmAESGCM, Ciphertext: ct, AssociatedData: "transaction", Nonce: "fdasflkja484", OriginalType: "transaction"}
	got, err := r.Open(key)
	if err != nil {
		t.Fatalf("Node-sealed resource does not open: %v", err)
	}
	if string(got) != string(plain) {
		t.Fatalf("plaintext = %s, want %s", got, plain)
	}
	sealed, err := wxsign.Seal(key, "fdasflkja484", "transaction", "transaction", plain)
	if err != nil {
		t.Fatal(err)
	}
	if sealed.Ciphertext != ct {
		t.Fatalf("Seal does not reproduce Node's ciphertext:\n got %s\nwant %s", sealed.Ciphertext, ct)
	}
}

// TestAgreesWithWechatpayGo cross-checks our verifier and decryptor with
// wechatpay-go's on the known-answer vectors and on tampered inputs.
func TestAgreesWithWechatpayGo(t *testing.T) {
	pub := &testingKey(t, "platform_key.testing.pem").PublicKey
	msg := string(readFile(t, "response_message.txt"))
	sig := string(readFile(t, "response_signature.b64"))
	sdk := verifiers.NewSHA256WithRSAPubkeyVerifier("PUB_KEY_ID_1", *pub)
	for name, m := range map[string]string{"original": msg, "tampered": msg[:10] + "X" + msg[11:]} {
		ours := wxsign.VerifySignature(pub, m, sig) == nil
		theirs := sdk.Verify(context.Background(), "PUB_KEY_ID_1", m, sig) == nil
		if ours != theirs || (name == "original") != ours {
			t.Fatalf("%s: ours=%v wechatpay-go=%v", name, ours, theirs)
		}
	}
	key := string(readFile(t, "apiv3_key.testing.txt"))
	ct := strings.TrimSpace(string(readFile(t, "resource_ciphertext.b64")))
	theirs, err := utils.DecryptAES256GCM(key, "transaction", "fdasflkja484", ct)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := wxsign.Resource{Algorithm: wxsign.AlgorithmAESGCM, Ciphertext: ct, AssociatedData: "transaction", Nonce: "fdasflkja484"}.Open([]byte(key))
	if err != nil || string(ours) != theirs {
		t.Fatalf("decryption disagrees with wechatpay-go: %v", err)
	}
}
