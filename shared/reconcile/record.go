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
// what the sort costs. Numbers take the bytes they need (about 55 bytes
// for a typical charge, against some 150 with fixed-width fields), in a
// way that decodes without per-byte loops: a nibble per number gives its
// length, and the number is one masked word load. Strings stay raw, a
// single copy each way. The sort key comes first, where a comparison reads
// it without decoding anything else.
//
// A record is a u16 little-endian length followed by the body:
//
//	kind u8 | uvarint key length | key |
//	5 bytes: the byte lengths (0-8) of the ten numbers below, a nibble each |
//	10 numbers, little-endian in as many bytes as they need: flags, then
//	  zigzag time, day − bill.DayNumber(time), total, payer, settlement,
//	  coupon, nocash, fee, line |
//	5 strings: txn, refund id, order no, trade type, status, each a head
//	  byte and what it announces (see putString): raw bytes, one of a few
//	  common values (SUCCESS, JSAPI...), or digits packed two per byte.
//
// Transaction and refund ids are digits (28 and 29-32 of them): packed,
// they take half the bytes, which shortens every copy, spill and read of
// the bill side (a charge went from about 86 to about 60 bytes).
//
// Day is stored relative to the day of Time, which is what it is on the
// bill side and for nearly every ledger entry: no byte at all. Runs live
// only as long as one reconciliation, so the layout can change freely from
// one version to the next.

// recordLenBytes is the size of a record's length prefix. Bodies are far
// below 64 KiB: the key and each string are at most maxKeyLen bytes.
const recordLenBytes = 2

// recordNums is how many numbers a record holds; numLenBytes the bytes of
// their lengths.
const (
	recordNums  = 10
	numLenBytes = recordNums / 2
)

// recordBound is an upper bound of e's encoded size, length included. The
// numbers count 8 bytes each: they are written as whole words.
func recordBound(e *Entry) int {
	return recordLenBytes + 1 + binary.MaxVarintLen16 + len(e.Key) + numLenBytes + 8*recordNums +
		5*stringHeadBytes + len(e.TxnID) + len(e.RefundID) + len(e.OrderNo) + len(e.TradeType) + len(e.Status)
}

// maxRecordBound is recordBound of the largest entry a record holds (key
// and strings of maxKeyLen bytes).
const maxRecordBound = recordLenBytes + 1 + binary.MaxVarintLen16 + numLenBytes + 8*recordNums + 5*stringHeadBytes + 6*maxKeyLen

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
	lensAt := i
	i += numLenBytes
	nums := [recordNums]uint64{uint64(e.Flags), zigzag(e.Time), zigzag(e.Day - bill.DayNumber(e.Time)), zigzag(e.Total),
		zigzag(e.Payer), zigzag(e.Settlement), zigzag(e.Coupon), zigzag(e.NoCash), zigzag(e.Fee), zigzag(e.Line)}
	var lens uint64 // the nibbles, gathered in a register
	for k, u := range nums {
		// The whole word is written; the next field overwrites what is
		// past the bytes that count.
		binary.LittleEndian.PutUint64(p[i:], u)
		n := (bits.Len64(u) + 7) >> 3
		lens |= uint64(n) << (4 * k)
		i += n
	}
	binary.LittleEndian.PutUint32(p[lensAt:], uint32(lens))
	p[lensAt+4] = byte(lens >> 32)
	i = putString(p, i, e.TxnID)
	i = putString(p, i, e.RefundID)
	i = putString(p, i, e.OrderNo)
	i = putString(p, i, e.TradeType)
	i = putString(p, i, e.Status)
	binary.LittleEndian.PutUint16(p, uint16(i-recordLenBytes))
	return b[:start+i], nil
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
	switch {
	case n >= minPacked && n <= maxPacked && allDigits(s):
		p[i] = byte(headDigits + n)
		return packDigits(p, i+1, s)
	case n < headCommon:
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

// allDigits reports whether s holds only '0'-'9', eight bytes at a time.
func allDigits(s []byte) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !digitsWord(binary.LittleEndian.Uint64(s[i:])) {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i]-'0' > 9 {
			return false
		}
	}
	return true
}

