package render

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// renderText compiles src as a webhook text in locale loc (Europe/Berlin) and renders data.
func renderText(t *testing.T, loc, src string, data map[string]any) (string, error) {
	t.Helper()
	tz, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := Compile("t", Spec{Kind: KindWebhook, Text: src, Locale: loc, Location: tz})
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	out, err := tm.Render(data)
	return out.Text, err
}

type helperCase struct {
	name, locale, src string
	data              map[string]any
	want              string // expected text, or the error message when wantErr
	wantErr           bool
}

func runHelperCases(t *testing.T, tests []helperCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderText(t, tt.locale, tt.src, tt.data)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("render = %q, want error %q", got, tt.want)
				}
				if err.Error() != tt.want {
					t.Fatalf("error = %q\nwant    %q", err.Error(), tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if got != tt.want {
				t.Fatalf("render = %q, want %q", got, tt.want)
			}
		})
	}
}

func v(x any) map[string]any { return map[string]any{"v": x} }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestMoney(t *testing.T) {
	runHelperCases(t, []helperCase{
		{"en EUR", "en", `{{ money .v "EUR" }}`, v(dec("1234.5")), "€1,234.50", false},
		{"de EUR", "de", `{{ money .v "EUR" }}`, v(dec("1234.5")), "1.234,50 €", false},
		{"de-AT uses de", "de-AT", `{{ money .v "EUR" }}`, v(dec("1234.5")), "1.234,50 €", false},
		{"fr EUR", "fr", `{{ money .v "EUR" }}`, v(dec("1234.5")), "1 234,50 €", false},
		{"es EUR below grouping", "es", `{{ money .v "EUR" }}`, v(dec("1234.5")), "1234,50 €", false},
		{"es EUR grouped", "es", `{{ money .v "EUR" }}`, v(dec("12345.5")), "12.345,50 €", false},
		{"it EUR", "it", `{{ money .v "EUR" }}`, v(dec("1234567.5")), "1.234.567,50 €", false},
		{"ru RUB", "ru", `{{ money .v "RUB" }}`, v(dec("12345")), "12 345,00 ₽", false},
		{"en USD negative", "en", `{{ money .v "USD" }}`, v(dec("-1234.5")), "-$1,234.50", false},
		{"de USD negative", "de", `{{ money .v "USD" }}`, v(dec("-1234.5")), "-1.234,50 $", false},
		{"en CHF letters get a space", "en", `{{ money .v "CHF" }}`, v(dec("1234.5")), "CHF 1,234.50", false},
		{"en unknown ISO code", "en", `{{ money .v "XAF" }}`, v(dec("1234.5")), "XAF 1,234.50", false},
		{"JPY has no decimals, half away from zero", "en", `{{ money .v "JPY" }}`, v(dec("1234.5")), "¥1,235", false},
		{"KWD has 3 decimals", "en", `{{ money .v "KWD" }}`, v(dec("1.2345")), "KWD 1.235", false},
		{"rounds half away from zero", "en", `{{ money .v "EUR" }}`, v(dec("0.005")), "€0.01", false},
		{"negative rounds away from zero", "en", `{{ money .v "EUR" }}`, v(dec("-0.005")), "-€0.01", false},
		{"exact beyond float precision", "en", `{{ money .v "EUR" }}`, v(dec("12345678901234567890.125")), "€12,345,678,901,234,567,890.13", false},
		{"int64", "en", `{{ money .v "EUR" }}`, v(int64(5)), "€5.00", false},
		{"uint64", "de", `{{ money .v "EUR" }}`, v(uint64(18446744073709551615)), "18.446.744.073.709.551.615,00 €", false},
		{"decimal string", "en", `{{ money .v "EUR" }}`, v("1999.99"), "€1,999.99", false},
		{"float at its shortest form", "en", `{{ money .v "EUR" }}`, v(19.99), "€19.99", false},
		{"zero", "de", `{{ money .v "EUR" }}`, v(dec("0")), "0,00 €", false},
		{"currency from a field", "en", `{{ money .v .c }}`, map[string]any{"v": dec("3"), "c": "GBP"}, "£3.00", false},
		{"bad currency", "en", `{{ money .v .c }}`, map[string]any{"v": dec("1"), "c": "eur"}, `template "t": text:1:4: money: unknown currency "eur" (want an ISO 4217 code such as EUR)`, true},
		{"not a number", "en", `{{ money .v "EUR" }}`, v("12 EUR"), `template "t": text:1:4: money: string is not a decimal number`, true},
		{"exponent refused", "en", `{{ money .v "EUR" }}`, v("1e3"), `template "t": text:1:4: money: string is not a decimal number`, true},
		{"bool refused", "en", `{{ money .v "EUR" }}`, v(true), `template "t": text:1:4: money: cannot use a bool as a number`, true},
		{"NULL names the field", "en", `{{ money .v "EUR" }}`, v(nil), `template "t": text:1:10: field v is NULL`, true},
	})
}

