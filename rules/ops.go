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

// num classifies v as a number.
func num(v any) (k numKind, i int64, u uint64, f float64, d decimal.Decimal) {
	switch x := v.(type) {
	case int:
		return kInt, int64(x), 0, 0, d
	case int64:
		return kInt, x, 0, 0, d
	case int32:
		return kInt, int64(x), 0, 0, d
	case int16:
		return kInt, int64(x), 0, 0, d
	case int8:
		return kInt, int64(x), 0, 0, d
	case uint64:
		return kUint, 0, x, 0, d
	case uint:
		return kUint, 0, uint64(x), 0, d
	case uint32:
		return kUint, 0, uint64(x), 0, d
	case uint16:
		return kUint, 0, uint64(x), 0, d
	case uint8:
		return kUint, 0, uint64(x), 0, d
	case float64:
		return kFloat, 0, 0, x, d
	case float32:
		return kFloat, 0, 0, float64(x), d
	case decimal.Decimal:
		return kDec, 0, 0, 0, x
	case *decimal.Decimal:
		if x != nil {
			return kDec, 0, 0, 0, *x
		}
	}
	return kNone, 0, 0, 0, d
}

func toDec(k numKind, i int64, u uint64, f float64, d decimal.Decimal) decimal.Decimal {
	switch k {
	case kInt:
		return decimal.NewFromInt(i)
	case kUint:
		return decimal.NewFromUint64(u)
	case kFloat:
		return decimal.NewFromFloat(f)
	}
	return d
}

func toFloat(k numKind, i int64, u uint64, f float64, d decimal.Decimal) float64 {
	switch k {
	case kInt:
		return float64(i)
	case kUint:
		return float64(u)
	case kDec:
		return d.InexactFloat64()
	}
	return f
}

