package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// lenientFuncs take NULL arguments on purpose: their arguments are not checked for NULL.
var lenientFuncs = map[string]bool{
	"default": true, "json": true, "and": true, "or": true, "not": true, "eq": true, "ne": true,
}

// stringFuncs never return nil, so an action ending in one needs no output check.
var stringFuncs = map[string]bool{
	"money": true, "number": true, "date": true, "datetime": true, "plural": true,
	"truncate": true, "upper": true, "lower": true, "title": true, "trim": true, "json": true,
	"mask": true, "print": true, "printf": true, "println": true, "len": true, "html": true,
	"js": true, "urlquery": true, "eq": true, "ne": true, "lt": true, "le": true,
	"gt": true, "ge": true, "not": true,
}

// funcMap builds the helpers bound to one template's locale and location.
func funcMap(loc *locale, tz *time.Location) template.FuncMap {
	return template.FuncMap{
		"money": func(v any, code string) (string, error) { return formatMoney(v, code, loc) },
		"number": func(v any, places ...int) (string, error) {
			d, err := toDecimal(v)
			if err != nil {
				return "", fmt.Errorf("number: %w", err)
			}
			p := int32(-1)
			if len(places) > 1 {
				return "", fmt.Errorf("number: want at most 1 decimals argument, got %d", len(places))
			}
			if len(places) == 1 {
				if places[0] < 0 || places[0] > 18 {
					return "", fmt.Errorf("number: decimals %d out of range 0..18", places[0])
				}
				p = int32(places[0])
			}
			var buf [64]byte
			return string(formatNumber(buf[:0], d, p, loc)), nil
		},
		"date":     func(v any, layout ...string) (string, error) { return formatDate("date", v, layout, loc, tz) },
		"datetime": func(v any, layout ...string) (string, error) { return formatDate("datetime", v, layout, loc, tz) },
		"plural":   func(n any, forms ...string) (string, error) { return plural(n, forms, loc) },
		"truncate": truncate,
		"upper":    textFunc("upper", strings.ToUpper),
		"lower":    textFunc("lower", strings.ToLower),
		"title":    textFunc("title", title),
		"trim":     textFunc("trim", strings.TrimSpace),
		"default": func(fallback, v any) any {
			if v == nil || v == "" {
				return fallback
			}
			return v
		},
		"json":    jsonText,
		"print":   printFunc(fmt.Sprint),
		"println": printFunc(fmt.Sprintln),
		"printf": func(format string, args ...any) string {
			return fmt.Sprintf(format, printableArgs(args)...)
		},
		"mask":  textFunc("mask", Mask),
		"index": index,
	}
}

// textFunc adapts a string function to any input that prints as text.
func textFunc(name string, f func(string) string) func(any) (string, error) {
	return func(v any) (string, error) {
		s, err := toText(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return f(s), nil
	}
}

// title upper-cases the first letter of every word and leaves the rest as it is.
func title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := true
	for _, r := range s {
		if start && unicode.IsLetter(r) {
			r = unicode.ToTitle(r)
		}
		start = unicode.IsSpace(r) || r == '-'
		b.WriteRune(r)
	}
	return b.String()
}

// ellipsis marks a truncated text. Three dots rather than "…": "…" is not in GSM-7 and would
// turn an SMS into UCS-2, halving its length.
const ellipsis = "..."

// truncate cuts v to at most n characters (runes), the ellipsis included.
func truncate(v any, n int) (string, error) {
	s, err := toText(v)
	if err != nil {
		return "", fmt.Errorf("truncate: %w", err)
	}
	if n < 0 {
		return "", fmt.Errorf("truncate: length %d is negative", n)
	}
	if utf8.RuneCountInString(s) <= n {
		return s, nil
	}
	if n <= len(ellipsis) {
		return ellipsis[:n], nil
	}
	keep, i := n-len(ellipsis), 0
	for pos := range s {
		if i == keep {
			return strings.TrimRightFunc(s[:pos], unicode.IsSpace) + ellipsis, nil
		}
		i++
	}
	return s, nil
}

// plural picks the form of forms for the count n under the locale's plural rule.
func plural(n any, forms []string, loc *locale) (string, error) {
	c, err := toInt(n)
	if err != nil {
		return "", fmt.Errorf("plural: %w", err)
	}
	if len(forms) != loc.forms {
		return "", fmt.Errorf("plural: locale %s takes %d forms, got %d", loc.name, loc.forms, len(forms))
	}
	abs := uint64(c)
	if c < 0 {
		abs = uint64(-c)
	}
	form := forms[loc.plural(abs)]
	if strings.Contains(form, "%d") {
		form = strings.ReplaceAll(form, "%d", strconv.FormatInt(c, 10))
	}
	return form, nil
}

