package bill

import (
	"bytes"
	"testing"
)

// FuzzSplitValues checks the word-at-a-time field splitter against the
// obvious one: split after the leading backtick on ",`", trim each field.
func FuzzSplitValues(f *testing.F) {
	for _, s := range []string{"`", "`a", "`a,`b", "`,`,`", "`a,b,`c", "`12345678,`123456789,`x", "`,,,,,,,,,`,`", "`a ,` b ,`c\t"} {
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
