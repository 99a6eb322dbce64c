package rules

import (
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"
)

// arith applies + - * / % to a and b.
func arith(op byte, a, b any) (any, error) {
	if a == nil || b == nil {
		if op == '+' {
			// String concatenation with NULL is still an error: a blank in a key or text is a bug.
			return nil, fmt.Errorf("%s + %s: %w", typeName(a), typeName(b), ErrNull)
		}
		return nil, fmt.Errorf("%s %c %s: %w", typeName(a), op, typeName(b), ErrNull)
	}
	na, nb := num(a), num(b)
	if na.k != kNone && nb.k != kNone {
		return arithNum(op, na, nb)
	}
	if v, ok := arithOther(op, a, b, na, nb); ok {
		return v, nil
	}
	return nil, fmt.Errorf("%s %c %s: %w", typeName(a), op, typeName(b), ErrType)
}

func arithNum(op byte, a, b number) (any, error) {
	switch {
	case a.k == kDec || b.k == kDec:
		return arithDec(op, a.dec(), b.dec())
	case a.k == kInt && b.k == kInt:
		return arithInt(op, a.i, b.i)
	case (a.k == kUint || a.k == kInt) && (b.k == kUint || b.k == kInt) && op != '/':
		// Mixed signed/unsigned: exact through decimal, back to an integer when it fits.
		r, err := arithDec(op, a.dec(), b.dec())
		if err != nil {
			return nil, err
		}
		d := r.(decimal.Decimal)
		switch {
		case d.Sign() >= 0 && d.Cmp(maxUint64) <= 0 && d.Cmp(maxInt64) > 0:
			return d.BigInt().Uint64(), nil
		case d.Cmp(maxInt64) <= 0 && d.Cmp(minInt64) >= 0:
			return d.IntPart(), nil
		}
		return d, nil
	}
	return arithFloat(op, a.float(), b.float())
}

func arithDec(op byte, x, y decimal.Decimal) (any, error) {
	switch op {
	case '+':
		return x.Add(y), nil
	case '-':
		return x.Sub(y), nil
	case '*':
		return x.Mul(y), nil
	}
	if y.IsZero() {
		return nil, fmt.Errorf("%s %c 0: division by zero", x, op)
	}
	if op == '/' {
		return x.Div(y), nil
	}
	return x.Mod(y), nil
}

func arithInt(op byte, x, y int64) (any, error) {
	switch op {
	case '+':
		return x + y, nil
	case '-':
		return x - y, nil
	case '*':
		return x * y, nil
	}
	if y == 0 {
		return nil, fmt.Errorf("%d %c 0: division by zero", x, op)
	}
	if op == '/' {
		return float64(x) / float64(y), nil // expr's / on integers yields a float; keep that meaning
	}
	return x % y, nil
}

func arithFloat(op byte, x, y float64) (any, error) {
	switch op {
	case '+':
		return x + y, nil
	case '-':
		return x - y, nil
	case '*':
		return x * y, nil
	}
	if y == 0 {
		return nil, fmt.Errorf("%v %c 0: division by zero", x, op)
	}
	if op == '/' {
		return x / y, nil
	}
	return math.Mod(x, y), nil
}

var (
	maxUint64 = decimal.NewFromUint64(math.MaxUint64)
	maxInt64  = decimal.NewFromInt(math.MaxInt64)
	minInt64  = decimal.NewFromInt(math.MinInt64)
)

// negate is unary minus.
func negate(a any) (any, error) {
	switch n := num(a); n.k {
	case kInt:
		return -n.i, nil
	case kUint:
		return decimal.NewFromUint64(n.u).Neg(), nil
	case kFloat:
		return -n.f, nil
	case kDec:
		return n.d.Neg(), nil
	}
	if x, ok := a.(time.Duration); ok {
		return -x, nil
	}
	if a == nil {
		return nil, fmt.Errorf("-%s: %w", typeName(a), ErrNull)
	}
	return nil, fmt.Errorf("-%s: %w", typeName(a), ErrType)
}

// arithOther is + - * / on strings (concatenation), times and durations; ok is false when the
// operation is not defined for these operands (including division of a duration by zero).
func arithOther(op byte, a, b any, na, nb number) (any, bool) {
	switch x := a.(type) {
	case string:
		if op == '+' {
			return x + Format(b), true
		}
	case time.Time:
		switch y := b.(type) {
		case time.Duration:
			switch op {
			case '+':
				return x.Add(y), true
			case '-':
				return x.Add(-y), true
			}
		case time.Time:
			if op == '-' {
				return x.Sub(y), true
			}
		case string:
			if op == '+' {
				return Format(x) + y, true
			}
		}
	case time.Duration:
		switch y := b.(type) {
		case time.Duration:
			switch op {
			case '+':
				return x + y, true
			case '-':
				return x - y, true
			case '/':
				if y != 0 {
					return float64(x) / float64(y), true
				}
			}
		case time.Time:
			if op == '+' {
				return y.Add(x), true
			}
		case string:
			if op == '+' {
				return x.String() + y, true
			}
		default:
			if nb.k == kInt && (op == '*' || op == '/') {
				if op == '*' {
					return x * time.Duration(nb.i), true
				}
				if nb.i != 0 {
					return x / time.Duration(nb.i), true
				}
			}
		}
	default:
		if s, ok := b.(string); ok && op == '+' && na.k != kNone {
			return Format(a) + s, true
		}
		if d, ok := b.(time.Duration); ok && op == '*' && na.k == kInt {
			return time.Duration(na.i) * d, true
		}
	}
	return nil, false
}
