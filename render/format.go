package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// currency is how an ISO 4217 code is shown.
type currency struct {
	symbol string
	digits int32 // minor unit digits
}

// currencies holds the codes with a symbol of their own; any other three-letter upper-case
// code is shown as itself with 2 decimals ("1.234,50 XAF").
var currencies = map[string]currency{
	"EUR": {"€", 2}, "USD": {"$", 2}, "GBP": {"£", 2}, "JPY": {"¥", 0}, "CHF": {"CHF", 2},
	"CAD": {"CA$", 2}, "AUD": {"A$", 2}, "NZD": {"NZ$", 2}, "CNY": {"CN¥", 2}, "INR": {"₹", 2},
	"RUB": {"₽", 2}, "TRY": {"₺", 2}, "PLN": {"zł", 2}, "SEK": {"kr", 2}, "NOK": {"kr", 2},
	"DKK": {"kr.", 2}, "CZK": {"Kč", 2}, "HUF": {"Ft", 2}, "BRL": {"R$", 2}, "MXN": {"MX$", 2},
	"KRW": {"₩", 0}, "ILS": {"₪", 2}, "UAH": {"₴", 2}, "ZAR": {"R", 2}, "KWD": {"KWD", 3},
	"BHD": {"BHD", 3}, "ISK": {"ISK", 0},
}

// lookupCurrency resolves an ISO 4217 code.
func lookupCurrency(code string) (currency, error) {
	if c, ok := currencies[code]; ok {
		return c, nil
	}
	if len(code) == 3 && isUpperASCII(code) {
		return currency{symbol: code, digits: 2}, nil
	}
	return currency{}, fmt.Errorf("unknown currency %q (want an ISO 4217 code such as EUR)", code)
}

func isUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// toDecimal converts a number without going through a float where the input is exact:
// decimal.Decimal, integers, and decimal strings are exact; a float64 (FLOAT/DOUBLE columns,
// JSON numbers) is taken at its shortest decimal representation.
func toDecimal(v any) (decimal.Decimal, error) {
	switch x := v.(type) {
	case decimal.Decimal:
		return x, nil
	case *decimal.Decimal:
		if x != nil {
			return *x, nil
		}
	case int:
		return decimal.NewFromInt(int64(x)), nil
	case int8:
		return decimal.NewFromInt(int64(x)), nil
	case int16:
		return decimal.NewFromInt(int64(x)), nil
	case int32:
		return decimal.NewFromInt(int64(x)), nil
	case int64:
		return decimal.NewFromInt(x), nil
	case uint:
		return decimal.NewFromUint64(uint64(x)), nil
	case uint8:
		return decimal.NewFromUint64(uint64(x)), nil
	case uint16:
		return decimal.NewFromUint64(uint64(x)), nil
	case uint32:
		return decimal.NewFromUint64(uint64(x)), nil
	case uint64:
		return decimal.NewFromUint64(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return decimal.Decimal{}, fmt.Errorf("%v is not a finite number", x)
		}
		return decimal.NewFromFloat(x), nil
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return decimal.Decimal{}, fmt.Errorf("%v is not a finite number", x)
		}
		return decimal.NewFromFloat32(x), nil
	case json.Number:
		return parseDecimal(string(x))
	case string:
		return parseDecimal(x)
	case nil:
		return decimal.Decimal{}, errNullArg
	}
	return decimal.Decimal{}, fmt.Errorf("cannot use %s as a number", describe(v))
}

// parseDecimal accepts plain decimal notation only ("-1234.50", "1e3" is refused: a column
// holding that is not a money amount).
func parseDecimal(s string) (decimal.Decimal, error) {
	t := strings.TrimSpace(s)
	ok := t != ""
	dot := false
	for i := 0; i < len(t) && ok; i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9':
		case (c == '-' || c == '+') && i == 0 && len(t) > 1:
		case c == '.' && !dot:
			dot = true
		default:
			ok = false
		}
	}
	if !ok {
		return decimal.Decimal{}, errors.New("string is not a decimal number") // the value may be personal: not shown
	}
	return decimal.NewFromString(t)
}

// describe names a value's type for error messages without printing the value (it may be
// personal data).
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "NULL"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case time.Time:
		return "a time"
	case []byte:
		return "bytes"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a value of type %T", v)
}

// decimalText is how a decimal prints: with the digits its exponent carries. cdc builds a
// DECIMAL(12,2) 1234.50 with exponent -2, so it prints "1234.50"; decimal.String would drop the
// scale ("1234.5"), which reads wrong for money and changes the text when the value did not.
func decimalText(d decimal.Decimal) string {
	if e := d.Exponent(); e < 0 {
		return d.StringFixed(-e)
	}
	return d.String()
}

