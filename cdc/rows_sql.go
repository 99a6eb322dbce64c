package cdc

import (
	"fmt"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// SQLTable describes the columns of a query's result so that rows read with SQL over the text
// protocol (a sweep's query) normalise to the Row values a binlog change of the same columns
// carries (see Row). Reader.Snapshot does the same for whole tables.
//
// The text protocol delivers integers as int64/uint64, FLOAT/DOUBLE as float64, NULL as nil
// and everything else as text ([]byte or string). TIMESTAMP text is read as UTC, so the
// session that reads it must run with time_zone = '+00:00'.
type SQLTable struct {
	// Columns are the column names in order: Row expects one value per column, in this order.
	Columns []string
	cols    []column
}

// ResultColumns describes the columns of an arbitrary query's result from the protocol's
// field metadata (a sweep's query may join tables or compute columns). It normalises like the
// binlog path except that a MariaDB JSON column (a LONGTEXT with a CHECK constraint the result
// does not carry) stays a string.
func ResultColumns(fields []*mysql.Field) *SQLTable {
	t := &SQLTable{Columns: make([]string, len(fields)), cols: make([]column, len(fields))}
	for i, f := range fields {
		t.Columns[i] = string(f.Name)
		t.cols[i] = fieldColumn(f)
	}
	return t
}

// fieldColumn maps a result field to the column kind its values normalise as.
func fieldColumn(f *mysql.Field) column {
	c := column{name: string(f.Name)}
	unsigned := f.Flag&mysql.UNSIGNED_FLAG != 0
	binary := f.Charset == 63 // the "binary" character set: bytes, not text
	switch f.Type {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG:
		c.kind = kindInt
		if unsigned {
			c.kind = kindUint
		}
	case mysql.MYSQL_TYPE_YEAR:
		c.kind = kindYear
	case mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		c.kind = kindFloat
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL:
		c.kind = kindDecimal
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		c.kind = kindDate
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		c.kind = kindDateTime
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		c.kind = kindTimestamp
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		c.kind = kindTime
	case mysql.MYSQL_TYPE_BIT:
		c.kind = kindBit
	case mysql.MYSQL_TYPE_JSON:
		c.kind = kindJSON
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		c.kind = kindString
	case mysql.MYSQL_TYPE_GEOMETRY:
		c.kind = kindBytes
	default: // VARCHAR, VAR_STRING, STRING, BLOB types; ENUM/SET arrive as STRING with a flag
		c.kind = kindString
		if binary && f.Flag&(mysql.ENUM_FLAG|mysql.SET_FLAG) == 0 {
			c.kind = kindBytes
		}
	}
	return c
}

// Row normalises one row read over the text protocol: vals has one value per Columns entry
// (nil, int64, uint64, float64, []byte or string, as go-mysql's client or database/sql
// driver returns them). Byte slices are copied, so the caller may reuse its buffers.
func (t *SQLTable) Row(vals []any) (Row, error) {
	if len(vals) != len(t.cols) {
		return nil, fmt.Errorf("result row has %d values, the result has %d columns: %w",
			len(vals), len(t.cols), ErrSchemaMismatch)
	}
	r := make(Row, len(t.cols))
	for i := range t.cols {
		r[t.Columns[i]] = t.cols[i].sqlValue(vals[i])
	}
	return r, nil
}

// sqlValue normalises one text-protocol value to the type the binlog path gives the column.
func (c *column) sqlValue(v any) any {
	b, isBytes := v.([]byte)
	switch c.kind {
	case kindEnum, kindSet, kindString:
		if isBytes {
			return string(b) // the text protocol sends ENUM and SET members by name
		}
		return v
	case kindBytes, kindBit, kindOther:
		switch x := v.(type) {
		case []byte:
			return append([]byte(nil), x...)
		case string:
			return []byte(x)
		}
		return c.value(v)
	case kindDecimal, kindDate, kindDateTime, kindTimestamp, kindTime:
		if isBytes {
			return c.value(string(b))
		}
	case kindYear:
		if u, ok := v.(uint64); ok {
			return int64(u) // the protocol flags YEAR unsigned
		}
		fallthrough
	case kindInt, kindUint, kindFloat:
		s, isString := v.(string)
		if isBytes {
			s, isString = string(b), true
		}
		if isString {
			return c.parseNumber(s)
		}
	}
	return c.value(v)
}

// parseNumber reads a number sent as text (a driver that does not type integers).
func (c *column) parseNumber(s string) any {
	var err error
	var out any
	switch c.kind {
	case kindUint:
		out, err = strconv.ParseUint(s, 10, 64)
	case kindFloat:
		out, err = strconv.ParseFloat(s, 64)
	default:
		out, err = strconv.ParseInt(s, 10, 64)
	}
	if err != nil {
		return s
	}
	return out
}
