package ledger_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

func TestValidRequestNo(t *testing.T) {
	tests := []struct {
		no   string
		max  int
		want bool
	}{
		{"1002600620019090123143254435", 32, true},
		{"A|b_c*d-9", 32, true},
		{strings.Repeat("9", 32), 32, true},
		{strings.Repeat("9", 33), 32, false},
		{strings.Repeat("9", 128), 128, true},
		{"", 32, false},
		{"has space", 32, false},
		{"slash/", 32, false},
		{"中文", 32, false},
		{"emoji😀", 32, false},
	}
	for _, tc := range tests {
		if got := ledger.ValidRequestNo(tc.no, tc.max); got != tc.want {
			t.Errorf("ValidRequestNo(%q, %d) = %v, want %v", tc.no, tc.max, got, tc.want)
		}
	}
}

func TestNewRequestNo(t *testing.T) {
	now := time.Date(2026, 11, 22, 16, 30, 0, 0, time.UTC) // already the 23rd in Shanghai
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		no, err := ledger.NewRequestNo("1900000109", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(no) != ledger.RequestNoLen || !strings.HasPrefix(no, "190000010920261123") || !ledger.ValidRequestNo(no, 32) {
			t.Fatalf("NewRequestNo = %q, want %d characters: mchid, Shanghai date 20261123, random", no, ledger.RequestNoLen)
		}
		if seen[no] {
			t.Fatalf("NewRequestNo repeated %q", no)
		}
		seen[no] = true
	}
	long, err := ledger.NewRequestNo(strings.Repeat("1", 40), now)
	if err != nil || len(long) != ledger.RequestNoLen || !ledger.ValidRequestNo(long, 32) {
		t.Fatalf("NewRequestNo with a 40-digit mchid = %q (%v), want a valid %d-character number", long, err, ledger.RequestNoLen)
	}
}

func TestCouponKeys(t *testing.T) {
	hist := ledger.CouponHistoryKey("1212345678", "CODE1", "2026-11-23T10:00:00+08:00", "use", "U1")
	if hist.PK != ledger.CouponKey("1212345678", "CODE1").PK || !strings.HasPrefix(hist.SK, ledger.CouponHistoryPrefix) {
		t.Fatalf("history key %v must share the coupon's partition and start with %s", hist, ledger.CouponHistoryPrefix)
	}
	keys := map[string]string{
		"stock":    ledger.StockKey("1").String(),
		"activity": ledger.ActivityKey("1").String(),
		"coupon":   ledger.CouponKey("1", "1").String(),
		"request":  ledger.CouponRequestKey("use", "1").String(),
		"slot":     ledger.CouponSlotKey("use", "1", "d").String(),
		"callback": ledger.CouponCallbackKey("1").String(),
		"order":    ledger.OrderKey("1").String(),
	}
	seen := map[string]string{}
	for name, k := range keys {
		if other, dup := seen[k]; dup {
			t.Fatalf("%s and %s share the key %s", name, other, k)
		}
		seen[k] = name
	}
	if a, b := ledger.CouponRequestKey("use", "N1"), ledger.CouponRequestKey("return", "N1"); a == b {
		t.Fatalf("request numbers of different kinds collide: %v", a)
	}
}