func TestNumber(t *testing.T) {
	runHelperCases(t, []helperCase{
		{"en grouping", "en", `{{ number .v }}`, v(int64(1234567)), "1,234,567", false},
		{"de keeps the decimal's digits", "de", `{{ number .v }}`, v(dec("1234567.891")), "1.234.567,891", false},
		{"de with 2 decimals", "de", `{{ number .v 2 }}`, v(dec("1234567.891")), "1.234.567,89", false},
		{"fr", "fr", `{{ number .v }}`, v(int64(1234)), "1 234", false},
		{"es no grouping under 5 digits", "es", `{{ number .v }}`, v(int64(1234)), "1234", false},
		{"es grouping", "es", `{{ number .v }}`, v(int64(12345)), "12.345", false},
		{"en below 1000", "en", `{{ number .v }}`, v(int64(999)), "999", false},
		{"negative", "en", `{{ number .v 1 }}`, v(dec("-1234.56")), "-1,234.6", false},
		{"float", "en", `{{ number .v }}`, v(0.1), "0.1", false},
		{"too many decimals", "en", `{{ number .v .n }}`, map[string]any{"v": int64(1), "n": 19}, `template "t": text:1:4: number: decimals 19 out of range 0..18`, true},
	})
}

func TestDates(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)        // a DATE column (Tuesday)
	instant := time.Date(2026, 3, 29, 8, 30, 0, 0, time.UTC)   // Sunday, 10:30 CEST in Berlin
	lateUTC := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC) // already 1 December in Berlin
	runHelperCases(t, []helperCase{
		{"en medium default", "en", `{{ date .v }}`, v(day), "Dec 1, 2026", false},
		{"en short", "en", `{{ date .v "short" }}`, v(day), "12/1/26", false},
		{"en long", "en", `{{ date .v "long" }}`, v(day), "December 1, 2026", false},
		{"en full", "en", `{{ date .v "full" }}`, v(day), "Tuesday, December 1, 2026", false},
		{"de short", "de", `{{ date .v "short" }}`, v(day), "01.12.26", false},
		{"de medium", "de", `{{ date .v }}`, v(day), "01.12.2026", false},
		{"de long", "de", `{{ date .v "long" }}`, v(day), "1. Dezember 2026", false},
		{"de full", "de", `{{ date .v "full" }}`, v(day), "Dienstag, 1. Dezember 2026", false},
		{"fr full", "fr", `{{ date .v "full" }}`, v(day), "mardi 1 décembre 2026", false},
		{"fr medium", "fr", `{{ date .v "medium" }}`, v(day), "1 déc. 2026", false},
		{"es long", "es", `{{ date .v "long" }}`, v(day), "1 de diciembre de 2026", false},
		{"it full", "it", `{{ date .v "full" }}`, v(day), "martedì 1 dicembre 2026", false},
		{"ru long uses the genitive", "ru", `{{ date .v "long" }}`, v(day), "1 декабря 2026 г.", false},
		{"ru month alone is nominative", "ru", `{{ date .v "January 2006" }}`, v(day), "декабрь 2026", false},
		{"Go layout with names", "de", `{{ date .v "Monday 02/01" }}`, v(day), "Dienstag 01/12", false},
		{"Go layout with abbreviations", "de", `{{ date .v "Mon, 2. Jan" }}`, v(day), "Di., 1. Dez.", false},
		{"date string", "en", `{{ date .v }}`, v("2026-12-01"), "Dec 1, 2026", false},
		{"instant moves to the rule's zone", "de", `{{ date .v }}`, v(lateUTC), "01.12.2026", false},
		{"datetime en", "en", `{{ datetime .v }}`, v(instant), "Mar 29, 2026, 10:30 AM", false},
		{"datetime de short", "de", `{{ datetime .v "short" }}`, v(instant), "29.03.26, 10:30", false},
		{"datetime fr long", "fr", `{{ datetime .v "long" }}`, v(instant), "29 mars 2026 10:30", false},
		{"datetime time only", "de", `{{ datetime .v "time" }}`, v(instant), "10:30", false},
		{"datetime of a DATE column is converted", "en", `{{ datetime .v "time" }}`, v(day), "1:00 AM", false},
		{"datetime RFC 3339 string", "de", `{{ datetime .v }}`, v("2026-03-29T08:30:00Z"), "29.03.2026, 10:30", false},
		{"unknown layout", "en", `{{ date .v .l }}`, map[string]any{"v": day, "l": "foo"}, `template "t": text:1:4: date: unknown layout "foo" (want short, medium, long, full, time or a Go layout)`, true},
		{"bad date string", "en", `{{ date .v }}`, v("yesterday"), `template "t": text:1:4: date: string is not a date (want RFC 3339, 2006-01-02 15:04:05 or 2006-01-02)`, true},
		{"number is not a date", "en", `{{ date .v }}`, v(int64(3)), `template "t": text:1:4: date: cannot use a value of type int64 as a date`, true},
	})
}

