package bill

import "time"

// shanghaiOffset is Asia/Shanghai's UTC offset (no daylight saving since
// 1991). Bill times carry no zone; they are Shanghai wall-clock times
// (pitfalls.md P6).
const shanghaiOffset = 8 * 60 * 60

// ParseTime parses "yyyy-MM-dd HH:mm:ss" (Asia/Shanghai) into Unix
// seconds without allocating. ok is false for anything else, including
// out-of-range fields such as month 13 or February 30.
func ParseTime(b []byte) (unix int64, ok bool) {
	if len(b) != 19 || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	s, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	return daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+s) - shanghaiOffset, true
}

// dayCache remembers the date part of the last time parsed: the rows of a
// bill are a day's, so nearly every time shares its date with the one
// before and only HH:mm:ss is left to read.
type dayCache struct {
	date [10]byte // "yyyy-MM-dd" of a valid time, when set
	base int64    // Unix seconds of the date's 00:00:00 Shanghai
	set  bool
}

// parse is ParseTime, reading only the clock when the date is the cached
// one (and caching the date otherwise).
func (c *dayCache) parse(b []byte) (int64, bool) {
	if !c.set || len(b) != 19 || string(b[:10]) != string(c.date[:]) {
		t, ok := ParseTime(b)
		if ok {
			copy(c.date[:], b[:10])
			c.base, c.set = t-int64(clockSeconds(b)), true
		}
		return t, ok
	}
	if b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	h0, h1, m0, m1, s0, s1 := b[11]-'0', b[12]-'0', b[14]-'0', b[15]-'0', b[17]-'0', b[18]-'0'
	if h0 > 9 || h1 > 9 || m0 > 9 || m1 > 9 || s0 > 9 || s1 > 9 {
		return 0, false
	}
	h, m, s := int(h0)*10+int(h1), int(m0)*10+int(m1), int(s0)*10+int(s1)
	if h > 23 || m > 59 || s > 59 {
		return 0, false
	}
	return c.base + int64(h*3600+m*60+s), true
}

// clockSeconds is the HH:mm:ss of a time ParseTime accepted, in seconds.
func clockSeconds(b []byte) int {
	d := func(i int) int { return int(b[i]-'0')*10 + int(b[i+1]-'0') }
	return d(11)*3600 + d(14)*60 + d(17)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d (proleptic
// Gregorian), Howard Hinnant's algorithm.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// DayNumber is the Asia/Shanghai calendar day of Unix time t, counted in
// days since 1970-01-01 (Shanghai).
func DayNumber(unix int64) int64 {
	s := unix + shanghaiOffset
	if s < 0 {
		return (s - 86399) / 86400
	}
	return s / 86400
}

// DayOf parses a bill date "yyyy-MM-dd" into its DayNumber.
func DayOf(date string) (int64, bool) {
	t, ok := ParseTime([]byte(date + " 00:00:00"))
	if !ok {
		return 0, false
	}
	return DayNumber(t), true
}

// FormatTime renders Unix seconds the way bills do, in Asia/Shanghai.
func FormatTime(unix int64) string {
	return time.Unix(unix, 0).In(time.FixedZone("Asia/Shanghai", shanghaiOffset)).Format(time.DateTime)
}

// FormatDay renders a DayNumber as yyyy-MM-dd.
func FormatDay(day int64) string {
	return time.Unix(day*86400, 0).UTC().Format(time.DateOnly)
}
