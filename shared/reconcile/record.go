package reconcile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
)

// Records are how entries are buffered, sorted and spilled. Every bill row
// and every ledger entry is encoded once, copied into a run, written to
// disk, read back and decoded, so their size and their coding speed are
// what the sort costs. Numbers take the bytes they need, in a way that
// decodes without per-byte loops: a nibble per number gives its length,
// and the number is one masked word load. Strings are a head byte and
// what it announces (see putString): raw bytes, one of a few common values
// (SUCCESS, JSAPI...) as that byte alone, or digits packed two per byte
// (transaction and refund ids: 28 and 29-32 digits). A typical charge
// takes about 60 bytes.
//
// A record is a u16 little-endian length followed by the body:
//
//	kind u8 | uvarint key length | key | uvarint flags |
//	u16 little-endian length of the compare block |
//	compare block:
//	  3 bytes: the byte lengths (0-8) of its five numbers, a nibble each |
//	  zigzag total, payer, settlement, coupon, nocash, little-endian in
//	  as many bytes as they need |
//	  txn, refund id, order no, status: strings |
//	trade type: a string |
//	2 bytes: the byte lengths of four numbers |
//	zigzag time, day − bill.DayNumber(time), fee, line.
//
// The sort key comes first, where a comparison reads it without decoding
// anything else. The compare block holds what a bill row and its ledger
// entry must agree on, in a canonical form (equal values, equal bytes):
// the live join encodes a ledger entry's block (appendCompareBlock) and
// when the bill's record holds the same bytes, the pair agrees without
// decoding the record (see Reconciler.joinFast).
//
// Day is stored relative to the day of Time, which is what it is on the
// bill side and for nearly every ledger entry: no byte at all. Runs live
// only as long as one reconciliation, so the layout can change freely from
// one version to the next.

// recordLenBytes is the size of a record's length prefix. Bodies are far
// below 64 KiB: the key and each string are at most maxKeyLen bytes.
const recordLenBytes = 2

// blockNums and restNums are the numbers of the compare block and of the
// rest of the record.
const (
	blockNums = 5
	restNums  = 4
)

// compareBlockBound bounds e's compare block. Numbers count 8 bytes each:
// they are written as whole words.
func compareBlockBound(e *Entry) int {
	return (blockNums+1)/2 + 8*blockNums + 4*stringHeadBytes + len(e.TxnID) + len(e.RefundID) + len(e.OrderNo) + len(e.Status)
}

// recordBound is an upper bound of e's encoded size, length included.
func recordBound(e *Entry) int {
	return recordLenBytes + 1 + binary.MaxVarintLen16 + len(e.Key) + binary.MaxVarintLen16 + 2 + compareBlockBound(e) +
		stringHeadBytes + len(e.TradeType) + (restNums+1)/2 + 8*restNums
}

// maxRecordBound is recordBound of the largest entry a record holds (key
// and strings of maxKeyLen bytes).
const maxRecordBound = recordLenBytes + 1 + binary.MaxVarintLen16 + binary.MaxVarintLen16 + 2 + (blockNums+1)/2 + 8*blockNums +
	(restNums+1)/2 + 8*restNums + 5*stringHeadBytes + 6*maxKeyLen

// zigzag maps small magnitudes of either sign to small unsigned numbers.
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// appendRecord encodes e at the end of b. It grows b at most once (by
// recordBound), so a caller that reserved that much keeps its array.
func appendRecord(b []byte, e *Entry) ([]byte, error) {
	if err := checkEntry(e); err != nil {
		return b, err
	}
	start, bound := len(b), recordBound(e)
	b = slices.Grow(b, bound)
	p := b[start : start+bound]
	p[2] = byte(e.Kind)
	i := putUvarint(p, 3, uint64(len(e.Key)))
	i += copy(p[i:], e.Key)
	i = putUvarint(p, i, uint64(e.Flags))
	blockAt := i
	i = putCompareBlock(p, i+2, e)
	binary.LittleEndian.PutUint16(p[blockAt:], uint16(i-blockAt-2))
	i = putString(p, i, e.TradeType)
	rest := [restNums]uint64{zigzag(e.Time), zigzag(e.Day - bill.DayNumber(e.Time)), zigzag(e.Fee), zigzag(e.Line)}
	i = putNums(p, i, rest[:])
	binary.LittleEndian.PutUint16(p, uint16(i-recordLenBytes))
	return b[:start+i], nil
}

