package render

import (
	"testing"
	"text/template"
	"time"
)

const benchSMS = `Hallo {{ .new.name }}, Ihre Rate von {{ money .new.amount "EUR" }} ist am {{ date .new.due }} fällig. ` +
	`Vertrag {{ .new.contract_id }}. {{ .vars.shop }}`

func benchData() map[string]any {
	return map[string]any{
		"op": "update", "table": "shop.loans", "to": "+4917612345689",
		"new": row{"name": "Anna", "amount": dec("1234.50"), "due": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			"contract_id": int64(4711), "note": nil},
		"old":  nil,
		"vars": map[string]any{"shop": "Acme"},
	}
}

// BenchmarkRender renders a typical SMS (5 fields, money, date) with segment counting.
func BenchmarkRender(b *testing.B) {
	tm, err := Compile("repayment_due", Spec{Kind: KindSMS, Text: benchSMS, Locale: "de", MaxSegments: 3})
	if err != nil {
		b.Fatal(err)
	}
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderParallel is BenchmarkRender from all Ps (the sender renders concurrently).
func BenchmarkRenderParallel(b *testing.B) {
	tm, err := Compile("repayment_due", Spec{Kind: KindSMS, Text: benchSMS, Locale: "de", MaxSegments: 3})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		data := benchData()
		for pb.Next() {
			if _, err := tm.Render(data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPlainTextTemplate is the same template on bare text/template (no strictness, no
// segment count), as the baseline the strict rewrite is measured against.
func BenchmarkPlainTextTemplate(b *testing.B) {
	loc, _ := lookupLocale("de")
	tm := template.Must(template.New("t").Funcs(funcMap(loc, time.UTC)).Parse(benchSMS))
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		var buf discard
		if err := tm.Execute(&buf, data); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
