package bill

import (
	"errors"
	"strings"
	"testing"
)

// amountSeeds cover the fast path's edges: signs, decimals up to and past
// the scale, the longest inputs it takes and the first it leaves to the
// general loop.
var amountSeeds = []string{
	"0", "0.00", "0.5", "12.34", "-0.01", "-12.34", "19.90", "0.00600", "-0.00300", "100",
	"", "-", ".", ".5", "1.", "-.5", "1.2.3", "1,000.00", "1e3", " 1.00", "+1.00", "--1", "1.0a", "1.234",
	"9999999999999999", "99999999999999.99", "9999999999999.999", "999999999999999999", "-9999999999999999",
	"9999999999999.99999", "92233720368547758.07", "92233720368547758.08", "0000000000000000000000001",
	strings.Repeat("9", 19), "１.00",
}

// TestParseDecimalFastAgrees: the fast path and the general loop agree on
// every seed, at both scales, value and classification.
func TestParseDecimalFastAgrees(t *testing.T) {
	for _, s := range amountSeeds {
		for _, scale := range []int{2, 5} {
			checkDecimalPaths(t, []byte(s), scale)
		}
	}
}

// FuzzParseDecimal: the same on arbitrary input.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range amountSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecimalPaths(t, b, 2)
		checkDecimalPaths(t, b, 5)
	})
}

func checkDecimalPaths(t *testing.T, b []byte, scale int) {
	t.Helper()
	want, wantErr := parseDecimalSlow(b, scale)
	got, err := parseDecimal(b, scale)
	if got != want || (err == nil) != (wantErr == nil) || (err != nil && !errors.Is(err, ErrAmount)) {
		t.Fatalf("parseDecimal(%q, %d) = %d, %v; the general loop says %d, %v", b, scale, got, err, want, wantErr)
	}
	if len(b)+scale <= fastDecimalDigits {
		v, ok := parseShortDecimal(b, scale)
		if ok != (wantErr == nil) || (ok && v != want) {
			t.Fatalf("parseShortDecimal(%q, %d) = %d, %v; the general loop says %d, %v", b, scale, v, ok, want, wantErr)
		}
	}
}

// TestDayCacheAgrees: times read through the date cache equal ParseTime's,
// on a run of times that share dates, change them and break them.
func TestDayCacheAgrees(t *testing.T) {
	var c dayCache
	for _, s := range []string{
		"2026-11-22 00:00:00", "2026-11-22 00:00:01", "2026-11-22 23:59:59", "2026-11-22 24:00:00", "2026-11-22 12:60:00",
		"2026-11-22 12:00:60", "2026-11-22 1a:00:00", "2026-11-22T12:00:00", "2026-11-22 12-00:00", "2026-11-22 12:00:0",
		"2026-11-23 00:00:00", "2026-11-22 08:00:00", "2023-02-29 12:00:00", "2023-02-29 12:00:01", "2024-02-29 12:00:00",
		"2024-02-29 12:00:01", "0000-00-00 00:00:00", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00 00:00:00", "2026-11-22 00:00:00",
	} {
		want, wantOK := ParseTime([]byte(s))
		var fresh dayCache
		for _, c := range []*dayCache{&c, &fresh} {
			if got, ok := c.parse([]byte(s)); got != want || ok != wantOK {
				t.Fatalf("dayCache.parse(%q) = %d, %v; ParseTime says %d, %v", s, got, ok, want, wantOK)
			}
		}
	}
}
