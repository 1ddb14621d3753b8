package secrets_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
)

func TestCredentialsRedaction(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	creds, err := secrets.Parse(mustJSON(t, fx.doc()))
	if err != nil {
		t.Fatalf("Parse(valid document): got error %v, want nil", err)
	}
	creds.Version = "v-test-1"
	value := *creds

	logJSON := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("test", args...)
		return buf.String()
	}
	logText := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("test", args...)
		return buf.String()
	}
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): got error %v, want nil", v, err)
		}
		return string(b)
	}

	tests := []struct {
		name   string
		output func() string
	}{
		{name: "%v value", output: func() string { return fmt.Sprintf("%v", value) }},
		{name: "%v pointer", output: func() string { return fmt.Sprintf("%v", creds) }},
		{name: "%+v value", output: func() string { return fmt.Sprintf("%+v", value) }},
		{name: "%+v pointer", output: func() string { return fmt.Sprintf("%+v", creds) }},
		{name: "%#v value", output: func() string { return fmt.Sprintf("%#v", value) }},
		{name: "%#v pointer", output: func() string { return fmt.Sprintf("%#v", creds) }},
		//lint:ignore S1025 the fmt verb itself is under test
		{name: "%s value", output: func() string { return fmt.Sprintf("%s", value) }},
		//lint:ignore S1025 the fmt verb itself is under test
		{name: "%s pointer", output: func() string { return fmt.Sprintf("%s", creds) }},
		{name: "%v inside a struct", output: func() string {
			return fmt.Sprintf("%+v", struct {
				C *secrets.Credentials
				V secrets.Credentials
			}{creds, value})
		}},
		{name: "%v in a wrapped error", output: func() string { return fmt.Errorf("ctx: %v", creds).Error() }},
		{name: "json value", output: func() string { return marshal(value) }},
		{name: "json pointer", output: func() string { return marshal(creds) }},
		{name: "json nested", output: func() string { return marshal(map[string]any{"c": creds}) }},
		{name: "slog JSON LogValue", output: func() string { return logJSON(slog.Any("credentials", creds.LogValue())) }},
		{name: "slog JSON pointer attr", output: func() string { return logJSON("credentials", creds) }},
		{name: "slog JSON value attr", output: func() string { return logJSON("credentials", value) }},
		{name: "slog text pointer attr", output: func() string { return logText("credentials", creds) }},
	}
	secretValues := fx.secretValues()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.output()
			if !strings.Contains(out, testMchID) {
				t.Errorf("%s: got %q, want it to contain mchid %q", tc.name, out, testMchID)
			}
			for _, want := range []string{"[REDACTED]", testSerial, testPubKeyID, testCertSerialHex, testAppID, string(secrets.ModeMixed), "v-test-1"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: got %q, want it to contain %q", tc.name, out, want)
				}
			}
			assertNoSecrets(t, tc.name, out, secretValues)
			if strings.Contains(out, "BEGIN") {
				t.Errorf("%s: got %q, want no PEM armor", tc.name, out)
			}
		})
	}
}

func TestCredentialsRedactionOmitsAbsentKeys(t *testing.T) {
	t.Parallel()
	c := secrets.Credentials{MchID: testMchID, Mode: secrets.ModePublicKey}
	tests := []struct {
		name string
		out  string
	}{
		{name: "String", out: c.String()},
		{name: "GoString", out: c.GoString()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.out, "[REDACTED]") {
				t.Errorf("%s of credentials without keys: got %q, want no [REDACTED] marker", tc.name, tc.out)
			}
			if !strings.Contains(tc.out, testMchID) {
				t.Errorf("%s of credentials without keys: got %q, want it to contain %q", tc.name, tc.out, testMchID)
			}
		})
	}
}

func TestCredentialsVerificationKeyNil(t *testing.T) {
	t.Parallel()
	var c *secrets.Credentials
	tests := []string{"", testPubKeyID, testCertSerialHex}
	for _, serial := range tests {
		t.Run(serial, func(t *testing.T) {
			if key, ok := c.VerificationKey(serial); ok || key != nil {
				t.Errorf("(*Credentials)(nil).VerificationKey(%q): got (%v, %v), want (nil, false)", serial, key != nil, ok)
			}
		})
	}
}
