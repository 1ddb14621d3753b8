package secrets_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
)

func TestParseValid(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)

	tests := []struct {
		name       string
		mutate     func(m map[string]any)
		wantMode   secrets.Mode
		wantPubKey bool
		wantCert   bool
		wantAPIv2  bool
	}{
		{
			name:     "all fields (mixed)",
			mutate:   func(m map[string]any) {},
			wantMode: secrets.ModeMixed, wantPubKey: true, wantCert: true, wantAPIv2: true,
		},
		{
			name:     "public key only",
			mutate:   func(m map[string]any) { delete(m, "platform_certificates") },
			wantMode: secrets.ModePublicKey, wantPubKey: true, wantAPIv2: true,
		},
		{
			name:     "public key with empty certificate list",
			mutate:   func(m map[string]any) { m["platform_certificates"] = []any{} },
			wantMode: secrets.ModePublicKey, wantPubKey: true, wantAPIv2: true,
		},
		{
			name: "certificates only",
			mutate: func(m map[string]any) {
				delete(m, "wechatpay_public_key_id")
				delete(m, "wechatpay_public_key")
			},
			wantMode: secrets.ModeCertificate, wantCert: true, wantAPIv2: true,
		},
		{
			name:     "PKCS#1 private key",
			mutate:   func(m map[string]any) { m["merchant_private_key"] = fx.merchantPKCS1 },
			wantMode: secrets.ModeMixed, wantPubKey: true, wantCert: true, wantAPIv2: true,
		},
		{
			name: "optional fields absent or null",
			mutate: func(m map[string]any) {
				delete(m, "apiv2_key")
				m["payscore_service_id"] = nil
			},
			wantMode: secrets.ModeMixed, wantPubKey: true, wantCert: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := fx.doc()
			tc.mutate(m)
			c, err := secrets.Parse(mustJSON(t, m))
			if err != nil {
				t.Fatalf("Parse(%s): got error %v, want nil", tc.name, err)
			}
			if c.MchID != testMchID {
				t.Errorf("Parse(%s).MchID: got %q, want %q", tc.name, c.MchID, testMchID)
			}
			if c.MerchantCertSerial != testSerial {
				t.Errorf("Parse(%s).MerchantCertSerial: got %q, want %q", tc.name, c.MerchantCertSerial, testSerial)
			}
			if c.MerchantPrivateKey == nil || !c.MerchantPrivateKey.Equal(fx.merchantKey) {
				t.Errorf("Parse(%s).MerchantPrivateKey: got a different key, want the fixture merchant key", tc.name)
			}
			if string(c.APIv3Key) != testAPIv3Key {
				t.Errorf("Parse(%s).APIv3Key: got %d bytes that differ from the input, want the input key", tc.name, len(c.APIv3Key))
			}
			if got := string(c.APIv2Key) == testAPIv2Key; got != tc.wantAPIv2 {
				t.Errorf("Parse(%s).APIv2Key equals input: got %v, want %v", tc.name, got, tc.wantAPIv2)
			}
			if !tc.wantAPIv2 && c.APIv2Key != nil {
				t.Errorf("Parse(%s).APIv2Key: got %d bytes, want nil", tc.name, len(c.APIv2Key))
			}
			if want := []string{testAppID, "wx1234567890abcdef"}; !slices.Equal(c.AppIDs, want) {
				t.Errorf("Parse(%s).AppIDs: got %v, want %v", tc.name, c.AppIDs, want)
			}
			if c.Mode != tc.wantMode {
				t.Errorf("Parse(%s).Mode: got %q, want %q", tc.name, c.Mode, tc.wantMode)
			}
			if c.Version != "" {
				t.Errorf("Parse(%s).Version: got %q, want empty", tc.name, c.Version)
			}

			key, ok := c.VerificationKey(testPubKeyID)
			if ok != tc.wantPubKey || (ok && !key.Equal(&fx.publicKey.PublicKey)) {
				t.Errorf("Parse(%s).VerificationKey(%q): got ok=%v (key match %v), want ok=%v with the fixture public key",
					tc.name, testPubKeyID, ok, ok && key.Equal(&fx.publicKey.PublicKey), tc.wantPubKey)
			}
			if _, ok := c.PlatformCerts[testCertSerialHex]; ok != tc.wantCert {
				t.Errorf("Parse(%s).PlatformCerts[%q]: got present=%v, want %v", tc.name, testCertSerialHex, ok, tc.wantCert)
			}
			for _, serial := range []string{testCertSerialHex, strings.ToLower(testCertSerialHex)} {
				key, ok := c.VerificationKey(serial)
				if ok != tc.wantCert || (ok && !key.Equal(&fx.certKey.PublicKey)) {
					t.Errorf("Parse(%s).VerificationKey(%q): got ok=%v, want ok=%v with the certificate key", tc.name, serial, ok, tc.wantCert)
				}
			}
			if _, ok := c.VerificationKey("PUB_KEY_ID_OTHER"); ok {
				t.Errorf("Parse(%s).VerificationKey(%q): got ok=true, want false", tc.name, "PUB_KEY_ID_OTHER")
			}
			if _, ok := c.VerificationKey(""); ok {
				t.Errorf("Parse(%s).VerificationKey(\"\"): got ok=true, want false", tc.name)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("ecdsa.GenerateKey(P256): got error %v, want nil", err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatalf("x509.MarshalECPrivateKey: got error %v, want nil", err)
	}
	ecPKCS8 := pkcs8PEM(t, ecKey)
	ecSEC1PEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecSEC1}))
	smallKey := newRSAKey(t, 1024)
	smallPEM := pkcs8PEM(t, smallKey)
	garbageDER := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage-der-bytes-SECRETSECRET")}))
	validJSON := mustJSON(t, fx.doc())

	set := func(field string, v any) func(m map[string]any) {
		return func(m map[string]any) { m[field] = v }
	}
	del := func(fields ...string) func(m map[string]any) {
		return func(m map[string]any) {
			for _, f := range fields {
				delete(m, f)
			}
		}
	}

	tests := []struct {
		name       string
		raw        []byte // used instead of mutate when set
		mutate     func(m map[string]any)
		wantField  string
		wantReason string // substring of the reason
	}{
		{name: "malformed JSON", raw: validJSON[:len(validJSON)/2], wantField: "(document)", wantReason: "malformed JSON"},
		{name: "trailing data", raw: append(bytes.Clone(validJSON), []byte(` {"apiv3_key":"`+testAPIv3Key+`"}`)...), wantField: "(document)", wantReason: "malformed JSON"},
		{name: "empty input", raw: []byte{}, wantField: "(document)", wantReason: "malformed JSON"},
		{name: "not an object", raw: []byte(`["` + testAPIv3Key + `"]`), wantField: "(document)", wantReason: "JSON object"},
		{name: "null document", raw: []byte(`null`), wantField: "(document)", wantReason: "JSON object"},
		{name: "unknown field", mutate: set("merchant_key", testAPIv3Key), wantField: "merchant_key", wantReason: "unknown field"},
		{name: "field name case differs", mutate: func(m map[string]any) { m["MchID"] = m["mchid"]; delete(m, "mchid") }, wantField: "MchID", wantReason: "unknown field"},
		{name: "wrong JSON type", mutate: set("mchid", 1900000001), wantField: "mchid", wantReason: "JSON string"},
		{name: "missing mchid", mutate: del("mchid"), wantField: "mchid", wantReason: "required"},
		{name: "empty mchid", mutate: set("mchid", ""), wantField: "mchid", wantReason: "required"},
		{name: "missing merchant_cert_serial", mutate: del("merchant_cert_serial"), wantField: "merchant_cert_serial", wantReason: "required"},
		{name: "missing merchant_private_key", mutate: del("merchant_private_key"), wantField: "merchant_private_key", wantReason: "required"},
		{name: "missing apiv3_key", mutate: del("apiv3_key"), wantField: "apiv3_key", wantReason: "required"},
		{name: "missing appids", mutate: del("appids"), wantField: "appids", wantReason: "required"},
		{name: "empty appids", mutate: set("appids", []any{}), wantField: "appids", wantReason: "required"},
		{name: "empty appid element", mutate: set("appids", []any{testAppID, ""}), wantField: "appids[1]", wantReason: "empty"},
		{name: "bad mchid", mutate: set("mchid", "19000abc01"), wantField: "mchid", wantReason: "digits"},
		{name: "bad serial", mutate: set("merchant_cert_serial", "5157-NOT-HEX"), wantField: "merchant_cert_serial", wantReason: "hexadecimal"},
		{name: "apiv3 key of 31 bytes", mutate: set("apiv3_key", testAPIv3Key[:31]), wantField: "apiv3_key", wantReason: "exactly 32 bytes, got 31"},
		{name: "apiv2 key of 33 bytes", mutate: set("apiv2_key", testAPIv2Key+"X"), wantField: "apiv2_key", wantReason: "exactly 32 bytes"},
		{name: "bad PEM", mutate: set("merchant_private_key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC-not-pem"), wantField: "merchant_private_key", wantReason: "not a PEM block"},
		{name: "PEM with literal backslash-n", mutate: set("merchant_private_key", strings.ReplaceAll(fx.merchantPEM, "\n", `\n`)), wantField: "merchant_private_key", wantReason: "backslash-n"},
		{name: "PEM with trailing data", mutate: set("merchant_private_key", fx.merchantPEM+testAPIv3Key), wantField: "merchant_private_key", wantReason: "after the PEM block"},
		{name: "PEM of a non-RSA (ECDSA PKCS#8) key", mutate: set("merchant_private_key", ecPKCS8), wantField: "merchant_private_key", wantReason: "not an RSA key (got ECDSA)"},
		{name: "PEM of an ECDSA SEC1 key", mutate: set("merchant_private_key", ecSEC1PEM), wantField: "merchant_private_key", wantReason: "not an RSA key"},
		{name: "1024-bit RSA key", mutate: set("merchant_private_key", smallPEM), wantField: "merchant_private_key", wantReason: "1024 bits"},
		{name: "undecodable private key DER", mutate: set("merchant_private_key", garbageDER), wantField: "merchant_private_key", wantReason: "PKCS#8 or PKCS#1"},
		{name: "certificate as private key", mutate: set("merchant_private_key", fx.certPEM), wantField: "merchant_private_key", wantReason: "PEM block type"},
		{name: "public key id with wrong prefix", mutate: set("wechatpay_public_key_id", "PUB_ID_0114232134912410000000000000"), wantField: "wechatpay_public_key_id", wantReason: "PUB_KEY_ID_"},
		{name: "public key id without key", mutate: del("wechatpay_public_key"), wantField: "wechatpay_public_key", wantReason: "required when wechatpay_public_key_id"},
		{name: "public key without id", mutate: del("wechatpay_public_key_id"), wantField: "wechatpay_public_key_id", wantReason: "required when wechatpay_public_key"},
		{name: "certificate as public key", mutate: set("wechatpay_public_key", fx.certPEM), wantField: "wechatpay_public_key", wantReason: "PEM block type"},
		{name: "ECDSA public key", mutate: set("wechatpay_public_key", pkixPEM(t, &ecKey.PublicKey)), wantField: "wechatpay_public_key", wantReason: "not an RSA key"},
		{name: "bad platform cert at index 1", mutate: set("platform_certificates", []any{fx.certPEM, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}), wantField: "platform_certificates[1]", wantReason: "X.509"},
		{name: "duplicate platform cert", mutate: set("platform_certificates", []any{fx.certPEM, fx.certPEM}), wantField: "platform_certificates[1]", wantReason: "duplicate"},
		{name: "platform certificates not a list", mutate: set("platform_certificates", fx.certPEM), wantField: "platform_certificates", wantReason: "array"},
		{name: "no verification key", mutate: del("wechatpay_public_key_id", "wechatpay_public_key", "platform_certificates"), wantField: "wechatpay_public_key", wantReason: "public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := tc.raw
			var m map[string]any
			if input == nil {
				m = fx.doc()
				tc.mutate(m)
				input = mustJSON(t, m)
			}
			c, err := secrets.Parse(input)
			if err == nil {
				t.Fatalf("Parse(%s): got %v, nil error; want error for field %q", tc.name, c, tc.wantField)
			}
			if !errors.Is(err, secrets.ErrInvalid) {
				t.Errorf("Parse(%s): got error %v, want errors.Is(err, ErrInvalid)", tc.name, err)
			}
			var fe *secrets.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%s): got error %T %v, want *FieldError", tc.name, err, err)
			}
			if fe.Field != tc.wantField {
				t.Errorf("Parse(%s): got field %q (%v), want %q", tc.name, fe.Field, err, tc.wantField)
			}
			if !strings.Contains(fe.Reason, tc.wantReason) {
				t.Errorf("Parse(%s): got reason %q, want it to contain %q", tc.name, fe.Reason, tc.wantReason)
			}
			if want := `secrets: field "` + fe.Field + `": ` + fe.Reason; err.Error() != want {
				t.Errorf("Parse(%s).Error(): got %q, want %q", tc.name, err.Error(), want)
			}
			leaks := append(fx.secretValues(), docSecrets(m)...)
			leaks = append(leaks, pemBodyLines(smallPEM)...)
			leaks = append(leaks, pemBodyLines(ecPKCS8)...)
			leaks = append(leaks, pemBodyLines(ecSEC1PEM)...)
			leaks = append(leaks, "garbage-der-bytes", "not-pem")
			assertNoSecrets(t, "Parse("+tc.name+") error", err.Error(), leaks)
		})
	}
}

// docSecrets returns the sensitive values of a (possibly mutated) document.
func docSecrets(m map[string]any) []string {
	var out []string
	for _, field := range []string{"apiv3_key", "apiv2_key", "merchant_private_key"} {
		s, ok := m[field].(string)
		if !ok || s == "" {
			continue
		}
		out = append(out, s)
		out = append(out, pemBodyLines(strings.ReplaceAll(s, `\n`, "\n"))...)
	}
	return out
}
