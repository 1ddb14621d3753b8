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
