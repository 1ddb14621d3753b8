package ledger_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// TestPayScoreTransitions walks every (state, call) pair of the state
// machine in wechatpay-apiv3.md 2.4.
func TestPayScoreTransitions(t *testing.T) {
	type st struct{ state, desc, collection string }
	states := map[string]st{
		"CREATED":                    {ledger.PayScoreCreated, "", ""},
		"DOING/USER_CONFIRM":         {ledger.PayScoreDoing, ledger.PayScoreUserConfirm, ""},
		"DOING/MCH_COMPLETE paying":  {ledger.PayScoreDoing, ledger.PayScoreMchComplete, ledger.PayScoreUserPaying},
		"DOING/MCH_COMPLETE no coll": {ledger.PayScoreDoing, ledger.PayScoreMchComplete, ""},
		"DONE (notify row)":          {ledger.PayScoreDone, ledger.PayScoreUserPaid, ""},
		"DONE (paying left over)":    {ledger.PayScoreDone, ledger.PayScoreUserPaid, ledger.PayScoreUserPaying},
		"REVOKED":                    {ledger.PayScoreRevoked, "", ""},
		"EXPIRED":                    {ledger.PayScoreExpired, "", ""},
		"CREATING":                   {ledger.PayScoreCreating, "", ""},
		"REJECTED":                   {ledger.PayScoreRejected, "", ""},
	}
	allowed := map[ledger.PayScoreAction][]string{
		ledger.PayScoreComplete: {"DOING/USER_CONFIRM"},
		ledger.PayScoreCancel:   {"CREATED", "DOING/USER_CONFIRM"},
		ledger.PayScoreModify:   {"DOING/MCH_COMPLETE paying"},
		ledger.PayScoreSync:     {"DOING/MCH_COMPLETE paying"},
	}
	for action, ok := range allowed {
		for name, s := range states {
			want := false
			for _, n := range ok {
				want = want || n == name
			}
			o := &ledger.PayScoreOrder{State: s.state, StateDescription: s.desc, CollectionState: s.collection}
			err := o.CheckTransition(action)
			if got := err == nil; got != want {
				t.Errorf("CheckTransition(%s) in %s = %v, want allowed=%v", action, name, err, want)
			}
			if err != nil && (!errors.Is(err, ledger.ErrPayScoreTransition) || !strings.Contains(err.Error(), s.state)) {
				t.Errorf("CheckTransition(%s) in %s = %v, want ErrPayScoreTransition naming state %s", action, name, err, s.state)
			}
		}
	}
	if err := (&ledger.PayScoreOrder{State: ledger.PayScoreDoing}).CheckTransition("pay"); !errors.Is(err, ledger.ErrPayScoreTransition) {
		t.Errorf("unknown action: %v, want ErrPayScoreTransition", err)
	}
}

func TestPayScoreCollectionAndTerminal(t *testing.T) {
	tests := []struct {
		o            ledger.PayScoreOrder
		collection   string
		terminal     bool
		describeWant string
	}{
		{ledger.PayScoreOrder{State: "DONE", StateDescription: "USER_PAID"}, "USER_PAID", true, "DONE/USER_PAID, collection USER_PAID"},
		{ledger.PayScoreOrder{State: "DOING", StateDescription: "MCH_COMPLETE", CollectionState: "USER_PAYING"}, "USER_PAYING", false, "DOING/MCH_COMPLETE, collection USER_PAYING"},
		{ledger.PayScoreOrder{State: "DOING", StateDescription: "USER_CONFIRM"}, "", false, "DOING/USER_CONFIRM"},
		{ledger.PayScoreOrder{State: "REVOKED"}, "", true, "REVOKED"},
		{ledger.PayScoreOrder{State: "EXPIRED"}, "", true, "EXPIRED"},
		{ledger.PayScoreOrder{State: "CREATING"}, "", false, "CREATING"},
	}
	for _, tc := range tests {
		if got := tc.o.Collection(); got != tc.collection {
			t.Errorf("%+v.Collection() = %q, want %q", tc.o, got, tc.collection)
		}
		if got := tc.o.Terminal(); got != tc.terminal {
			t.Errorf("%+v.Terminal() = %v, want %v", tc.o, got, tc.terminal)
		}
		if got := tc.o.Describe(); got != tc.describeWant {
			t.Errorf("%+v.Describe() = %q, want %q", tc.o, got, tc.describeWant)
		}
	}
}

