package bill_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill/billtest"
)

func TestDigestVerify(t *testing.T) {
	text := []byte(sampleAll)
	good := billtest.SHA1(text)
	tests := []struct {
		name            string
		hashType, value string
		drain           bool
		want            error
	}{
		{"match", "SHA1", good, true, nil},
		{"match, upper case hex and lower-case type", "sha1", strings.ToUpper(good), true, nil},
		{"mismatch", "SHA1", billtest.SHA1([]byte("other")), true, bill.ErrHashMismatch},
		{"empty hash_value", "SHA1", "", true, bill.ErrHashMismatch},
		{"unknown hash_type", "MD5", good, true, bill.ErrHashType},
		{"not drained", "SHA1", good, false, bill.ErrNotVerified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := bill.NewDigest(bytes.NewReader(text))
			if tc.drain {
				if _, err := io.Copy(io.Discard, d); err != nil {
					t.Fatal(err)
				}
			} else {
				_, _ = d.Read(make([]byte, 10))
			}
			if err := d.Verify(tc.hashType, tc.value); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify(%q, %q) = %v, want %v", tc.hashType, tc.value, err, tc.want)
			}
			if tc.drain && d.Bytes() != int64(len(text)) {
				t.Fatalf("Bytes = %d, want %d", d.Bytes(), len(text))
			}
		})
	}
}

func TestGunzipClassifiesDamage(t *testing.T) {
	gz := billtest.Gzip([]byte(sampleAll))
	flipped := append([]byte(nil), gz...)
	flipped[len(flipped)-6] ^= 0xff // inside the CRC-32 trailer
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"intact", gz, nil},
		{"truncated body", gz[:len(gz)/2], bill.ErrTruncated},
		{"truncated trailer", gz[:len(gz)-4], bill.ErrTruncated},
		{"only the header", gz[:10], bill.ErrTruncated},
		{"CRC mismatch", flipped, bill.ErrCorrupt},
		{"not gzip", []byte(sampleAll), bill.ErrCorrupt},
		{"two members", append(append([]byte(nil), gz...), billtest.Gzip([]byte("x"))...), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			r, err := bill.Gunzip(bytes.NewReader(tc.data))
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("gunzip = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOpenSniffsGzip(t *testing.T) {
	for name, data := range map[string][]byte{"plain": []byte(sampleAll), "gzip": billtest.Gzip([]byte(sampleAll))} {
		r, gz, err := bill.Open(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != sampleAll || gz != (name == "gzip") {
			t.Fatalf("%s: gzipped=%v err=%v, text equal %v", name, gz, err, string(got) == sampleAll)
		}
	}
}
