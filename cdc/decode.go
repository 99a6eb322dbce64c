package cdc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/shopspring/decimal"
)

// The fast decoder turns a rows event's row images straight into Rows, for tables whose
// columns all have binlog types it knows (integers, FLOAT/DOUBLE, DECIMAL up to 18 digits,
// DATE, DATETIME(n), TIMESTAMP(n), YEAR, strings, ENUM, SET, blobs, MariaDB JSON, BIT). It
// produces exactly the values the go-mysql decoder plus (*column).value produce (the tests
// compare both), without the intermediate []any, the double boxing and DECIMAL's detour
// through a string: go-mysql's decoding is the ingest bottleneck (LIMITS.md). Other tables
// take go-mysql's decoder.

// errDecode marks a row image the fast decoder cannot read: a corrupt event or a bug, never
// fixed by reconnecting.
var errDecode = errors.New("cannot decode row image")

// fastOK reports whether every column of tm can be decoded by decodeImages.
func fastOK(tm *replication.TableMapEvent, t *table) bool {
	for i, tp := range tm.ColumnType {
		meta := tm.ColumnMeta[i]
		switch tp {
		case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
			mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_DATE,
			mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_YEAR, mysql.MYSQL_TYPE_VARCHAR,
			mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_BIT:
		case mysql.MYSQL_TYPE_NEWDECIMAL:
			if meta>>8 > 18 {
				return false
			}
		case mysql.MYSQL_TYPE_STRING:
			switch realType(meta) {
			case mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
			default:
				return false
			}
		default:
			return false
		}
		switch t.cols[i].kind {
		case kindTime, kindOther:
			return false
		}
	}
	return true
}

// realType and strLen unpack a MYSQL_TYPE_STRING column's metadata (CHAR, BINARY, ENUM, SET).
func realType(meta uint16) byte {
	if meta >= 256 {
		b0 := uint8(meta >> 8)
		if b0&0x30 != 0x30 {
			return b0 | 0x30
		}
		return b0
	}
	return mysql.MYSQL_TYPE_STRING
}

func strLen(meta uint16) int {
	if meta >= 256 {
		b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
		if b0&0x30 != 0x30 {
			return int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
		}
		return int(meta & 0xFF)
	}
	return int(meta)
}

// decodeImages decodes all row images of a rows event body (data after the header, at pos).
// update events have two images per row (before, after).
func (t *table) decodeImages(tm *replication.TableMapEvent, data []byte, update bool) ([]Row, error) {
	ncol := len(t.cols)
	bm := (ncol + 7) / 8
	out := make([]Row, 0, 8)
	pos := 0
	for pos < len(data) {
		r, n, err := t.decodeImage(tm, data[pos:], bm)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		pos += n
	}
	if update && len(out)%2 != 0 {
		return nil, fmt.Errorf("table %s.%s: update event with %d images: %w", t.schema, t.name, len(out), errDecode)
	}
	return out, nil
}

func (t *table) decodeImage(tm *replication.TableMapEvent, data []byte, bm int) (r Row, n int, err error) {
	defer func() {
		if p := recover(); p != nil { // a short buffer: corrupt data, not a crash
			err = fmt.Errorf("table %s.%s: %v: %w", t.schema, t.name, p, errDecode)
		}
	}()
	nulls := data[:bm]
	pos := bm
	r = make(Row, len(t.cols))
	for i := range t.cols {
		c := &t.cols[i]
		if nulls[i>>3]&(1<<(uint(i)&7)) != 0 {
			r[t.names[i]] = nil
			continue
		}
		v, k, err := c.decode(tm.ColumnType[i], tm.ColumnMeta[i], data[pos:])
		if err != nil {
			return nil, 0, fmt.Errorf("table %s.%s column %s: %w", t.schema, t.name, c.name, err)
		}
		r[t.names[i]] = v
		pos += k
	}
	return r, pos, nil
}

