package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	const pass = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:1: fine\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}
{"Action":"pass","Package":"p","Elapsed":0.2}
`
	tests := []struct {
		name, in string
		ok       bool
		want     string
	}{
		{"clean run", pass, true, "1 passed, 0 failed, 0 skipped"},
		{"leaked APIv3 key in a passing test", strings.Replace(pass, "fine", "key TESTKEYabcdefghijklmnopqrstuvwxy", 1), false, "SECRET MATERIAL"},
		{"leaked PEM", strings.Replace(pass, "fine", "-----BEGIN PRIVATE KEY-----", 1), false, "SECRET MATERIAL"},
		{"failing test", strings.Replace(pass, `"pass","Package":"p","Test":"TestA"`, `"fail","Package":"p","Test":"TestA"`, 1), false, "0 passed, 1 failed"},
		{"no packages", "", false, "did not happen"},
		{"package failure without test", `{"Action":"output","Package":"q","Output":"panic: boom\n"}` + "\n" + `{"Action":"fail","Package":"q","Elapsed":0.1}` + "\n", false, "FAIL\tq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			ok, err := report(strings.NewReader(tc.in), &out)
			if err != nil || ok != tc.ok || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("report = %v, %v\n%s\nwant ok=%v and %q", ok, err, out.String(), tc.ok, tc.want)
			}
		})
	}
}