// appendCompareBlock appends e's compare block to b: the bytes a record
// of an entry with the same compared values holds.
func appendCompareBlock(b []byte, e *Entry) []byte {
	start := len(b)
	b = slices.Grow(b, compareBlockBound(e))
	i := putCompareBlock(b[start:start+compareBlockBound(e)], 0, e)
	return b[:start+i]
}

func putCompareBlock(p []byte, i int, e *Entry) int {
	nums := [blockNums]uint64{zigzag(e.Total), zigzag(e.Payer), zigzag(e.Settlement), zigzag(e.Coupon), zigzag(e.NoCash)}
	i = putNums(p, i, nums[:])
	i = putString(p, i, e.TxnID)
	i = putString(p, i, e.RefundID)
	i = putString(p, i, e.OrderNo)
	return putString(p, i, e.Status)
}

// putNums writes the byte lengths of nums, a nibble each, then each
// number in as many bytes as it needs, and returns the index after them.
// p must have room for 8 bytes per number (whole words are written; the
// next number overwrites what is past the bytes that count).
func putNums(p []byte, i int, nums []uint64) int {
	lensAt := i
	i += (len(nums) + 1) / 2
	var lens uint64 // the nibbles, gathered in a register
	for k, u := range nums {
		binary.LittleEndian.PutUint64(p[i:], u)
		n := (bits.Len64(u) + 7) >> 3
		lens |= uint64(n) << (4 * k)
		i += n
	}
	for k := lensAt; k < lensAt+(len(nums)+1)/2; k++ {
		p[k] = byte(lens)
		lens >>= 8
	}
	return i
}

// getNums decodes len(out) numbers written by putNums at p[i] and returns
// the index after them, or false when p is too short or a length is not
// 0-8 (a damaged run).
func getNums(p []byte, i int, out []uint64) (int, bool) {
	nb := (len(out) + 1) / 2
	if len(p)-i < nb {
		return i, false
	}
	var lens uint64
	for k := nb - 1; k >= 0; k-- {
		lens = lens<<8 | uint64(p[i+k])
	}
	i += nb
	for k := range out {
		n := int(lens>>(4*k)) & 0xf
		switch {
		case len(p)-i >= 8 && n <= 8:
			out[k] = binary.LittleEndian.Uint64(p[i:]) & (1<<(8*n) - 1)
		case n <= 8 && len(p)-i >= n:
			var w [8]byte
			copy(w[:], p[i:i+n])
			out[k] = binary.LittleEndian.Uint64(w[:])
		default:
			return i, false
		}
		i += n
	}
	return i, true
}

// checkEntry reports an entry a record cannot hold: an empty key, or a
// key or string longer than maxKeyLen.
func checkEntry(e *Entry) error {
	if len(e.Key) == 0 || len(e.Key) > maxKeyLen {
		return fmt.Errorf("%w: %s key of %d bytes (line %d)", ErrEntry, e.Kind, len(e.Key), e.Line)
	}
	// The OR of the lengths exceeds maxKeyLen when one of them does (and
	// sometimes when none does): the loop runs only then.
	if len(e.TxnID)|len(e.RefundID)|len(e.OrderNo)|len(e.TradeType)|len(e.Status) > maxKeyLen {
		for _, s := range [...][]byte{e.TxnID, e.RefundID, e.OrderNo, e.TradeType, e.Status} {
			if len(s) > maxKeyLen {
				return fmt.Errorf("%w: %s %s: a field of %d bytes (line %d)", ErrEntry, e.Kind, e.Key, len(s), e.Line)
			}
		}
	}
	return nil
}

// compareKeys orders (kind, key) pairs as records are ordered.
func compareKeys(ka byte, a []byte, kb byte, b []byte) int {
	if ka != kb {
		return int(ka) - int(kb)
	}
	return bytes.Compare(a, b)
}

// putUvarint writes v at p[i] and returns the index after it.
func putUvarint(p []byte, i int, v uint64) int {
	if v < 0x80 {
		p[i] = byte(v)
		return i + 1
	}
	return i + binary.PutUvarint(p[i:], v)
}

