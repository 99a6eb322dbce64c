package rules

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Typed-dynamic operators. With a map env expr sees every column as `any`, and its own runtime
// operators know nothing of decimal.Decimal (DECIMAL columns) and little of mixed int/uint/float.
// The loader rewrites each comparison and arithmetic operator whose operands are not both
// literals into a call of one of these functions (see patch.go), so `new.amount > 1000`,
// `new.due_date < commit_time` and `new.price * 1.19` do what they say.
//
// Rules: numbers of any Go width compare and combine exactly (int64 with uint64 without
// overflow; a decimal on either side makes the operation decimal; a float with an integer is
// float). time.Time compares with time.Time, and with a string holding a date or datetime.
// NULL equals only NULL; ordering or arithmetic on NULL is an ErrNull error.

type numKind uint8

const (
	kNone numKind = iota
	kInt
	kUint
	kFloat
	kDec
)

// number is a classified numeric value.
type number struct {
	k numKind
	i int64
	u uint64
	f float64
	d decimal.Decimal
}

// num classifies v as a number (k == kNone if it is not one).
func num(v any) number {
	switch x := v.(type) {
	case int:
		return number{k: kInt, i: int64(x)}
	case int64:
		return number{k: kInt, i: x}
	case int32:
		return number{k: kInt, i: int64(x)}
	case int16:
		return number{k: kInt, i: int64(x)}
	case int8:
		return number{k: kInt, i: int64(x)}
	case uint64:
		return number{k: kUint, u: x}
	case uint:
		return number{k: kUint, u: uint64(x)}
	case uint32:
		return number{k: kUint, u: uint64(x)}
	case uint16:
		return number{k: kUint, u: uint64(x)}
	case uint8:
		return number{k: kUint, u: uint64(x)}
	case float64:
		return number{k: kFloat, f: x}
	case float32:
		return number{k: kFloat, f: float64(x)}
	case decimal.Decimal:
		return number{k: kDec, d: x}
	case *decimal.Decimal:
		if x != nil {
			return number{k: kDec, d: *x}
		}
	}
	return number{}
}

func (n number) dec() decimal.Decimal {
	switch n.k {
	case kInt:
		return decimal.NewFromInt(n.i)
	case kUint:
		return decimal.NewFromUint64(n.u)
	case kFloat:
		return decimal.NewFromFloat(n.f)
	}
	return n.d
}

func (n number) float() float64 {
	switch n.k {
	case kInt:
		return float64(n.i)
	case kUint:
		return float64(n.u)
	case kDec:
		return n.d.InexactFloat64()
	}
	return n.f
}

// scaled returns c and e with n = c·10^e exactly, when c fits comfortably in an int64 (no
// allocation: the fast path for DECIMAL columns compared with integers and other decimals).
func (n number) scaled() (int64, int32, bool) {
	switch n.k {
	case kInt:
		return n.i, 0, true
	case kDec:
		if n.d.NumDigits() <= 15 {
			return n.d.CoefficientInt64(), n.d.Exponent(), true
		}
	}
	return 0, 0, false
}

var pow10 = [...]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
	1e15, 1e16, 1e17, 1e18}

// cmpScaled compares a·10^ea with b·10^eb; ok is false when scaling would overflow.
func cmpScaled(a int64, ea int32, b int64, eb int32) (int, bool) {
	if ea > eb {
		r, ok := cmpScaled(b, eb, a, ea)
		return -r, ok
	}
	s := int(eb) - int(ea)
	if s >= len(pow10) {
		return 0, false
	}
	p := pow10[s]
	if b > math.MaxInt64/p || b < math.MinInt64/p {
		return 0, false
	}
	return cmpInt(a, b*p), true
}

