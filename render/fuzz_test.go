package render

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzData is the data the fuzzers render with: every value type cdc produces, and a NULL.
func fuzzData(s string, n int64) map[string]any {
	return map[string]any{
		"op": "insert", "table": "shop.orders", "to": s, "key": "k", "count": n,
		"commit_time": time.Date(2026, 3, 29, 8, 30, 0, 0, time.UTC),
		"new": row{
			"id": n, "u": uint64(n), "f": float64(n) / 3, "name": s, "b": []byte(s), "nul": nil,
			"amount": dec("1234.50"), "due": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			"j": map[string]any{"a": []any{1.0, "x", nil}},
		},
		"old":   nil,
		"vars":  map[string]any{"shop": "Acme"},
		"items": []map[string]any{{"id": int64(1), "title": s}, {"id": int64(2), "title": nil}},
	}
}

// FuzzCompile: any source compiles or fails with a *Error; what compiles renders or fails,
// never panics, and never prints "<no value>".
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		`Hi {{ .new.name }}, {{ money .new.amount "EUR" }} due {{ date .new.due "long" }}`,
		`{{ .new.nul }}`, `{{ .new.nul | default "n/a" }}`, `{{ .nope.x }}`, `{{ $x := .new.nul | default nil }}{{ $x }}`,
		`{{ range .items }}{{ .title }}{{ end }}`, `{{ with .new }}{{ .name }}{{ else }}x{{ end }}`,
		`{{ define "a" }}{{ .name }}{{ end }}{{ template "a" .new }}`, `{{ (.new).name }}`, `{{ (index .items 0).title }}`,
		`{{ .new.due.Format "2006" }}`, `{{ .new.due.Year }}`, `{{ if eq .new.nul nil }}{{ end }}`, `{{ json .new }}`,
		`{{ plural .count "a" "b" }}`, `{{ truncate .new.name 5 }}`, `{{ index .new "nul" }}`, `{{ $.new.name }}`,
		`<a href="{{ .new.name }}">{{ .new.name }}</a>`, `{{ foo }}`, `{{ .new.name`, "{{/* c */}}", `{{ block "x" . }}{{ end }}`,
		`{{ range $i, $e := .items }}{{ $i }}{{ $e.title }}{{ end }}`, `{{ break }}`, `{{ .new.name.x.y }}`, `{{ print nil }}`,
	} {
		f.Add(seed, uint8(KindSMS))
		f.Add(seed, uint8(KindEmail))
	}
	f.Fuzz(func(t *testing.T, src string, kind uint8) {
		spec := Spec{Kind: Kind(kind%4) + 0, Text: src, MaxSegments: 3, Locale: "de"}
		if spec.Kind == KindEmail {
			spec.Subject, _, _ = strings.Cut(src, "\n")
			spec.HTML = src
			spec.MaxSegments = 0
		} else if spec.Kind != KindSMS {
			spec.MaxSegments = 0
		}
		tm, err := Compile("fuzz", spec)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile error %T is not a *Error: %v", err, err)
			}
			return
		}
		out, err := tm.Render(fuzzData("Anna", 3))
		if err != nil {
			return
		}
		if !strings.Contains(src, "no value") && strings.Contains(out.Subject+out.Text+out.HTML, "<no value>") {
			t.Fatalf("rendered <no value>: %+v", out)
		}
	})
}

// FuzzRender: any data values render or fail, never panic; helpers and Segments agree.
func FuzzRender(f *testing.F) {
	f.Add("Anna", int64(1), "1234.50", "EUR", 10)
	f.Add("Zoë 😀 €{}", int64(-5), "-0.005", "JPY", 0)
	f.Add(strings.Repeat("я", 200), int64(21), "x", "eur", -1)
	f.Add("", int64(0), "", "", 3)
	f.Add("+4917612345689", int64(1<<62), "99999999999999999999999.999", "KWD", 1000)
	tm, err := Compile("fuzz", Spec{Kind: KindSMS, Locale: "ru", Text: `{{ title .new.name }}: {{ money .new.amount .vars.cur }}, ` +
		`{{ number .new.amount 2 }} {{ plural .count "товар" "товара" "товаров" }} {{ truncate .new.name .vars.n }} ` +
		`{{ date .new.due "full" }} {{ datetime .commit_time }} {{ mask .to }} {{ json .new.name }}`})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string, n int64, amount, cur string, width int) {
		data := fuzzData(s, n)
		data["new"].(row)["amount"] = amount
		data["vars"] = map[string]any{"cur": cur, "n": width}
		out, err := tm.Render(data)
		if err == nil {
			enc, segs := Segments(out.Text)
			if enc != out.Encoding || segs != out.Segments || segs < 1 {
				t.Fatalf("Output %s/%d, Segments %s/%d", out.Encoding, out.Segments, enc, segs)
			}
		}
		if m := Mask(s); len(strings.TrimSpace(s)) > 3 && m == strings.TrimSpace(s) {
			t.Fatalf("Mask(%q) = %q reveals the recipient", s, m)
		}
	})
}