// A record string starts with a head byte:
//
//	0x00-0x7f  raw: that many bytes follow
//	0x80-0xbf  the common value commonValue(head-0x80), nothing follows
//	0xc0-0xfe  head-0xc0 decimal digits (at least minPacked), packed two
//	           per byte, first digit in the high nibble; an odd count
//	           ends with a 0xf nibble
//	0xff       raw: a u16 little-endian length and that many bytes
const (
	headCommon      = 0x80
	headDigits      = 0xc0
	headLongRaw     = 0xff
	maxPacked       = headLongRaw - 1 - headDigits
	minPacked       = 8
	stringHeadBytes = 3
)

// commonValue returns common value c (statuses and trade types: nearly
// every record holds two of them, as one byte each), or false. At most
// 64; commonIndex is its inverse.
func commonValue(c int) (string, bool) {
	switch c {
	case 0:
		return StatusSuccess, true
	case 1:
		return "REFUND", true
	case 2:
		return StatusProcessing, true
	case 3:
		return StatusAbnormal, true
	case 4:
		return StatusClosed, true
	case 5:
		return StatusRevoked, true
	case 6:
		return "NOTPAY", true
	case 7:
		return "USERPAYING", true
	case 8:
		return "PAYERROR", true
	case 9:
		return "CHANGE", true
	case 10:
		return "FAIL", true
	case 11:
		return "JSAPI", true
	case 12:
		return "NATIVE", true
	case 13:
		return "APP", true
	case 14:
		return "MWEB", true
	case 15:
		return "MICROPAY", true
	case 16:
		return "FACEPAY", true
	case 17:
		return "AUTH", true
	}
	return "", false
}

// commonIndex returns the c for which commonValue(c) is s, or -1.
func commonIndex(s []byte) int {
	switch string(s) {
	case StatusSuccess:
		return 0
	case "REFUND":
		return 1
	case StatusProcessing:
		return 2
	case StatusAbnormal:
		return 3
	case StatusClosed:
		return 4
	case StatusRevoked:
		return 5
	case "NOTPAY":
		return 6
	case "USERPAYING":
		return 7
	case "PAYERROR":
		return 8
	case "CHANGE":
		return 9
	case "FAIL":
		return 10
	case "JSAPI":
		return 11
	case "NATIVE":
		return 12
	case "APP":
		return 13
	case "MWEB":
		return 14
	case "MICROPAY":
		return 15
	case "FACEPAY":
		return 16
	case "AUTH":
		return 17
	}
	return -1
}

// putString writes s at p[i] and returns the index after it. p must have
// room for stringHeadBytes+len(s) bytes from i.
func putString(p []byte, i int, s []byte) int {
	n := len(s)
	if n >= minPacked && n <= maxPacked {
		if end, ok := packDigits(p, i+1, s); ok {
			p[i] = byte(headDigits + n)
			return end
		}
	}
	if n < headCommon {
		if n > 0 && n <= 10 {
			if c := commonIndex(s); c >= 0 {
				p[i] = byte(headCommon + c)
				return i + 1
			}
		}
		p[i] = byte(n)
		return i + 1 + copy(p[i+1:], s)
	}
	p[i] = headLongRaw
	binary.LittleEndian.PutUint16(p[i+1:], uint16(n))
	return i + 3 + copy(p[i+3:], s)
}

// appendString appends s as putString writes it.
func appendString(b []byte, s []byte) []byte {
	start := len(b)
	b = slices.Grow(b, stringHeadBytes+len(s))
	i := putString(b[start:start+stringHeadBytes+len(s)], 0, s)
	return b[:start+i]
}

// digitsWord reports whether the eight bytes of v are all '0'-'9': each
// high nibble is 3, and adding 6 to the low nibble does not carry.
func digitsWord(v uint64) bool {
	const hi, six = 0xf0f0f0f0f0f0f0f0, 0x0606060606060606
	return v&hi == 0x3030303030303030 && (v+six)&hi == 0x3030303030303030
}

// packDigits writes s (at least 8 bytes), when it holds only decimal
// digits, two per byte at p[i] (which has room for len(s) bytes) and
// returns the index after them; otherwise it reports false, having
// written over what p[i:] held. Eight digits are checked and packed in a
// few word operations; the last one to seven are the end of the last
// eight bytes, shifted down and padded with '0's.
func packDigits(p []byte, i int, s []byte) (int, bool) {
	k := 0
	for ; k+8 <= len(s); k += 8 {
		v := binary.LittleEndian.Uint64(s[k:])
		if !digitsWord(v) {
			return i, false
		}
		binary.LittleEndian.PutUint32(p[i:], packWord(v))
		i += 4
	}
	if rest := uint(len(s) - k); rest > 0 {
		v := binary.LittleEndian.Uint64(s[len(s)-8:])>>(8*(8-rest)) | 0x3030303030303030<<(8*rest)
		if !digitsWord(v) {
			return i, false
		}
		w := packWord(v)
		if rest%2 == 1 {
			w |= 0xf << (8 * (rest / 2)) // the odd count's last nibble
		}
		binary.LittleEndian.PutUint32(p[i:], w) // room: len(s) ≥ 8 bytes for at most 4+4
		i += int(rest+1) / 2
	}
	return i, true
}

