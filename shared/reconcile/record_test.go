package reconcile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func sampleEntries() []Entry {
	return []Entry{
		{Kind: Charge, Key: []byte("ORD0000123456"), TxnID: []byte("4200001234202611220000123456"), TradeType: []byte("JSAPI"),
			Status: []byte(StatusSuccess), Time: 1795277400, Day: 20779, Total: 10100, Payer: 10090, Settlement: 10100, Coupon: 10,
			Fee: 6060000, Line: 123457},
		{Kind: Refund, Flags: FlagOrderRefund | FlagLegacy, Key: []byte("REF0000000042"), TxnID: []byte("42000012342026112200000042"),
			RefundID: []byte("500000000000042"), OrderNo: []byte("ORD0000000042"), TradeType: []byte("NATIVE"), Status: []byte("CHANGE"),
			Time: -1, Day: NoDay, Total: -5, Settlement: math.MinInt64, Coupon: math.MaxInt64, NoCash: -math.MaxInt64, Fee: -90000, Line: 1},
		{Kind: Charge, Flags: FlagAuth | FlagPayScore | FlagAttachInvalid, Key: []byte("k"), TxnID: []byte("12345"), RefundID: []byte("0123"),
			OrderNo: []byte("1000"), TradeType: []byte(""), Status: []byte(StatusProcessing)},
		{Kind: Refund, Key: bytes.Repeat([]byte("é"), maxKeyLen/2), TxnID: bytes.Repeat([]byte("9"), maxKeyLen),
			RefundID: bytes.Repeat([]byte("x"), maxKeyLen), OrderNo: []byte("12a4"), Status: []byte("SUCCES")},
		// Digit strings around the packing limits: odd and even counts,
		// the shortest and longest packed, and one digit too many.
		{Kind: Charge, Key: []byte("d"), TxnID: []byte("123456789"), RefundID: []byte("00000000"), OrderNo: []byte("1234567"),
			TradeType: []byte("AUTH"), Status: []byte("REFUND")},
		{Kind: Refund, Key: []byte("e"), TxnID: bytes.Repeat([]byte("0123456789"), 7)[:maxPacked], RefundID: bytes.Repeat([]byte("5"), maxPacked+1),
			OrderNo: []byte("9876543210987654321x"), TradeType: []byte("jsapi"), Status: []byte("PROCESSING ")},
	}
}

// TestCommonValues: commonIndex inverts commonValue, and the codes fit
// their head bytes.
func TestCommonValues(t *testing.T) {
	n := 0
	for c := 0; c < 256; c++ {
		v, ok := commonValue(c)
		if !ok {
			continue
		}
		n++
		if got := commonIndex([]byte(v)); got != c || c >= headDigits-headCommon {
			t.Fatalf("commonValue(%d) = %q, commonIndex of it = %d", c, v, got)
		}
	}
	if n < 10 || commonIndex([]byte("SUCCESS ")) != -1 || commonIndex(nil) != -1 {
		t.Fatalf("%d common values", n)
	}
}

// TestRecordSize: a typical charge takes about 60 bytes: its ids are
// packed, its status and trade type one byte each.
func TestRecordSize(t *testing.T) {
	e := sampleEntries()[0]
	rec, err := appendRecord(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) > 62 {
		t.Fatalf("%d bytes", len(rec))
	}
}

// TestRecordRoundTrip: every entry decodes to itself, alone or after
// others in one buffer, and its key sorts as the entry's.
func TestRecordRoundTrip(t *testing.T) {
	var arena, strs []byte
	var offs []int
	for _, e := range sampleEntries() {
		offs = append(offs, len(arena))
		var err error
		if arena, err = appendRecord(arena, &e); err != nil {
			t.Fatal(err)
		}
		if got, bound := len(arena)-offs[len(offs)-1], recordBound(&e); got > bound {
			t.Fatalf("%s: %d bytes, bound %d", e.Key, got, bound)
		}
	}
	for i, e := range sampleEntries() {
		body, _ := recordBody(arena[offs[i]:])
		if k, key := recordKey(body); Kind(k) != e.Kind || !bytes.Equal(key, e.Key) {
			t.Fatalf("recordKey = %d %q", k, key)
		}
		var got Entry
		if err := decodeRecord(body, &got, &strs); err != nil {
			t.Fatalf("%s: %v", e.Key, err)
		}
		norm := func(e Entry) Entry {
			for _, s := range []*[]byte{&e.Key, &e.TxnID, &e.RefundID, &e.OrderNo, &e.TradeType, &e.Status} {
				if len(*s) == 0 {
					*s = nil
				}
			}
			return e
		}
		if !reflect.DeepEqual(norm(got), norm(e)) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, e)
		}
	}
}