// formatNumber writes d with the locale's separators; places < 0 keeps d's own digits,
// else d is rounded half away from zero to places decimals.
func formatNumber(b []byte, d decimal.Decimal, places int32, loc *locale) []byte {
	var s string
	if places >= 0 {
		s = d.StringFixed(places)
	} else {
		s = decimalText(d)
	}
	if s[0] == '-' {
		b = append(b, '-')
		s = s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	b = appendGrouped(b, intPart, loc)
	if hasFrac {
		b = append(b, loc.decimal...)
		b = append(b, frac...)
	}
	return b
}

// appendGrouped writes the integer digits with the locale's grouping separator.
func appendGrouped(b []byte, digits string, loc *locale) []byte {
	if len(digits) < loc.minGroup {
		return append(b, digits...)
	}
	first := len(digits) % 3
	if first == 0 {
		first = 3
	}
	b = append(b, digits[:first]...)
	for i := first; i < len(digits); i += 3 {
		b = append(b, loc.group...)
		b = append(b, digits[i:i+3]...)
	}
	return b
}

// formatMoney formats an amount in a currency: "€1,234.50" (en), "1.234,50 €" (de).
func formatMoney(v any, code string, loc *locale) (string, error) {
	d, err := toDecimal(v)
	if err != nil {
		return "", fmt.Errorf("money: %w", err)
	}
	cur, err := lookupCurrency(code)
	if err != nil {
		return "", fmt.Errorf("money: %w", err)
	}
	d = d.Round(cur.digits)
	neg := d.Sign() < 0
	var numBuf, outBuf [64]byte // on the stack for the usual amounts
	num := formatNumber(numBuf[:0], d.Abs(), cur.digits, loc)
	b := outBuf[:0]
	if neg {
		b = append(b, '-')
	}
	if loc.symbolFirst {
		b = append(b, cur.symbol...)
		if last := cur.symbol[len(cur.symbol)-1]; last >= 'A' && last <= 'Z' || last >= 'a' && last <= 'z' || last == '.' {
			b = append(b, ' ') // "CHF 1,234.50"
		}
		b = append(b, num...)
	} else {
		b = append(b, num...)
		b = append(b, ' ')
		b = append(b, cur.symbol...)
	}
	return string(b), nil
}

// toInt converts an integral number to int64 (counts, lengths).
func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%d is too large", x)
		}
		return int64(x), nil
	case uint:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case nil:
		return 0, errNullArg
	}
	d, err := toDecimal(v)
	if err != nil {
		return 0, err
	}
	if !d.IsInteger() || d.Abs().GreaterThan(decimal.NewFromInt(math.MaxInt64)) {
		return 0, fmt.Errorf("%s is not an integer", d.String())
	}
	return d.IntPart(), nil
}

// toText converts a value to the text it prints as.
func toText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case decimal.Decimal:
		return decimalText(x), nil
	case *decimal.Decimal:
		if x == nil {
			return "", errNullArg
		}
		return decimalText(*x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", errNullArg
	case fmt.Stringer:
		return x.String(), nil
	}
	return fmt.Sprint(v), nil
}

// toTime converts a DATE/DATETIME value (time.Time) or a string in RFC 3339, "2006-01-02
// 15:04:05" or "2006-01-02" form (taken as UTC, like cdc's values).
func toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case *time.Time:
		if x != nil {
			return *x, nil
		}
		return time.Time{}, errNullArg
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, nil
			}
		}
		return time.Time{}, errors.New("string is not a date (want RFC 3339, 2006-01-02 15:04:05 or 2006-01-02)")
	case nil:
		return time.Time{}, errNullArg
	}
	return time.Time{}, fmt.Errorf("cannot use %s as a date", describe(v))
}

// isCalendarDate reports whether t is how cdc carries a DATE column: midnight UTC. Such a
// value is a calendar day, not an instant, and is shown without moving it to the rule's zone
// (else "2026-12-01" would show as 30 November in New York).
func isCalendarDate(t time.Time) bool {
	return t.Location() == time.UTC && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}

// appendDate formats t with a Go layout, translating the English month and day names Go
// writes into the locale's.
func appendDate(b []byte, t time.Time, layout string, loc *locale) []byte {
	if loc.name == "en" {
		return t.AppendFormat(b, layout)
	}
	months := &loc.months
	if loc.monthsG[0] != "" && strings.Contains(strings.ReplaceAll(layout, "2006", ""), "2") {
		months = &loc.monthsG // the month with a day number: genitive ("2 января")
	}
	start := 0
	for i := 0; i < len(layout); i++ {
		var name string
		var n int
		switch rest := layout[i:]; {
		case strings.HasPrefix(rest, "January"):
			name, n = months[t.Month()-1], 7
		case strings.HasPrefix(rest, "Jan"):
			name, n = loc.monthsA[t.Month()-1], 3
		case strings.HasPrefix(rest, "Monday"):
			name, n = loc.days[t.Weekday()], 6
		case strings.HasPrefix(rest, "Mon"):
			name, n = loc.daysA[t.Weekday()], 3
		default:
			continue
		}
		if start < i {
			b = t.AppendFormat(b, layout[start:i])
		}
		b = append(b, name...)
		i += n - 1
		start = i + 1
	}
	if start < len(layout) {
		b = t.AppendFormat(b, layout[start:])
	}
	return b
}