// packWord packs the eight digits of v (in memory order) into four bytes,
// first digit in the high nibble.
func packWord(v uint64) uint32 {
	x := v & 0x0f0f0f0f0f0f0f0f
	// Each 16-bit lane holds digits d0 (low byte) and d1: make its low
	// byte d0<<4|d1, then gather the four low bytes.
	x = (x&0x00ff00ff00ff00ff)<<4 | (x>>8)&0x00ff00ff00ff00ff
	x = (x | x>>8) & 0x0000ffff0000ffff
	x = (x | x>>16) & 0x00000000ffffffff
	return uint32(x)
}

// unpackDigits appends the n digits packed in b (len(b) = (n+1)/2) to
// dst. It reports false when a nibble is not a digit (a damaged run).
func unpackDigits(dst, b []byte, n int) ([]byte, bool) {
	at := len(dst)
	dst = slices.Grow(dst, n+1)
	w := dst[at : at+n+1] // an odd count writes its 0xf nibble past n
	ok := true
	k := 0
	for ; 2*k+8 <= n; k += 4 {
		x := uint64(binary.LittleEndian.Uint32(b[k:]))
		x = (x | x<<16) & 0x0000ffff0000ffff
		x = (x | x<<8) & 0x00ff00ff00ff00ff
		// Each 16-bit lane's low byte is d0<<4|d1: make the lane d0 |
		// d1<<8, then add '0' to each byte.
		x = (x>>4)&0x000f000f000f000f | (x&0x000f000f000f000f)<<8
		x += 0x3030303030303030
		ok = ok && digitsWord(x)
		binary.LittleEndian.PutUint64(w[2*k:], x)
	}
	for j := 2 * k; j < n; j += 2 {
		c := b[j/2]
		hi, lo := c>>4, c&0xf
		w[j], w[j+1] = '0'+hi, '0'+lo
		ok = ok && hi <= 9 && (lo <= 9 || (j+1 == n && lo == 0xf))
	}
	return dst[:at+n], ok
}

// recordBody returns the body of the record starting at b[0] and the
// record's whole length.
func recordBody(b []byte) (body []byte, n int) {
	n = recordLenBytes + int(binary.LittleEndian.Uint16(b))
	return b[recordLenBytes:n], n
}

// recordKey returns the kind byte and key of a record body: the sort key.
// The body must be valid (checkRecord vets those read back from disk).
func recordKey(body []byte) (byte, []byte) {
	if n := int(body[1]); n < 0x80 {
		return body[0], body[2 : 2+n]
	}
	n, i := uvarintSlow(body, 1)
	return body[0], body[i : i+int(n)]
}

// checkRecord reports whether a body read back from a run holds its key.
func checkRecord(body []byte) bool {
	n, i := uvarintSlow(body, 1)
	return n > 0 && n <= maxKeyLen && uint64(len(body)-i) >= n
}

// compareRecords orders record bodies by kind, then key bytes (the order
// DynamoDB sorts string keys in).
func compareRecords(a, b []byte) int {
	ka, keyA := recordKey(a)
	kb, keyB := recordKey(b)
	if ka != kb {
		return int(ka) - int(kb)
	}
	return bytes.Compare(keyA, keyB)
}

// errCorruptRecord: a spill file does not decode (disk trouble).
var errCorruptRecord = errors.New("reconcile: corrupt spill record")

// uvarintSlow decodes the uvarint at p[i] and returns it with the index
// after it; past the end or malformed, the index is len(p)+1.
func uvarintSlow(p []byte, i int) (uint64, int) {
	if i >= len(p) {
		return 0, len(p) + 1
	}
	v, n := binary.Uvarint(p[i:])
	if n <= 0 {
		return 0, len(p) + 1
	}
	return v, i + n
}