// compare returns -1, 0 or 1, or an error when a and b have no order.
func compare(a, b any) (int, error) {
	if a == nil || b == nil {
		return 0, fmt.Errorf("compare %s with %s: %w", typeName(a), typeName(b), ErrNull)
	}
	na, nb := num(a), num(b)
	if na.k != kNone && nb.k != kNone {
		return compareNum(na, nb), nil
	}
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return strings.Compare(x, y), nil
		case []byte:
			return strings.Compare(x, string(y)), nil
		case time.Time:
			tx, err := parseTimeString(x)
			if err != nil {
				return 0, err
			}
			return tx.Compare(y), nil
		}
	case time.Time:
		switch y := b.(type) {
		case time.Time:
			return x.Compare(y), nil
		case string:
			ty, err := parseTimeString(y)
			if err != nil {
				return 0, err
			}
			return x.Compare(ty), nil
		}
	case time.Duration:
		if y, ok := b.(time.Duration); ok {
			return cmpInt(int64(x), int64(y)), nil
		}
	case []byte:
		switch y := b.(type) {
		case []byte:
			return bytes.Compare(x, y), nil
		case string:
			return strings.Compare(string(x), y), nil
		}
	case bool:
		if y, ok := b.(bool); ok && x == y {
			return 0, nil
		}
	}
	return 0, fmt.Errorf("compare %s with %s: %w", typeName(a), typeName(b), ErrType)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareNum(a, b number) int {
	switch {
	case a.k == kInt && b.k == kInt:
		return cmpInt(a.i, b.i)
	case a.k == kUint && b.k == kUint:
		switch {
		case a.u < b.u:
			return -1
		case a.u > b.u:
			return 1
		}
		return 0
	case a.k == kInt && b.k == kUint:
		if a.i < 0 || b.u > math.MaxInt64 {
			return -1
		}
		return cmpInt(a.i, int64(b.u))
	case a.k == kUint && b.k == kInt:
		if b.i < 0 || a.u > math.MaxInt64 {
			return 1
		}
		return cmpInt(int64(a.u), b.i)
	case a.k == kDec || b.k == kDec:
		if ca, ea, ok := a.scaled(); ok {
			if cb, eb, ok := b.scaled(); ok {
				if r, ok := cmpScaled(ca, ea, cb, eb); ok {
					return r
				}
			}
		}
		return a.dec().Cmp(b.dec())
	}
	x, y := a.float(), b.float()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// equal is == : NULL equals only NULL; numbers compare by value across types; times by instant.
func equal(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch a.(type) {
	case string, time.Time, []byte, time.Duration, bool:
		c, err := compare(a, b)
		return err == nil && c == 0
	}
	if na := num(a); na.k != kNone {
		nb := num(b)
		if nb.k == kNone {
			return false
		}
		return compareNum(na, nb) == 0
	}
	return reflect.DeepEqual(a, b)
}

// typeName names a value's type in messages ("NULL" for nil).
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NULL"
	case decimal.Decimal:
		return "decimal"
	case time.Time:
		return "time"
	case time.Duration:
		return "duration"
	case []byte:
		return "bytes"
	}
	return fmt.Sprintf("%T", v)
}

// Format renders a value the way keys, slots and string concatenation see it: integers and
// decimals exactly, a DATE (midnight UTC) as 2006-01-02, another time as RFC 3339 (UTC, with
// fractional seconds when present), bytes as text, NULL as "".
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case decimal.Decimal:
		return x.String()
	case time.Time:
		if isDate(x) {
			return x.Format(time.DateOnly)
		}
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	switch n := num(v); n.k {
	case kInt:
		return strconv.FormatInt(n.i, 10)
	case kUint:
		return strconv.FormatUint(n.u, 10)
	case kFloat:
		return strconv.FormatFloat(n.f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// parseTimeString reads a date or datetime literal compared with a time value: RFC 3339,
// "2006-01-02 15:04:05[.fff]" or "2006-01-02" (both UTC, like cdc's DATE and DATETIME).
func parseTimeString(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("compare time with string %q (not a date or datetime): %w", s, ErrType)
}