func TestDateOfDATEColumnKeepsItsDay(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := Compile("t", Spec{Kind: KindSMS, Text: `{{ date .v "short" }}`, Location: ny})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(v(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil || out.Text != "12/1/26" {
		t.Fatalf("Render = %q, %v; want 12/1/26", out.Text, err)
	}
}

func TestPlural(t *testing.T) {
	en := `{{ plural .v "item" "items" }}`
	fr := `{{ plural .v "article" "articles" }}`
	ru := `{{ plural .v "товар" "товара" "товаров" }}`
	runHelperCases(t, []helperCase{
		{"en 0", "en", en, v(int64(0)), "items", false},
		{"en 1", "en", en, v(int64(1)), "item", false},
		{"en 2", "en", en, v(int64(2)), "items", false},
		{"en count substituted", "en", `{{ plural .v "%d item" "%d items" }}`, v(3), "3 items", false},
		{"de 1", "de", `{{ plural .v "Artikel" "Artikel" }}`, v(int64(1)), "Artikel", false},
		{"fr 0 is singular", "fr", fr, v(int64(0)), "article", false},
		{"fr 1", "fr", fr, v(int64(1)), "article", false},
		{"fr 2", "fr", fr, v(int64(2)), "articles", false},
		{"ru 1 one", "ru", ru, v(int64(1)), "товар", false},
		{"ru 2 few", "ru", ru, v(int64(2)), "товара", false},
		{"ru 4 few", "ru", ru, v(int64(4)), "товара", false},
		{"ru 5 many", "ru", ru, v(int64(5)), "товаров", false},
		{"ru 11 many", "ru", ru, v(int64(11)), "товаров", false},
		{"ru 12 many", "ru", ru, v(int64(12)), "товаров", false},
		{"ru 21 one", "ru", ru, v(int64(21)), "товар", false},
		{"ru 22 few", "ru", ru, v(int64(22)), "товара", false},
		{"ru 111 many", "ru", ru, v(int64(111)), "товаров", false},
		{"ru 0 many", "ru", ru, v(int64(0)), "товаров", false},
		{"uint64 count", "en", en, v(uint64(1)), "item", false},
		{"decimal integer count", "en", en, v(dec("1")), "item", false},
		{"digest count", "en", `{{ .count }} new {{ plural .count "request" "requests" }}`, map[string]any{"count": 1}, "1 new request", false},
		{"fraction refused", "en", en, v(dec("1.5")), `template "t": text:1:4: plural: 1.5 is not an integer`, true},
	})
}

func TestTextHelpers(t *testing.T) {
	runHelperCases(t, []helperCase{
		{"truncate fits", "en", `{{ truncate .v 11 }}`, v("Hello world"), "Hello world", false},
		{"truncate cuts with ellipsis", "en", `{{ truncate .v 8 }}`, v("Hello world"), "Hello...", false},
		{"truncate drops the space before the ellipsis", "en", `{{ truncate .v 9 }}`, v("Hello world"), "Hello...", false},
		{"truncate is rune-safe", "en", `{{ truncate .v 8 }}`, v("Grüße aus Köln"), "Grüße...", false},
		{"truncate emoji", "en", `{{ truncate .v 4 }}`, v("👍👍👍👍👍"), "👍...", false},
		{"truncate shorter than ellipsis", "en", `{{ truncate .v 2 }}`, v("Hello"), "..", false},
		{"truncate to 0", "en", `{{ truncate .v 0 }}`, v("Hello"), "", false},
		{"truncate negative", "en", `{{ truncate .v .n }}`, map[string]any{"v": "Hello", "n": -1}, `template "t": text:1:4: truncate: length -1 is negative`, true},
		{"upper", "en", `{{ upper .v }}`, v("müller"), "MÜLLER", false},
		{"lower", "en", `{{ lower .v }}`, v("ÄBC"), "äbc", false},
		{"title", "en", `{{ title .v }}`, v("anna-lena müller"), "Anna-Lena Müller", false},
		{"trim", "en", `{{ trim .v }}`, v("  x y \n"), "x y", false},
		{"upper of bytes", "en", `{{ upper .v }}`, v([]byte("abc")), "ABC", false},
		{"upper of a number", "en", `{{ upper .v }}`, v(int64(42)), "42", false},
		{"piped", "en", `{{ .v | trim | upper }}`, v(" ok "), "OK", false},
		{"default on NULL", "en", `{{ .v | default "n/a" }}`, v(nil), "n/a", false},
		{"default on empty string", "en", `{{ .v | default "n/a" }}`, v(""), "n/a", false},
		{"default keeps a value", "en", `{{ .v | default "n/a" }}`, v("x"), "x", false},
		{"default keeps zero", "en", `{{ .v | default "n/a" }}`, v(int64(0)), "0", false},
		{"default as a function", "en", `{{ default "n/a" .v }}`, v(nil), "n/a", false},
		{"default then helper", "en", `{{ money (.v | default 0) "EUR" }}`, v(nil), "€0.00", false},
		{"json object", "en", `{{ json .v }}`, v(map[string]any{"amount": dec("1234.50"), "due": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "note": nil, "html": "<b>&"}),
			`{"amount":"1234.50","due":"2026-12-01T00:00:00Z","html":"<b>&","note":null}`, false},
		{"json NULL", "en", `{{ json .v }}`, v(nil), "null", false},
		{"json string", "en", `{{ json .v }}`, v("a\"b"), `"a\"b"`, false},
		{"mask", "en", `{{ mask .v }}`, v("+4917612345689"), "+49*******89", false},
	})
}