// formatDate implements date and datetime.
func formatDate(name string, v any, layout []string, loc *locale, tz *time.Location) (string, error) {
	t, err := toTime(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if len(layout) > 1 {
		return "", fmt.Errorf("%s: want at most 1 layout argument, got %d", name, len(layout))
	}
	style := "medium"
	if len(layout) == 1 {
		style = layout[0]
	}
	if name == "date" && isCalendarDate(t) {
		// a calendar day: keep it as it is
	} else {
		t = t.In(tz)
	}
	var buf [64]byte
	b := buf[:0]
	named, ok := loc.layouts[style]
	switch {
	case !ok && !strings.ContainsAny(style, "0123456789"):
		return "", fmt.Errorf("%s: unknown layout %q (want short, medium, long, full, time or a Go layout)", name, style)
	case !ok:
		b = appendDate(b, t, style, loc)
	case name == "datetime" && style != "time":
		d := string(appendDate(b, t, named, loc))
		c := string(appendDate(nil, t, loc.layouts["time"], loc))
		return fmt.Sprintf(loc.dateTime, d, c), nil
	default:
		b = appendDate(b, t, named, loc)
	}
	return string(b), nil
}

// printFunc replaces text/template's print or println builtin: decimals print with their
// scale, like everywhere else.
func printFunc(f func(...any) string) func(...any) string {
	return func(args ...any) string { return f(printableArgs(args)...) }
}

// printableArgs returns args with decimals as their text (printable), copying only if needed.
func printableArgs(args []any) []any {
	var out []any
	for i, a := range args {
		if p, ok := printable(a); ok {
			if out == nil {
				out = slices.Clone(args)
			}
			out[i] = p
		}
	}
	if out == nil {
		return args
	}
	return out
}

// jsonText encodes v as JSON without HTML escaping (the webhook body is not HTML). Decimals
// are JSON strings with their scale ("1234.50"): exact, where a JSON number would be read as a
// float by many consumers, and the same text the other helpers print.
func jsonText(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonDecimals(v)); err != nil {
		return "", fmt.Errorf("json: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// index replaces text/template's builtin, which yields NULL for a missing map key: here a
// missing key or an index out of range is an error.
func index(item any, keys ...any) (any, error) {
	v := item
	for _, k := range keys {
		if v == nil {
			return nil, errors.New("index: NULL has no entries")
		}
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Map:
			kv := reflect.ValueOf(k)
			if !kv.IsValid() || !kv.Type().ConvertibleTo(rv.Type().Key()) ||
				kv.Kind() != rv.Type().Key().Kind() {
				return nil, fmt.Errorf("index: cannot use %s as a key of %s", describe(k), describe(v))
			}
			x := rv.MapIndex(kv.Convert(rv.Type().Key()))
			if !x.IsValid() {
				if kv.Kind() == reflect.String {
					return nil, fmt.Errorf("index: no entry for key %q", kv.String())
				}
				return nil, fmt.Errorf("index: no entry for key %v", kv)
			}
			v = x.Interface()
		case reflect.Slice, reflect.Array:
			i, err := toInt(k)
			if err != nil {
				return nil, fmt.Errorf("index: %w", err)
			}
			if i < 0 || i >= int64(rv.Len()) {
				return nil, fmt.Errorf("index: %d out of range (length %d)", i, rv.Len())
			}
			v = rv.Index(int(i)).Interface()
		default:
			return nil, fmt.Errorf("index: cannot index %s", describe(v))
		}
	}
	return v, nil
}

// jsonDecimals returns v with every decimal replaced by its text (decimalText). Rows
// (map[string]any and named map types such as cdc.Row) and lists are copied, never changed:
// the data is shared by every template of the change.
func jsonDecimals(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, uint64, int, float64, time.Time:
		return v
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonDecimals(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonDecimals(e)
		}
		return out
	}
	if p, ok := printable(v); ok {
		return p
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Map && rv.Type().ConvertibleTo(mapAnyType) {
		return jsonDecimals(rv.Convert(mapAnyType).Interface())
	}
	return v
}
