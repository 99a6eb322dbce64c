package cdc

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// row builds a Row from one decoded binlog image. vals has one entry per column (the caller
// checked the count).
func (t *table) row(vals []any) Row {
	r := make(Row, len(t.cols))
	for i := range t.cols {
		r[t.names[i]] = t.cols[i].value(vals[i])
	}
	return r
}

// value normalises one decoded binlog value to the types Row documents.
func (c *column) value(v any) any {
	if v == nil {
		return nil
	}
	switch c.kind {
	case kindInt:
		switch x := v.(type) {
		case int64:
			return v
		case int8:
			return int64(x)
		case int16:
			return int64(x)
		case int32:
			return int64(x)
		case int:
			return int64(x)
		case uint8:
			return int64(x)
		case uint16:
			return int64(x)
		case uint32:
			return int64(x)
		case uint64:
			return int64(x)
		}
	case kindUint:
		// Without binlog_row_metadata the decoder does not know the signedness and returns
		// signed integers: reinterpret the bits at the column's width.
		switch x := v.(type) {
		case int8:
			return uint64(uint8(x))
		case int16:
			return uint64(uint16(x))
		case int32:
			if c.int24 {
				return uint64(uint32(x) & 0xFFFFFF)
			}
			return uint64(uint32(x))
		case int64:
			return uint64(x)
		case uint8:
			return uint64(x)
		case uint16:
			return uint64(x)
		case uint32:
			return uint64(x)
		case uint64:
			return v
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			return v
		case float32:
			return float32Value(x)
		}
	case kindDecimal:
		switch x := v.(type) {
		case decimal.Decimal:
			return v
		case string:
			if d, err := decimal.NewFromString(x); err == nil {
				return d
			}
		}
	case kindDate:
		if s, ok := v.(string); ok {
			return parseDate(s)
		}
	case kindDateTime, kindTimestamp:
		switch x := v.(type) {
		case time.Time:
			if x.Location() == time.UTC {
				return v // DATETIME: already UTC; no new allocation
			}
			return x.UTC() // TIMESTAMP: decoded in the local zone
		case string:
			return parseDateTime(x)
		}
	case kindYear:
		switch x := v.(type) {
		case int:
			return int64(x)
		}
	case kindString:
		switch x := v.(type) {
		case string:
			return v
		case []byte:
			return string(x)
		}
	case kindBytes:
		switch x := v.(type) {
		case string:
			return c.pad([]byte(x))
		case []byte:
			if len(x) < c.padTo {
				return c.pad(x)
			}
			return v
		}
	case kindEnum:
		if i, ok := v.(int64); ok {
			if i >= 1 && int(i) <= len(c.values) {
				return c.values[i-1]
			}
			return "" // 0: the "invalid value" member MySQL stores for bad input
		}
	case kindSet:
		if m, ok := v.(int64); ok {
			return setNames(c.values, uint64(m))
		}
	case kindBit:
		if i, ok := v.(int64); ok {
			n := (c.bits + 7) / 8
			b := make([]byte, n)
			for k := n - 1; k >= 0; k-- {
				b[k] = byte(i)
				i >>= 8
			}
			return b
		}
	case kindJSON:
		switch x := v.(type) {
		case []byte:
			return decodeJSON(x)
		case string:
			return decodeJSON([]byte(x))
		}
	case kindTime:
		if _, ok := v.(string); ok {
			return v
		}
	}
	if b, ok := v.([]byte); ok {
		return append([]byte(nil), b...)
	}
	return v
}

// float32Value widens a FLOAT through the shortest decimal that round-trips the float32, so
// FLOAT 1.1 is 1.1 and not 1.100000023841858.
func float32Value(x float32) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return f
}

// pad restores the trailing zero bytes of a BINARY(n) value, which the binlog strips.
func (c *column) pad(b []byte) []byte {
	if len(b) >= c.padTo {
		return b
	}
	p := make([]byte, c.padTo)
	copy(p, b)
	return p
}

func setNames(values []string, mask uint64) string {
	if mask == 0 {
		return ""
	}
	var b strings.Builder
	for i, name := range values {
		if i < 64 && mask&(1<<uint(i)) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	return b.String()
}

// decodeJSON decodes a JSON document; an empty or invalid one is kept as its text (MariaDB
// checks JSON with a constraint that can be dropped).
func decodeJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	return v
}

// parseDate turns "YYYY-MM-DD" into midnight UTC; zero or partial-zero dates stay strings.
func parseDate(s string) any {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return s
	}
	y, ok1 := atoi(s[0:4])
	m, ok2 := atoi(s[5:7])
	d, ok3 := atoi(s[8:10])
	if !ok1 || !ok2 || !ok3 || m == 0 || d == 0 {
		return s
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
}

// parseDateTime turns "YYYY-MM-DD hh:mm:ss[.frac]" into UTC time; zero or partial-zero dates
// stay strings.
func parseDateTime(s string) any {
	if len(s) < 19 {
		return s
	}
	if d, ok := parseDate(s[:10]).(time.Time); ok && s[10] == ' ' && s[13] == ':' && s[16] == ':' {
		h, ok1 := atoi(s[11:13])
		mi, ok2 := atoi(s[14:16])
		se, ok3 := atoi(s[17:19])
		ns := 0
		ok4 := true
		if len(s) > 19 {
			if s[19] != '.' || len(s) > 29 {
				return s
			}
			frac := s[20:]
			ns, ok4 = atoi(frac)
			for i := len(frac); i < 9; i++ {
				ns *= 10
			}
		}
		if ok1 && ok2 && ok3 && ok4 {
			return d.Add(time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute +
				time.Duration(se)*time.Second + time.Duration(ns))
		}
	}
	return s
}

func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