func TestPayScoreTotal(t *testing.T) {
	tests := []struct {
		pay, disc []int64
		want      int64
	}{
		{nil, nil, 0},
		{[]int64{4000, 1000}, nil, 5000},
		{[]int64{4000, 1000}, []int64{500}, 4500},
		{[]int64{100}, []int64{300}, -200},
	}
	for _, tc := range tests {
		var p, d []ledger.PayScoreItem
		for _, a := range tc.pay {
			p = append(p, ledger.PayScoreItem{Name: "x", Amount: a, Count: 3})
		}
		for _, a := range tc.disc {
			d = append(d, ledger.PayScoreItem{Name: "y", Amount: a})
		}
		if got := ledger.PayScoreTotal(p, d); got != tc.want {
			t.Errorf("PayScoreTotal(%v, %v) = %d, want %d (count must not multiply)", tc.pay, tc.disc, got, tc.want)
		}
	}
}

func TestPayScoreModes(t *testing.T) {
	tests := []struct {
		mode ledger.PayScoreMode
		name string
		want bool
	}{
		{ledger.PayScoreEnjoyFirst, "ESTIMATE_ORDER_COST", true},
		{ledger.PayScoreEnjoyFirst, "DEPOSIT", false},
		{ledger.PayScoreDepositFree, "DEPOSIT", true},
		{ledger.PayScoreDepositFree, "ADVANCE", true},
		{ledger.PayScoreDepositFree, "CASH_DEPOSIT", true},
		{ledger.PayScoreDepositFree, "ESTIMATE_ORDER_COST", false},
		{"other", "ESTIMATE_ORDER_COST", false},
	}
	for _, tc := range tests {
		if got := tc.mode.AllowsRiskFund(tc.name); got != tc.want {
			t.Errorf("%q.AllowsRiskFund(%q) = %v, want %v", tc.mode, tc.name, got, tc.want)
		}
	}
	if ledger.PayScoreMode("other").Valid() || !ledger.PayScoreEnjoyFirst.Valid() || !ledger.PayScoreDepositFree.Valid() {
		t.Error("Valid() disagrees with the two modes")
	}
}

func TestPayScoreTimes(t *testing.T) {
	utc := time.Date(2026, 11, 22, 17, 30, 5, 0, time.UTC) // 01:30:05 next day in Shanghai
	if got := ledger.PayScoreTime(utc); got != "20261123013005" {
		t.Errorf("PayScoreTime(%v) = %q, want 20261123013005", utc, got)
	}
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"20261123013005", utc, false},
		{"2026-11-23T01:30:05+08:00", utc, false},
		{"20261123", time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC), false},
		{"2026112301300", time.Time{}, true},
		{"20261323013005", time.Time{}, true},
		{"OnAccept", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := ledger.ParsePaidTime(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && !got.Equal(tc.want)) {
			t.Errorf("ParsePaidTime(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := ledger.ParsePayScoreTime("20261123"); err == nil {
		t.Error("ParsePayScoreTime accepted yyyyMMdd; time_range needs yyyyMMddHHmmss")
	}
}

func TestPayScoreIdentifiers(t *testing.T) {
	tests := []struct {
		in        string
		orderNo   bool
		authzCode bool
	}{
		{"PS20261123000001", true, true},
		{"a_b-c|d*e", true, false},
		{"a_b-c*e", true, true},
		{strings.Repeat("9", 32), true, true},
		{strings.Repeat("9", 33), false, false},
		{"", false, false},
		{"订单1", false, false},
		{"has space", false, false},
		{"dot.no", false, false},
	}
	for _, tc := range tests {
		if got := ledger.ValidOutOrderNo(tc.in); got != tc.orderNo {
			t.Errorf("ValidOutOrderNo(%q) = %v, want %v", tc.in, got, tc.orderNo)
		}
		if got := ledger.ValidAuthorizationCode(tc.in); got != tc.authzCode {
			t.Errorf("ValidAuthorizationCode(%q) = %v, want %v", tc.in, got, tc.authzCode)
		}
	}
	if k := ledger.AuthorizationCodeKey("500001", "PA1"); k.PK != "PSAUTHCODE#500001#PA1" || k.SK != "STATE" {
		t.Errorf("AuthorizationCodeKey = %+v", k)
	}
}
