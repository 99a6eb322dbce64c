package render

import (
	"testing"

	"github.com/shopspring/decimal"
)

// TestDecimalPrintsWithItsScale: a DECIMAL column's value prints with the digits of its
// exponent, which cdc sets from the column's scale (decode.go: decimal.New(v, -scale)), in every
// place render turns a value into text.
func TestDecimalPrintsWithItsScale(t *testing.T) {
	amount := decimal.New(123450, -2) // DECIMAL(12,2) 1234.50, as cdc decodes it
	data := func(x any) map[string]any {
		return map[string]any{"new": row{"amount": x, "note": nil}, "v": x}
	}
	runHelperCases(t, []helperCase{
		{"printed as is", "en", `{{ .new.amount }}`, data(amount), "1234.50", false},
		{"printed through a variable", "en", `{{ $a := .new.amount }}{{ $a }}`, data(amount), "1234.50", false},
		{"printed after default", "en", `{{ .new.amount | default "n/a" }}`, data(amount), "1234.50", false},
		{"default of a NULL", "en", `{{ .new.note | default .new.amount }}`, data(amount), "1234.50", false},
		{"pointer", "en", `{{ .v }}`, data(&amount), "1234.50", false},
		{"scale 3", "en", `{{ .v }}`, data(decimal.New(1500, -3)), "1.500", false},
		{"zero with scale", "en", `{{ .v }}`, data(decimal.New(0, -2)), "0.00", false},
		{"negative below one", "en", `{{ .v }}`, data(decimal.New(-50, -2)), "-0.50", false},
		{"scale 0", "en", `{{ .v }}`, data(decimal.New(1234, 0)), "1234", false},
		{"positive exponent", "en", `{{ .v }}`, data(decimal.New(12, 2)), "1200", false},
		{"from a decimal string", "en", `{{ .v }}`, data(decimal.RequireFromString("0.10")), "0.10", false},
		{"upper", "en", `{{ upper .new.amount }}`, data(amount), "1234.50", false},
		{"trim piped", "en", `{{ .new.amount | trim }}`, data(amount), "1234.50", false},
		{"truncate", "en", `{{ truncate .new.amount 10 }}`, data(amount), "1234.50", false},
		{"print", "en", `{{ print .new.amount "EUR" }}`, data(amount), "1234.50EUR", false},
		{"printf %v", "en", `{{ printf "%v EUR" .new.amount }}`, data(amount), "1234.50 EUR", false},
		{"printf %s", "en", `{{ printf "%s" .new.amount }}`, data(amount), "1234.50", false},
		{"number without decimals keeps the scale (en)", "en", `{{ number .new.amount }}`, data(amount), "1,234.50", false},
		{"number without decimals keeps the scale (de)", "de", `{{ number .new.amount }}`, data(amount), "1.234,50", false},
		{"number piped", "de", `{{ .new.amount | number }}`, data(amount), "1.234,50", false},
		{"number with decimals rounds", "en", `{{ number .new.amount 1 }}`, data(amount), "1,234.5", false},
		{"number with more decimals pads", "en", `{{ number .new.amount 3 }}`, data(amount), "1,234.500", false},
		{"money uses the currency's digits", "en", `{{ money .new.amount "JPY" }}`, data(amount), "¥1,235", false},
		{"json string keeps the scale", "en", `{{ json .new.amount }}`, data(amount), `"1234.50"`, false},
		{"json row", "en", `{{ json .new }}`, data(amount), `{"amount":"1234.50","note":null}`, false},
		{"json nested", "en", `{{ json .v }}`, data([]any{amount, map[string]any{"x": decimal.New(5, -1)}, "s"}), `["1234.50",{"x":"0.5"},"s"]`, false},
	})
}

// TestDecimalScaleInEveryPart: subject and HTML print decimals like the text does.
func TestDecimalScaleInEveryPart(t *testing.T) {
	tm, err := Compile("t", Spec{Kind: KindEmail, Subject: `Due: {{ .new.amount }}`,
		Text: `Amount {{ .new.amount }}`, HTML: `<p>{{ .new.amount }}</p>`})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(map[string]any{"new": row{"amount": decimal.New(123450, -2)}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != "Due: 1234.50" || out.Text != "Amount 1234.50" || out.HTML != "<p>1234.50</p>" {
		t.Errorf("got subject %q text %q html %q", out.Subject, out.Text, out.HTML)
	}
}

// TestJSONLeavesTheDataAlone: json converts a copy; the row the other templates see keeps its
// decimals.
func TestJSONLeavesTheDataAlone(t *testing.T) {
	d := decimal.New(1, -1)
	in := map[string]any{"r": row{"d": d}, "l": []any{d}}
	got := jsonDecimals(in).(map[string]any)
	if got["r"].(map[string]any)["d"] != "0.1" || got["l"].([]any)[0] != "0.1" {
		t.Errorf("jsonDecimals(%v) = %v", in, got)
	}
	if in["r"].(row)["d"] != d || in["l"].([]any)[0] != d {
		t.Errorf("jsonDecimals changed its input: %v", in)
	}
}