// digitsWord reports whether the eight bytes of v are all '0'-'9': each
// high nibble is 3, and adding 6 to the low nibble does not carry.
func digitsWord(v uint64) bool {
	const hi, six = 0xf0f0f0f0f0f0f0f0, 0x0606060606060606
	return v&hi == 0x3030303030303030 && (v+six)&hi == 0x3030303030303030
}

// packDigits writes the digits of s two per byte at p[i] and returns the
// index after them. Eight digits become four bytes in a few word
// operations.
func packDigits(p []byte, i int, s []byte) int {
	k := 0
	for ; k+8 <= len(s); k += 8 {
		x := binary.LittleEndian.Uint64(s[k:]) & 0x0f0f0f0f0f0f0f0f
		// Each 16-bit lane holds digits d0 (low byte) and d1: make its
		// low byte d0<<4|d1, then gather the four low bytes.
		x = (x&0x00ff00ff00ff00ff)<<4 | (x>>8)&0x00ff00ff00ff00ff
		x = (x | x>>8) & 0x0000ffff0000ffff
		x = (x | x>>16) & 0x00000000ffffffff
		binary.LittleEndian.PutUint32(p[i:], uint32(x))
		i += 4
	}
	for ; k < len(s); k += 2 {
		b := (s[k] - '0') << 4
		if k+1 < len(s) {
			b |= s[k+1] - '0'
		} else {
			b |= 0xf
		}
		p[i] = b
		i++
	}
	return i
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
	if len(p)-i < numLenBytes {
		return errCorruptRecord
	}
	lens := uint64(binary.LittleEndian.Uint32(p[i:])) | uint64(p[i+4])<<32
	i += numLenBytes
	var nums [recordNums]uint64
	for k := range nums {
		n := int(lens>>(4*k)) & 0xf
		switch {
		case len(p)-i >= 8 && n <= 8:
			nums[k] = binary.LittleEndian.Uint64(p[i:]) & (1<<(8*n) - 1)
		case len(p)-i >= n:
			var w [8]byte
			copy(w[:], p[i:i+n])
			nums[k] = binary.LittleEndian.Uint64(w[:])
		default:
			return errCorruptRecord
		}
		i += n
	}
	e.Flags = Flags(nums[0])
	e.Time = unzigzag(nums[1])
	e.Day = unzigzag(nums[2]) + bill.DayNumber(e.Time)
	e.Total, e.Payer, e.Settlement = unzigzag(nums[3]), unzigzag(nums[4]), unzigzag(nums[5])
	e.Coupon, e.NoCash, e.Fee, e.Line = unzigzag(nums[6]), unzigzag(nums[7]), unzigzag(nums[8]), unzigzag(nums[9])
	for _, dst := range [...]*[]byte{&e.TxnID, &e.RefundID, &e.OrderNo, &e.TradeType, &e.Status} {
		if i >= len(p) {
			return errCorruptRecord
		}
		h := int(p[i])
		i++
		switch {
		case h < headCommon:
			if h > len(p)-i {
				return errCorruptRecord
			}
			*dst = p[i : i+h : i+h]
			i += h
		case h < headDigits:
			v, ok := commonValue(h - headCommon)
			if !ok {
				return errCorruptRecord
			}
			at := len(*buf)
			*buf = append(*buf, v...)
			*dst = (*buf)[at:len(*buf):len(*buf)]
		case h < headLongRaw:
			n := h - headDigits
			m := (n + 1) / 2
			if m > len(p)-i {
				return errCorruptRecord
			}
			at := len(*buf)
			var ok bool
			if *buf, ok = unpackDigits(*buf, p[i:i+m], n); !ok || n < minPacked {
				return errCorruptRecord
			}
			*dst = (*buf)[at : at+n : at+n]
			i += m
		default:
			if len(p)-i < 2 {
				return errCorruptRecord
			}
			n := int(binary.LittleEndian.Uint16(p[i:]))
			i += 2
			if n > len(p)-i {
				return errCorruptRecord
			}
			*dst = p[i : i+n : i+n]
			i += n
		}
	}
	if i != len(p) {
		return errCorruptRecord
	}
	return nil
}
