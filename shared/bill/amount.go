package bill

import (
	"errors"
	"fmt"
	"math"
)

// Money in a bill is yuan text: "12.34", "-0.01", "0". Amounts here are
// parsed as decimals straight from the bytes into int64 fen; no float ever
// touches them (pitfalls.md P7: float yuan→fen drifts, 19.90 became 19.89).

// FeeUnit is the integer unit of 手续费 (fees): 0.00001 yuan, which is
// 0.001 fen (one "milli-fen"). Bills print fees with 5 decimals
// ("0.00600"), so this unit holds every fee exactly; FeeFen rounds it to fen.
const FeeUnit = "0.00001 yuan (1/1000 fen)"

// FeeUnitsPerFen is how many fee units make one fen.
const FeeUnitsPerFen = 1000

// ErrAmount classifies amount text that is not a decimal yuan amount.
var ErrAmount = errors.New("bill: bad amount")

// ParseFen parses yuan text with at most two decimals into fen. It accepts
// an optional leading minus sign, digits, and an optional point followed by
// one or two digits. Anything else (empty text, spaces inside, exponent,
// a third decimal, thousands separators, overflow) wraps ErrAmount.
func ParseFen(b []byte) (int64, error) { return parseDecimal(b, 2) }

// ParseFee parses a 手续费 with at most five decimals into FeeUnit.
func ParseFee(b []byte) (int64, error) { return parseDecimal(b, 5) }

// FeeFen rounds a fee in FeeUnit to fen, halves away from zero.
func FeeFen(units int64) int64 {
	if units < 0 {
		return -((-units + FeeUnitsPerFen/2) / FeeUnitsPerFen)
	}
	return (units + FeeUnitsPerFen/2) / FeeUnitsPerFen
}

// fastDecimalDigits bounds the inputs parseDecimal reads without overflow
// checks: the result has at most len(b)+scale digits (every byte a digit,
// then zeros up to scale decimals), and 18 digits stay below
// math.MaxInt64 (about 9.2·10^18).
const fastDecimalDigits = 18

// parseDecimal reads a fixed-point decimal with at most scale decimals and
// returns it multiplied by 10^scale.
func parseDecimal(b []byte, scale int) (int64, error) {
	// "0.00" is most of a bill's amounts (the refund columns of every
	// payment row, most coupon columns): one comparison.
	if len(b) == 4 && b[0] == '0' && b[1] == '.' && b[2] == '0' && b[3] == '0' && scale >= 2 {
		return 0, nil
	}
	// Bill amounts are short ("12.34", "0.00600"): they take a loop without
	// overflow checks, which cannot overflow at this length. Anything the
	// fast loop does not accept (a long or malformed input) goes through the
	// general one below, which also builds the error.
	if len(b)+scale <= fastDecimalDigits {
		if v, ok := parseShortDecimal(b, scale); ok {
			return v, nil
		}
	}
	return parseDecimalSlow(b, scale)
}

// parseShortDecimal is parseDecimal's fast path for inputs of at most
// fastDecimalDigits−scale bytes: an optional minus sign, digits, optionally
// a point and 1 to scale decimals. ok is false for anything else.
func parseShortDecimal(b []byte, scale int) (v int64, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	i := 0
	for ; i < len(b); i++ {
		c := b[i] - '0'
		if c > 9 {
			break
		}
		v = v*10 + int64(c)
	}
	if i == 0 {
		return 0, false
	}
	decimals := 0
	if i < len(b) {
		if b[i] != '.' || i+1 == len(b) || len(b)-i-1 > scale {
			return 0, false
		}
		for i++; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 {
				return 0, false
			}
			v = v*10 + int64(c)
			decimals++
		}
	}
	for ; decimals < scale; decimals++ {
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseDecimalSlow is parseDecimal for any input, checking every step for
// overflow.
func parseDecimalSlow(b []byte, scale int) (int64, error) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	if i == len(b) {
		return 0, amountError(b)
	}
	var v int64
	digits := 0
	for ; i < len(b) && b[i] != '.'; i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, amountError(b)
		}
		if v > (math.MaxInt64-int64(c))/10 {
			return 0, amountError(b)
		}
		v = v*10 + int64(c)
		digits++
	}
	if digits == 0 {
		return 0, amountError(b) // ".5" and "-" are not amounts
	}
	decimals := 0
	if i < len(b) { // b[i] == '.'
		i++
		if i == len(b) {
			return 0, amountError(b) // "1." is not an amount
		}
		for ; i < len(b); i++ {
			c := b[i] - '0'
			if c > 9 || decimals == scale {
				return 0, amountError(b)
			}
			if v > (math.MaxInt64-int64(c))/10 {
				return 0, amountError(b)
			}
			v = v*10 + int64(c)
			decimals++
		}
	}
	for ; decimals < scale; decimals++ {
		if v > math.MaxInt64/10 {
			return 0, amountError(b)
		}
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, nil
}

func amountError(b []byte) error {
	return fmt.Errorf("%w: %q is not a yuan amount", ErrAmount, clip(b))
}

// clip bounds text quoted in errors.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// FormatYuan renders fen as yuan with two decimals ("-0.05").
func FormatYuan(fen int64) string {
	return formatFixed(fen, 2)
}

// FormatFee renders a fee in FeeUnit as yuan with five decimals.
func FormatFee(units int64) string { return formatFixed(units, 5) }

func formatFixed(v int64, scale int) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	var buf [32]byte
	i := len(buf)
	for d := 0; d < scale; d++ {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	i--
	buf[i] = '.'
	for {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}
