package bill

import (
	"bytes"
	"testing"
)

// FuzzSplitValues checks the word-at-a-time field splitter against the
// obvious one: split after the leading backtick on ",`", trim each field.
func FuzzSplitValues(f *testing.F) {
	for _, s := range []string{"`", "`a", "`a,`b", "`,`,`", "`a,b,`c", "`12345678,`123456789,`x", "`,,,,,,,,,`,`", "`a ,` b ,`c\t",
		// Bytes one above ',' and '`' after a match: a borrowing zero-byte
		// test would flag them.
		"`1234567,-`a,`-,`a`a,`,-,-`-,`aa,`", "`\x00\x00,`\x80\x80,`\xff,`\x01,`a"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		line := append([]byte{'`'}, data...)
		want := bytes.Split(line[1:], []byte(",`"))
		r := &Reader{}
		n, err := r.splitValues(line)
		if len(want) > maxCols {
			if err == nil {
				t.Fatalf("%d fields accepted", len(want))
			}
			return
		}
		if err != nil || n != len(want) {
			t.Fatalf("splitValues(%q) = %d fields, %v; want %d", line, n, err, len(want))
		}
		for i := range want {
			if !bytes.Equal(r.fields[i], trimSpace(want[i])) {
				t.Fatalf("field %d of %q = %q, want %q", i, line, r.fields[i], trimSpace(want[i]))
			}
		}
	})
}

// BenchmarkSplitValues: the splitter alone on a typical no-prepaid row.
func BenchmarkSplitValues(b *testing.B) {
	line := []byte("`2026-11-22 10:00:00,`wx8888888888888888,`1900000109,`,`,`4200001234202611220000123456,`ORD0000123456,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`1.23,`0.00,`0,`0,`0.00,`0.00,`,`,`商品描述示例,`,`0.00738,`0.60%,`1.23,`0.00,`")
	r := &Reader{}
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		if n, err := r.splitValues(line); err != nil || n != 27 {
			b.Fatal(n, err)
		}
	}
}