// TestRecordCorrupt: damaged records are errors, never panics.
func TestRecordCorrupt(t *testing.T) {
	for _, e := range sampleEntries() {
		rec, err := appendRecord(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := recordBody(rec)
		for n := 0; n < len(body); n++ {
			var got Entry
			var strs []byte
			if err := decodeRecord(body[:n], &got, &strs); !errors.Is(err, errCorruptRecord) {
				t.Fatalf("%d of %d bytes: %v", n, len(body), err)
			}
		}
		for i := range body {
			for _, b := range []byte{0, 0x7f, 0x80, 0xff} {
				damaged := bytes.Clone(body)
				damaged[i] = b
				var got Entry
				var strs []byte
				_ = decodeRecord(damaged, &got, &strs) // must not panic
			}
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	es := sampleEntries()[:1]
	rec, _ := appendRecord(nil, &es[0])
	var strs []byte
	var got Entry
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			rec, _ = appendRecord(rec[:0], &es[0])
		}
		b.ReportMetric(float64(len(rec)), "bytes")
	})
	b.Run("decode", func(b *testing.B) {
		body, _ := recordBody(rec)
		for b.Loop() {
			strs = strs[:0]
			if err := decodeRecord(body, &got, &strs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSortChunk: the radix sort with its tie-break orders a chunk as a
// stable comparison sort of the whole records would.
func TestSortChunk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 50, 5000} {
		s := newSorter(t.TempDir(), 1<<30)
		for i := range n {
			key := make([]byte, 1+rng.IntN(20))
			for j := range key {
				key[j] = "AB0\xff"[rng.IntN(4)]
				if len(key) > 14 && j < 14 {
					key[j] = 'A' // long keys share their prefix
				}
			}
			e := Entry{Kind: Kind(1 + rng.IntN(2)), Key: key, Line: int64(i)}
			if err := s.add(&e); err != nil {
				t.Fatal(err)
			}
		}
		want := slices.Clone(s.offs)
		slices.SortStableFunc(want, func(a, b sortKey) int { return compareRecords(s.body(a.off), s.body(b.off)) })
		s.sortChunk()
		if len(s.offs) != n {
			t.Fatalf("%d keys sorted into %d", n, len(s.offs))
		}
		for i := range want {
			if want[i].off != s.offs[i].off {
				t.Fatalf("n=%d: position %d holds record %d, want %d", n, i, s.offs[i].off, want[i].off)
			}
		}
	}
}

// TestStringRoundTrip: every string decodes to itself, digits packed (odd
// and even counts, up to the limit) or not (a non-digit anywhere), and
// the packed form is half the size.
func TestStringRoundTrip(t *testing.T) {
	for n := 0; n <= maxPacked+2; n++ {
		digits := make([]byte, n)
		for i := range digits {
			digits[i] = '0' + byte((i*7+3)%10)
		}
		cases := [][]byte{digits}
		for _, k := range []int{0, n / 2, n - 1} {
			if k >= 0 && k < n {
				for _, c := range []byte{'/', ':', 'a', 0x80} {
					s := bytes.Clone(digits)
					s[k] = c
					cases = append(cases, s)
				}
			}
		}
		for ci, s := range cases {
			p := make([]byte, stringHeadBytes+len(s))
			end := putString(p, 0, s)
			var got, buf []byte
			i, ok := getString(p[:end], 0, &got, &buf)
			if !ok || i != end || !bytes.Equal(got, s) {
				t.Fatalf("%q: decoded %q (ok %v, %d of %d bytes)", s, got, ok, i, end)
			}
			if packed := ci == 0 && n >= minPacked && n <= maxPacked; packed != (end == 1+(n+1)/2) && n > 2 {
				t.Fatalf("%q: %d bytes, packed %v", s, end, packed)
			}
		}
	}
}

// TestSortKeyPrefix: the sort key's two words are the kind and the first
// 15 key bytes, zero-padded, big-endian, for keys of every length.
func TestSortKeyPrefix(t *testing.T) {
	key := []byte("\x01ABCDEFGHIJKLMNOPQRSTU\xff")
	for n := 1; n <= len(key); n++ {
		var b [16]byte
		b[0] = byte(Refund)
		copy(b[1:], key[:n])
		got := newSortKey(Refund, key[:n], 7)
		if got.hi != binary.BigEndian.Uint64(b[:8]) || got.lo != binary.BigEndian.Uint64(b[8:]) || got.off != 7 {
			t.Fatalf("key of %d bytes: %016x %016x, want %x", n, got.hi, got.lo, b)
		}
	}
}
