package testkeys_test

import (
	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"testing"
)

func TestSecretParses(t *testing.T) {
	m, err := testkeys.NewMerchant("1900000001")
	if err != nil {
		t.Fatal(err)
	}
	p, err := testkeys.NewPlatform()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []testkeys.SecretOptions{{PublicKey: true}, {Certificates: true}, {PublicKey: true, Certificates: true}} {
		b, err := testkeys.SecretJSON(m, p, o)
		if err != nil {
			t.Fatal(err)
		}
		c, err := secrets.Parse(b)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if _, ok := c.VerificationKey(p.PublicKeyID); ok != o.PublicKey {
			t.Fatalf("pubkey lookup %v", ok)
		}
		if _, ok := c.VerificationKey(p.CertSerial); ok != o.Certificates {
			t.Fatalf("cert lookup %v", ok)
		}
		t.Log(c.Mode)
	}
}

func TestBundleRoundTrip(t *testing.T) {
	path := t.TempDir() + "/keys.json"
	m, p, err := testkeys.LoadOrCreateBundle(path, "1900000001")
	if err != nil {
		t.Fatal(err)
	}
	m2, p2, err := testkeys.LoadOrCreateBundle(path, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if m2.MchID != m.MchID || m2.CertSerial != m.CertSerial || !m2.Key.Equal(m.Key) || m2.APIv3Key != m.APIv3Key ||
		p2.PublicKeyID != p.PublicKeyID || !p2.Key.Equal(p.Key) || p2.CertSerial != p.CertSerial || !p2.CertKey.Equal(p.CertKey) {
		t.Fatal("bundle did not round-trip the same keys")
	}
}
