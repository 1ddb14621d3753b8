package bill_test

import (
	"errors"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
)

func TestParseFen(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0.00", 0, true},
		{"0", 0, true},
		{"19.90", 1990, true}, // the float classic: 19.90*100 = 1989.9999
		{"0.29", 29, true},    // 0.29*100 = 28.999999999999996
		{"1.5", 150, true},
		{"100", 10000, true},
		{"-0.01", -1, true},
		{"-12.34", -1234, true},
		{"92233720368547758.07", 9223372036854775807, true},
		{"92233720368547758.08", 0, false}, // overflow
		{"", 0, false},
		{"-", 0, false},
		{".5", 0, false},
		{"1.", 0, false},
		{"1.234", 0, false}, // a third decimal is not a fen amount
		{"1,000.00", 0, false},
		{"1e3", 0, false},
		{" 1.00", 0, false},
		{"+1.00", 0, false},
		{"１.00", 0, false}, // full-width digit
		{"1.0a", 0, false},
		{"--1", 0, false},
	}
	for _, tc := range tests {
		got, err := bill.ParseFen([]byte(tc.in))
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("ParseFen(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, bill.ErrAmount) {
			t.Errorf("ParseFen(%q) = %d, %v; want ErrAmount", tc.in, got, err)
		}
	}
}

func TestParseFeeKeepsFiveDecimals(t *testing.T) {
	tests := []struct {
		in      string
		want    int64 // FeeUnit
		wantFen int64
		ok      bool
	}{
		{"0.00000", 0, 0, true},
		{"0.00600", 600, 1, true}, // 0.006 yuan = 0.6 fen -> rounds to 1 fen
		{"0.00400", 400, 0, true},
		{"0.00500", 500, 1, true}, // half away from zero
		{"-0.00500", -500, -1, true},
		{"0.01", 1000, 1, true},
		{"12.34567", 1234567, 1235, true},
		{"0.000001", 0, 0, false}, // six decimals
		{"abc", 0, 0, false},
	}
	for _, tc := range tests {
		got, err := bill.ParseFee([]byte(tc.in))
		if !tc.ok {
			if !errors.Is(err, bill.ErrAmount) {
				t.Errorf("ParseFee(%q) = %d, %v; want ErrAmount", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want || bill.FeeFen(got) != tc.wantFen {
			t.Errorf("ParseFee(%q) = %d (%d fen), %v; want %d (%d fen)", tc.in, got, bill.FeeFen(got), err, tc.want, tc.wantFen)
		}
		if err == nil && bill.FormatFee(got) != normalizeFee(tc.in) {
			t.Errorf("FormatFee(%d) = %q, want %q", got, bill.FormatFee(got), normalizeFee(tc.in))
		}
	}
}

func normalizeFee(s string) string {
	if s == "0.01" {
		return "0.01000"
	}
	return s
}

func TestFormatYuanRoundTrips(t *testing.T) {
	for _, fen := range []int64{0, 1, 9, 10, 99, 100, 1990, -1, -1234, 123456789} {
		s := bill.FormatYuan(fen)
		back, err := bill.ParseFen([]byte(s))
		if err != nil || back != fen {
			t.Errorf("FormatYuan(%d) = %q, parsed back %d, %v", fen, s, back, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2026-11-22 00:00:00", 1795276800, true}, // 2026-11-21T16:00:00Z
		{"1970-01-01 08:00:00", 0, true},
		{"2024-02-29 12:00:00", 1709179200, true},
		{"2023-02-29 12:00:00", 0, false},
		{"2026-13-01 00:00:00", 0, false},
		{"2026-11-22 24:00:00", 0, false},
		{"2026-11-22T00:00:00", 0, false},
		{"2026-11-22 0:00:00", 0, false},
		{"2026/11/22 00:00:00", 0, false},
	}
	for _, tc := range tests {
		got, ok := bill.ParseTime([]byte(tc.in))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseTime(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && bill.FormatTime(got) != tc.in {
			t.Errorf("FormatTime(%d) = %q, want %q", got, bill.FormatTime(got), tc.in)
		}
	}
	// Shanghai days: 23:59:59 and 00:00:00 are on different days.
	a, _ := bill.ParseTime([]byte("2026-11-22 23:59:59"))
	b, _ := bill.ParseTime([]byte("2026-11-23 00:00:00"))
	d, _ := bill.DayOf("2026-11-22")
	if bill.DayNumber(a) != d || bill.DayNumber(b) != d+1 || bill.FormatDay(d) != "2026-11-22" {
		t.Fatalf("day numbers: %d %d, want %d %d (%s)", bill.DayNumber(a), bill.DayNumber(b), d, d+1, bill.FormatDay(d))
	}
}