// decode reads one non-NULL value of binlog type tp and returns it normalised as
// (*column).value would, with the number of bytes read.
func (c *column) decode(tp byte, meta uint16, d []byte) (any, int, error) {
	switch tp {
	case mysql.MYSQL_TYPE_TINY:
		return c.integer(uint64(d[0]), 8), 1, nil
	case mysql.MYSQL_TYPE_SHORT:
		return c.integer(uint64(binary.LittleEndian.Uint16(d)), 16), 2, nil
	case mysql.MYSQL_TYPE_INT24:
		return c.integer(uint64(d[0])|uint64(d[1])<<8|uint64(d[2])<<16, 24), 3, nil
	case mysql.MYSQL_TYPE_LONG:
		return c.integer(uint64(binary.LittleEndian.Uint32(d)), 32), 4, nil
	case mysql.MYSQL_TYPE_LONGLONG:
		return c.integer(binary.LittleEndian.Uint64(d), 64), 8, nil
	case mysql.MYSQL_TYPE_FLOAT:
		return float32Value(math.Float32frombits(binary.LittleEndian.Uint32(d))), 4, nil
	case mysql.MYSQL_TYPE_DOUBLE:
		return math.Float64frombits(binary.LittleEndian.Uint64(d)), 8, nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		return decodeDecimal(d, int(meta>>8), int(meta&0xFF))
	case mysql.MYSQL_TYPE_DATE:
		v := uint32(d[0]) | uint32(d[1])<<8 | uint32(d[2])<<16
		y, m, day := int(v/(16*32)), int(v/32%16), int(v%32)
		if m == 0 || day == 0 {
			if v == 0 {
				return "0000-00-00", 3, nil
			}
			return fmt.Sprintf("%04d-%02d-%02d", y, m, day), 3, nil
		}
		return time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC), 3, nil
	case mysql.MYSQL_TYPE_DATETIME2:
		return decodeDatetime2(d, int(meta))
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		return decodeTimestamp2(d, int(meta))
	case mysql.MYSQL_TYPE_YEAR:
		if d[0] == 0 {
			return int64(0), 1, nil
		}
		return int64(d[0]) + 1900, 1, nil
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		b, n := lenString(d, int(meta))
		return c.text(b), n, nil
	case mysql.MYSQL_TYPE_STRING:
		switch realType(meta) {
		case mysql.MYSQL_TYPE_ENUM:
			var i int64
			n := int(meta & 0xFF)
			switch n {
			case 1:
				i = int64(d[0])
			case 2:
				i = int64(binary.LittleEndian.Uint16(d))
			default:
				return nil, 0, fmt.Errorf("enum pack length %d: %w", n, errDecode)
			}
			return c.value(i), n, nil
		case mysql.MYSQL_TYPE_SET:
			n := int(meta & 0xFF)
			if n < 1 || n > 8 {
				return nil, 0, fmt.Errorf("set pack length %d: %w", n, errDecode)
			}
			var m uint64
			for k := n - 1; k >= 0; k-- {
				m = m<<8 | uint64(d[k])
			}
			return setNames(c.values, m), n, nil
		}
		b, n := lenString(d, strLen(meta))
		return c.text(b), n, nil
	case mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_GEOMETRY:
		var l, n int
		switch meta {
		case 1:
			l, n = int(d[0]), 1
		case 2:
			l, n = int(binary.LittleEndian.Uint16(d)), 2
		case 3:
			l, n = int(d[0])|int(d[1])<<8|int(d[2])<<16, 3
		case 4:
			l, n = int(binary.LittleEndian.Uint32(d)), 4
		default:
			return nil, 0, fmt.Errorf("blob pack length %d: %w", meta, errDecode)
		}
		return c.text(d[n : n+l]), n + l, nil
	case mysql.MYSQL_TYPE_BIT:
		nbits := int(meta>>8)*8 + int(meta&0xFF)
		n := (nbits + 7) / 8
		var v uint64
		for k := 0; k < n; k++ {
			v = v<<8 | uint64(d[k])
		}
		return c.value(int64(v)), n, nil
	}
	return nil, 0, fmt.Errorf("binlog type %d: %w", tp, errDecode)
}

// integer returns an integer of the given width as int64 or, for UNSIGNED columns, uint64.
func (c *column) integer(raw uint64, width int) any {
	if c.kind == kindUint {
		return raw
	}
	shift := 64 - width
	return int64(raw<<shift) >> shift
}

// text returns string bytes as the column's kind wants them: string, []byte (aliasing the
// event, as go-mysql does), or decoded JSON.
func (c *column) text(b []byte) any {
	switch c.kind {
	case kindString:
		return string(b)
	case kindJSON:
		return decodeJSON(b)
	}
	return c.pad(b)
}