// decodeRecord fills e from a record body. The body is first copied to
// the end of *buf, and e's slices point into that copy: e does not depend
// on body, whose run buffer moves on while a key's group is collected.
// (When *buf grows, entries decoded before keep the old array.)
func decodeRecord(body []byte, e *Entry, buf *[]byte) error {
	if !checkRecord(body) {
		return errCorruptRecord
	}
	start := len(*buf)
	*buf = append(*buf, body...)
	p := (*buf)[start:len(*buf):len(*buf)]
	*e = Entry{Kind: Kind(p[0])}
	n, i := uvarintSlow(p, 1)
	e.Key = p[i : i+int(n) : i+int(n)]
	i += int(n)
	flags, i := uvarintSlow(p, i)
	if i+2 > len(p) || flags > 0xffff {
		return errCorruptRecord
	}
	e.Flags = Flags(flags)
	blockEnd := i + 2 + int(binary.LittleEndian.Uint16(p[i:]))
	i += 2
	var nums [blockNums]uint64
	var ok bool
	if i, ok = getNums(p, i, nums[:]); !ok {
		return errCorruptRecord
	}
	e.Total, e.Payer, e.Settlement = unzigzag(nums[0]), unzigzag(nums[1]), unzigzag(nums[2])
	e.Coupon, e.NoCash = unzigzag(nums[3]), unzigzag(nums[4])
	for _, dst := range [...]*[]byte{&e.TxnID, &e.RefundID, &e.OrderNo, &e.Status, &e.TradeType} {
		if i, ok = getString(p, i, dst, buf); !ok {
			return errCorruptRecord
		}
		if dst == &e.Status && i != blockEnd {
			return errCorruptRecord
		}
	}
	var rest [restNums]uint64
	if i, ok = getNums(p, i, rest[:]); !ok || i != len(p) {
		return errCorruptRecord
	}
	e.Time = unzigzag(rest[0])
	e.Day = unzigzag(rest[1]) + bill.DayNumber(e.Time)
	e.Fee, e.Line = unzigzag(rest[2]), unzigzag(rest[3])
	return nil
}

// getString decodes the string written by putString at p[i] into *dst
// (a slice of p, or of *buf where the string was packed or coded) and
// returns the index after it, or false when it does not decode.
func getString(p []byte, i int, dst *[]byte, buf *[]byte) (int, bool) {
	if i >= len(p) {
		return i, false
	}
	h := int(p[i])
	i++
	switch {
	case h < headCommon:
		if h > len(p)-i {
			return i, false
		}
		*dst = p[i : i+h : i+h]
		return i + h, true
	case h < headDigits:
		v, ok := commonValue(h - headCommon)
		if !ok {
			return i, false
		}
		at := len(*buf)
		*buf = append(*buf, v...)
		*dst = (*buf)[at:len(*buf):len(*buf)]
		return i, true
	case h < headLongRaw:
		n := h - headDigits
		m := (n + 1) / 2
		if m > len(p)-i || n < minPacked {
			return i, false
		}
		at := len(*buf)
		var ok bool
		if *buf, ok = unpackDigits(*buf, p[i:i+m], n); !ok {
			return i, false
		}
		*dst = (*buf)[at : at+n : at+n]
		return i + m, true
	}
	if len(p)-i < 2 {
		return i, false
	}
	n := int(binary.LittleEndian.Uint16(p[i:]))
	i += 2
	if n > len(p)-i {
		return i, false
	}
	*dst = p[i : i+n : i+n]
	return i + n, true
}

// recordCompareParts returns a record body's flags, its compare block and
// the encoding of its trade type (a head byte of 0 is the empty one), or
// false when they do not decode.
func recordCompareParts(body []byte) (flags Flags, block, tradeType []byte, ok bool) {
	n, i := uvarintSlow(body, 1)
	f, i := uvarintSlow(body, i+int(n))
	if i+2 > len(body) || f > 0xffff {
		return 0, nil, nil, false
	}
	end := i + 2 + int(binary.LittleEndian.Uint16(body[i:]))
	if end >= len(body) {
		return 0, nil, nil, false
	}
	block = body[i+2 : end]
	h := int(body[end])
	switch {
	case h < headCommon:
		if end+1+h > len(body) {
			return 0, nil, nil, false
		}
		tradeType = body[end : end+1+h]
	case h < headDigits:
		tradeType = body[end : end+1]
	default:
		return 0, nil, nil, false // packed or long: left to the full decode
	}
	return Flags(f), block, tradeType, true
}