// compare returns -1, 0 or 1, or an error when a and b have no order.
func compare(a, b any) (int, error) {
	if a == nil || b == nil {
		return 0, fmt.Errorf("compare %s with %s: %w", typeName(a), typeName(b), ErrNull)
	}
	ka, ia, ua, fa, da := num(a)
	kb, ib, ub, fb, db := num(b)
	if ka != kNone && kb != kNone {
		return compareNum(ka, ia, ua, fa, da, kb, ib, ub, fb, db), nil
	}
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return strings.Compare(x, y), nil
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
	if s, ok := b.([]byte); ok {
		if x, ok := a.(string); ok {
			return strings.Compare(x, string(s)), nil
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

func compareNum(ka numKind, ia int64, ua uint64, fa float64, da decimal.Decimal,
	kb numKind, ib int64, ub uint64, fb float64, db decimal.Decimal) int {
	switch {
	case ka == kInt && kb == kInt:
		return cmpInt(ia, ib)
	case ka == kUint && kb == kUint:
		switch {
		case ua < ub:
			return -1
		case ua > ub:
			return 1
		}
		return 0
	case ka == kInt && kb == kUint:
		if ia < 0 || ub > math.MaxInt64 {
			return -1
		}
		return cmpInt(ia, int64(ub))
	case ka == kUint && kb == kInt:
		if ib < 0 || ua > math.MaxInt64 {
			return 1
		}
		return cmpInt(int64(ua), ib)
	case ka == kDec || kb == kDec:
		return toDec(ka, ia, ua, fa, da).Cmp(toDec(kb, ib, ub, fb, db))
	}
	x, y := toFloat(ka, ia, ua, fa, da), toFloat(kb, ib, ub, fb, db)
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
	if ka, ia, ua, fa, da := num(a); ka != kNone {
		kb, ib, ub, fb, db := num(b)
		if kb == kNone {
			return false
		}
		return compareNum(ka, ia, ua, fa, da, kb, ib, ub, fb, db) == 0
	}
	return reflect.DeepEqual(a, b)
}

// arith applies + - * / % to a and b.
func arith(op byte, a, b any) (any, error) {
	if a == nil || b == nil {
		if op == '+' {
			// String concatenation with NULL is still an error: a blank in a key or text is a bug.
			return nil, fmt.Errorf("%s + %s: %w", typeName(a), typeName(b), ErrNull)
		}
		return nil, fmt.Errorf("%s %c %s: %w", typeName(a), op, typeName(b), ErrNull)
	}
	ka, ia, ua, fa, da := num(a)
	kb, ib, ub, fb, db := num(b)
	if ka != kNone && kb != kNone {
		return arithNum(op, ka, ia, ua, fa, da, kb, ib, ub, fb, db)
	}
	switch x := a.(type) {
	case string:
		if op == '+' {
			return x + Format(b), nil
		}
	case time.Time:
		switch y := b.(type) {
		case time.Duration:
			switch op {
			case '+':
				return x.Add(y), nil
			case '-':
				return x.Add(-y), nil
			}
		case time.Time:
			if op == '-' {
				return x.Sub(y), nil
			}
		case string:
			if op == '+' {
				return Format(x) + y, nil
			}
		}
	case time.Duration:
		switch y := b.(type) {
		case time.Duration:
			switch op {
			case '+':
				return x + y, nil
			case '-':
				return x - y, nil
			case '/':
				if y == 0 {
					return nil, fmt.Errorf("duration / 0: division by zero")
				}
				return float64(x) / float64(y), nil
			}
		case time.Time:
			if op == '+' {
				return y.Add(x), nil
			}
		case string:
			if op == '+' {
				return x.String() + y, nil
			}
		default:
			if kb == kInt && (op == '*' || op == '/') {
				if op == '*' {
					return x * time.Duration(ib), nil
				}
				if ib == 0 {
					return nil, fmt.Errorf("duration / 0: division by zero")
				}
				return x / time.Duration(ib), nil
			}
		}
	default:
		if s, ok := b.(string); ok && op == '+' && ka != kNone {
			return Format(a) + s, nil
		}
		if d, ok := b.(time.Duration); ok && op == '*' && ka == kInt {
			return time.Duration(ia) * d, nil
		}
	}
	return nil, fmt.Errorf("%s %c %s: %w", typeName(a), op, typeName(b), ErrType)
}

func arithNum(op byte, ka numKind, ia int64, ua uint64, fa float64, da decimal.Decimal,
	kb numKind, ib int64, ub uint64, fb float64, db decimal.Decimal) (any, error) {
	if ka == kDec || kb == kDec {
		x, y := toDec(ka, ia, ua, fa, da), toDec(kb, ib, ub, fb, db)
		switch op {
		case '+':
			return x.Add(y), nil
		case '-':
			return x.Sub(y), nil
		case '*':
			return x.Mul(y), nil
		case '/', '%':
			if y.IsZero() {
				return nil, fmt.Errorf("%s %c 0: division by zero", x, op)
			}
			if op == '/' {
				return x.Div(y), nil
			}
			return x.Mod(y), nil
		}
	}
	if ka == kInt && kb == kInt {
		switch op {
		case '+':
			return ia + ib, nil
		case '-':
			return ia - ib, nil
		case '*':
			return ia * ib, nil
		case '/':
			// expr's / on integers yields a float; keep that meaning.
			if ib == 0 {
				return nil, fmt.Errorf("%d / 0: division by zero", ia)
			}
			return float64(ia) / float64(ib), nil
		case '%':
			if ib == 0 {
				return nil, fmt.Errorf("%d %% 0: division by zero", ia)
			}
			return ia % ib, nil
		}
	}
	if (ka == kUint || ka == kInt) && (kb == kUint || kb == kInt) && op != '/' {
		// Mixed signed/unsigned: exact through decimal, back to an integer.
		r, err := arithNum(op, kDec, 0, 0, 0, toDec(ka, ia, ua, fa, da), kDec, 0, 0, 0, toDec(kb, ib, ub, fb, db))
		if err != nil {
			return nil, err
		}
		d := r.(decimal.Decimal)
		if d.IsInteger() {
			if d.Sign() >= 0 && d.Cmp(decimal.NewFromUint64(math.MaxUint64)) <= 0 && d.Cmp(decimal.NewFromInt(math.MaxInt64)) > 0 {
				return d.BigInt().Uint64(), nil
			}
			if d.Cmp(decimal.NewFromInt(math.MaxInt64)) <= 0 && d.Cmp(decimal.NewFromInt(math.MinInt64)) >= 0 {
				return d.IntPart(), nil
			}
		}
		return d, nil
	}
	x, y := toFloat(ka, ia, ua, fa, da), toFloat(kb, ib, ub, fb, db)
	switch op {
	case '+':
		return x + y, nil
	case '-':
		return x - y, nil
	case '*':
		return x * y, nil
	case '/':
		if y == 0 {
			return nil, fmt.Errorf("%v / 0: division by zero", x)
		}
		return x / y, nil
	case '%':
		if y == 0 {
			return nil, fmt.Errorf("%v %% 0: division by zero", x)
		}
		return math.Mod(x, y), nil
	}
	return nil, fmt.Errorf("unknown operator %c", op)
}

// negate is unary minus.
func negate(a any) (any, error) {
	k, i, u, f, d := num(a)
	switch k {
	case kInt:
		return -i, nil
	case kUint:
		return decimal.NewFromUint64(u).Neg(), nil
	case kFloat:
		return -f, nil
	case kDec:
		return d.Neg(), nil
	}
	if x, ok := a.(time.Duration); ok {
		return -x, nil
	}
	if a == nil {
		return nil, fmt.Errorf("-%s: %w", typeName(a), ErrNull)
	}
	return nil, fmt.Errorf("-%s: %w", typeName(a), ErrType)
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
	switch k, i, u, f, _ := num(v); k {
	case kInt:
		return strconv.FormatInt(i, 10)
	case kUint:
		return strconv.FormatUint(u, 10)
	case kFloat:
		return strconv.FormatFloat(f, 'f', -1, 64)
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