func lenString(d []byte, maxLen int) ([]byte, int) {
	if maxLen < 256 {
		l := int(d[0])
		return d[1 : 1+l], 1 + l
	}
	l := int(binary.LittleEndian.Uint16(d))
	return d[2 : 2+l], 2 + l
}

var dig2bytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

var pow10 = [10]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

// decodeDecimal reads MySQL's binary DECIMAL(prec ≤ 18, scale) into the decimal.Decimal that
// decimal.NewFromString gives for the same digits.
func decodeDecimal(d []byte, prec, scale int) (any, int, error) {
	intg := prec - scale
	intg0, intg0x := intg/9, intg%9
	frac0, frac0x := scale/9, scale%9
	size := intg0*4 + dig2bytes[intg0x] + frac0*4 + dig2bytes[frac0x]
	if len(d) < size || size == 0 {
		return nil, 0, fmt.Errorf("decimal(%d,%d): %w", prec, scale, errDecode)
	}
	var mask byte
	neg := d[0]&0x80 == 0
	if neg {
		mask = 0xFF
	}
	pos := 0
	var coef uint64
	read := func(nbytes, digits int) {
		var v uint64
		for k := 0; k < nbytes; k++ {
			b := d[pos+k] ^ mask
			if pos+k == 0 {
				b ^= 0x80 // the sign bit
			}
			v = v<<8 | uint64(b)
		}
		pos += nbytes
		coef = coef*pow10[digits] + v
	}
	read(dig2bytes[intg0x], intg0x)
	for i := 0; i < intg0; i++ {
		read(4, 9)
	}
	for i := 0; i < frac0; i++ {
		read(4, 9)
	}
	read(dig2bytes[frac0x], frac0x)
	v := int64(coef)
	if neg {
		v = -v
	}
	return decimal.New(v, int32(-scale)), size, nil
}

func fracPart(d []byte, dec int) (frac int, n int) {
	switch dec {
	case 1, 2:
		return int(d[0]) * 10000, 1
	case 3, 4:
		return int(binary.BigEndian.Uint16(d)) * 100, 2
	case 5, 6:
		return int(d[0])<<16 | int(d[1])<<8 | int(d[2]), 3
	}
	return 0, 0
}

// decodeDatetime2 reads DATETIME(dec): time.Time in UTC, or go-mysql's string for zero dates.
func decodeDatetime2(d []byte, dec int) (any, int, error) {
	intPart := int64(d[0])<<32 | int64(d[1])<<24 | int64(d[2])<<16 | int64(d[3])<<8 | int64(d[4]) - 0x8000000000
	frac, fn := fracPart(d[5:], dec)
	n := 5 + fn
	if intPart == 0 {
		return zeroTime(frac, dec), n, nil
	}
	tmp := intPart<<24 + int64(frac)
	if tmp < 0 {
		tmp = -tmp
	}
	ymdhms := tmp >> 24
	ymd := ymdhms >> 17
	ym := ymd >> 5
	hms := ymdhms % (1 << 17)
	day, month, year := int(ymd%(1<<5)), int(ym%13), int(ym/13)
	second, minute, hour := int(hms%(1<<6)), int((hms>>6)%(1<<6)), int(hms>>12)
	if month == 0 || day == 0 {
		s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", year, month, day, hour, minute, second)
		if dec > 0 {
			s += fmt.Sprintf(".%06d", frac)[:dec+1]
		}
		return s, n, nil
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, frac*1000, time.UTC), n, nil
}

// decodeTimestamp2 reads TIMESTAMP(dec) as UTC time, or go-mysql's string for zero.
func decodeTimestamp2(d []byte, dec int) (any, int, error) {
	sec := int64(binary.BigEndian.Uint32(d))
	frac, fn := fracPart(d[4:], dec)
	if sec == 0 {
		return zeroTime(frac, dec), 4 + fn, nil
	}
	return time.Unix(sec, int64(frac)*1000).UTC(), 4 + fn, nil
}

func zeroTime(frac, dec int) string {
	if dec == 0 {
		return "0000-00-00 00:00:00"
	}
	return "0000-00-00 00:00:00" + fmt.Sprintf(".%06d", frac)[:dec+1]
}

// fullImage reports whether a column bitmap names every column (binlog_row_image=FULL).
func fullImage(bitmap []byte, ncol int) bool {
	n := 0
	for _, b := range bitmap {
		n += bits.OnesCount8(b)
	}
	return n >= ncol
}
