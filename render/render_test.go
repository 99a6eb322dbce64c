package render

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// row is a named map type like cdc.Row (render must not import cdc).
type row map[string]any

func repaymentData() map[string]any {
	return map[string]any{
		"op":    "update",
		"table": "shop.loans",
		"to":    "+4917612345689",
		"new": row{
			"id": int64(42), "name": "Anna", "amount": dec("1234.50"), "note": nil,
			"due": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		},
		"old":  nil,
		"vars": map[string]any{"shop": "Acme", "list": []any{"a", "b"}},
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string // err.Error()
		part string // of the first *Error
		line int
		col  int
	}{
		{"unknown function", Spec{Kind: KindSMS, Text: `Hi {{ foo .new }}`}, `1:7: function "foo" not defined`, PartText, 1, 7},
		{"unknown function on line 2", Spec{Kind: KindSMS, Text: "Hi\n  {{ .new.name | bar }}"}, `2:18: function "bar" not defined`, PartText, 2, 18},
		{"unclosed action", Spec{Kind: KindSMS, Text: "Hi\n{{ .new.name"}, `2: unclosed action`, PartText, 2, 0},
		{"unexpected end", Spec{Kind: KindSMS, Text: "{{ if .new }}x"}, `1: unexpected EOF`, PartText, 1, 0},
		{"subject newline", Spec{Kind: KindEmail, Subject: "Hello\n{{ .new.name }}", Text: "x"}, `1:6: subject must be a single line`, PartSubject, 1, 6},
		{"subject trailing newline", Spec{Kind: KindEmail, Subject: "Hello\n", Text: "x"}, `1:6: subject must be a single line`, PartSubject, 1, 6},
		{"html parse error", Spec{Kind: KindEmail, Subject: "s", HTML: "<p>\n{{ end }}"}, `2: unexpected {{end}}`, PartHTML, 2, 0},
		{"html non-text context", Spec{Kind: KindEmail, Subject: "s", HTML: `<a href="{{ .new.url }}`}, `ends in a non-text context`, PartHTML, 0, 0},
		{"sms needs text", Spec{Kind: KindSMS}, `an sms needs a text`, PartText, 0, 0},
		{"sms has no subject", Spec{Kind: KindSMS, Text: "x", Subject: "s"}, `an sms has no subject`, PartSubject, 0, 0},
		{"webhook has no html", Spec{Kind: KindWebhook, Text: "x", HTML: "<p>"}, `a webhook has no html`, PartHTML, 0, 0},
		{"email needs subject", Spec{Kind: KindEmail, Text: "x"}, `an email needs a subject`, PartSubject, 0, 0},
		{"email needs a body", Spec{Kind: KindEmail, Subject: "s"}, `an email needs a text or an html part`, PartText, 0, 0},
		{"unknown kind", Spec{Text: "x"}, `unknown kind kind(0)`, "", 0, 0},
		{"max_segments negative", Spec{Kind: KindSMS, Text: "x", MaxSegments: -1}, `max_segments -1 is negative`, "", 0, 0},
		{"max_segments on email", Spec{Kind: KindEmail, Subject: "s", Text: "x", MaxSegments: 2}, `max_segments applies to sms only`, "", 0, 0},
		{"unknown locale", Spec{Kind: KindSMS, Text: "x", Locale: "xx"}, `unknown locale "xx" (known: en, de, fr, es, it, ru)`, "", 0, 0},
		{"helper arity", Spec{Kind: KindSMS, Text: `{{ money .new.amount }}`}, `1:4: wrong number of args for money: want 2, got 1`, PartText, 1, 4},
		{"helper arity piped", Spec{Kind: KindSMS, Text: `{{ .new.a | upper "x" }}`}, `1:13: wrong number of args for upper: want 1, got 2`, PartText, 1, 13},
		{"variadic helper arity", Spec{Kind: KindSMS, Text: `{{ date }}`}, `1:4: wrong number of args for date: want at least 1, got 0`, PartText, 1, 4},
		{"value piped into a value-first helper", Spec{Kind: KindSMS, Text: `{{ .new.amount | money "EUR" }}`},
			`1:18: money takes the value first ({{ money .value ... }}), it cannot be piped into with arguments`, PartText, 1, 18},
		{"literal unknown currency", Spec{Kind: KindSMS, Text: `{{ money .new.amount "eur" }}`},
			`1:22: money: unknown currency "eur" (want an ISO 4217 code such as EUR)`, PartText, 1, 22},
		{"literal unknown layout", Spec{Kind: KindSMS, Text: `{{ datetime .new.due "lang" }}`},
			`1:22: datetime: unknown layout "lang" (want short, medium, long, full, time or a Go layout)`, PartText, 1, 22},
		{"plural forms of the locale", Spec{Kind: KindSMS, Locale: "ru", Text: `{{ plural .count "товар" "товаров" }}`},
			`1:4: plural: locale ru takes 3 forms, got 2`, PartText, 1, 4},
		{"negative truncate", Spec{Kind: KindSMS, Text: `{{ truncate .new.name -1 }}`}, `1:23: truncate: -1 is not a valid length`, PartText, 1, 23},
		{"number decimals", Spec{Kind: KindSMS, Text: `{{ number .new.rate 1.5 }}`}, `1:21: number: 1.5 is not a valid number of decimals (0..18)`, PartText, 1, 21},
		{"all helper errors of a part", Spec{Kind: KindSMS, Text: "{{ money .a }}\n{{ upper }}"},
			"1:4: wrong number of args for money: want 2, got 1\n2:4: wrong number of args for upper: want 1, got 0", PartText, 1, 4},
		{"errors of two parts", Spec{Kind: KindEmail, Subject: "{{ foo }}", Text: "{{ bar }}"},
			"1:4: function \"foo\" not defined\n1:4: function \"bar\" not defined", PartSubject, 1, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile("repayment_due", tt.spec)
			if err == nil {
				t.Fatalf("Compile succeeded, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Fatalf("error = %q\nwant    %q", err.Error(), tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *Error", err)
			}
			if e.Part != tt.part || e.Line != tt.line || e.Col != tt.col {
				t.Fatalf("*Error{Part: %q, Line: %d, Col: %d}, want {%q, %d, %d}", e.Part, e.Line, e.Col, tt.part, tt.line, tt.col)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       string
		is         error
		line, col  int
	}{
		{"missing field", `Due: {{ money .new.amout "EUR" }}`, `template "repayment_due": text:1:15: new has no field "amout"`, ErrMissingField, 1, 15},
		{"missing top-level key", `{{ .nwe.amount }}`, `template "repayment_due": text:1:4: data has no field "nwe"`, ErrMissingField, 1, 4},
		{"NULL printed", "Hi\n{{ .new.note }}", `template "repayment_due": text:2:4: field new.note is NULL`, ErrNullField, 2, 4},
		{"NULL to a helper", `{{ upper .new.note }}`, `template "repayment_due": text:1:10: field new.note is NULL`, ErrNullField, 1, 10},
		{"NULL parent", `{{ .old.amount }}`, `template "repayment_due": text:1:4: field old is NULL`, ErrNullField, 1, 4},
		{"NULL via $", `{{ with .vars }}{{ $.new.note }}{{ end }}`, `template "repayment_due": text:1:20: field new.note is NULL`, ErrNullField, 1, 20},
		{"missing inside with", `{{ with .new }}{{ .nmae }}{{ end }}`, `template "repayment_due": text:1:19: new has no field "nmae"`, ErrMissingField, 1, 19},
		{"NULL in a variable", `{{ $n := .new.note | default nil }}{{ $n }}`, `template "repayment_due": text:1:39: $n is NULL (use default)`, ErrNullField, 1, 39},
		{"NULL from index", `{{ index .new "note" }}`, `template "repayment_due": text:1:4: index .new "note" is NULL (use default)`, ErrNullField, 1, 4},
		{"NULL variable to a builtin", `{{ $n := .new.note | default nil }}{{ printf "%s" $n }}`, `template "repayment_due": text:1:51: $n is NULL (use default)`, ErrNullField, 1, 51},
		{"index missing key", `{{ index .new "nmae" }}`, `template "repayment_due": text:1:4: index: no entry for key "nmae"`, nil, 1, 4},
		{"index out of range", `{{ index .vars.list 3 }}`, `template "repayment_due": text:1:4: index: 3 out of range (length 2)`, nil, 1, 4},
		{"NULL method receiver", `{{ .new.note.Format "2006" }}`, `template "repayment_due": text:1:4: field new.note is NULL`, ErrNullField, 1, 4},
		{"missing method receiver", `{{ .new.dux.Format "2006" }}`, `template "repayment_due": text:1:4: new has no field "dux"`, ErrMissingField, 1, 4},
		{"NULL assigned", `{{ $n := .new.note }}`, `template "repayment_due": text:1:10: field new.note is NULL`, ErrNullField, 1, 10},
		{"field of a string", `{{ .new.name.first }}`, `template "repayment_due": text:1:4: field new.name.first: a string has no fields`, ErrMissingField, 1, 4},
		{"missing field in an argument", `{{ index .vars.lst 3 }}`, `template "repayment_due": text:1:10: vars has no field "lst"`, ErrMissingField, 1, 10},
		{"helper error", `{{ money .new.amount .vars.shop }}`, `template "repayment_due": text:1:4: money: unknown currency "Acme" (want an ISO 4217 code such as EUR)`, nil, 1, 4},
		{"empty sms", `{{ if .old }}x{{ end }}`, `template "repayment_due": text: sms text is empty`, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm, err := Compile("repayment_due", Spec{Kind: KindSMS, Text: tt.text})
			if err != nil {
				t.Fatal(err)
			}
			out, err := tm.Render(repaymentData())
			if err == nil {
				t.Fatalf("Render = %q, want error %q", out.Text, tt.want)
			}
			if err.Error() != tt.want {
				t.Fatalf("error = %q\nwant    %q", err.Error(), tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(err, %v) = false", tt.is)
			}
			var e *Error
			if !errors.As(err, &e) || e.Part != PartText || e.Line != tt.line || e.Col != tt.col {
				t.Fatalf("*Error = %+v, want text %d:%d", e, tt.line, tt.col)
			}
			if out != (Output{}) {
				t.Fatalf("Output = %+v on error, want zero", out)
			}
		})
	}
}

func TestNULLIsAllowedWhereItHasAMeaning(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"default", `{{ .new.note | default "n/a" }}`, "n/a"},
		{"if on NULL", `{{ if .new.note }}note{{ else }}none{{ end }}`, "none"},
		{"if on a NULL parent", `{{ if .old.amount }}changed{{ else }}new{{ end }}`, "new"},
		{"with on NULL", `{{ with .new.note }}{{ . }}{{ else }}none{{ end }}`, "none"},
		{"range on NULL", `{{ range .old }}x{{ else }}empty{{ end }}`, "empty"},
		{"not", `{{ if not .new.note }}none{{ end }}`, "none"},
		{"and/or", `{{ if or .new.note .new.name }}ok{{ end }}`, "ok"},
		{"eq with NULL", `{{ if eq .new.note nil }}null{{ end }}`, "null"},
		{"json", `{{ json .new.note }}`, "null"},
		{"index", `{{ index .vars.list 1 }} {{ index .new "name" }} {{ index .vars "list" 0 }}`, "b Anna a"},
		{"index of a NULL entry with default", `{{ index .new "note" | default "-" }}`, "-"},
		{"non-NULL printed", `{{ .new.name }} {{ .new.id }} {{ .vars.shop }}`, "Anna 42 Acme"},
		{"method on a value", `{{ .new.due.Year }}`, "2026"},
		{"method with arguments", `{{ .new.due.Format "2006-01-02" }}`, "2026-12-01"},
		{"method of a variable", `{{ $n := .new }}{{ $n.due.Format "2006" }} {{ $.new.due.Format "01" }}`, "2026 12"},
		{"method of a chain", `{{ (.new).due.Format "2006" }}`, "2026"},
		{"method of the dot", `{{ with .new.due }}{{ .Format "2006" }}{{ end }}`, "2026"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm, err := Compile("t", Spec{Kind: KindSMS, Text: tt.text})
			if err != nil {
				t.Fatal(err)
			}
			out, err := tm.Render(repaymentData())
			if err != nil {
				t.Fatal(err)
			}
			if out.Text != tt.want {
				t.Fatalf("Render = %q, want %q", out.Text, tt.want)
			}
		})
	}
}

func TestRenderSMS(t *testing.T) {
	tm, err := Compile("repayment_due", Spec{Kind: KindSMS, Locale: "de", MaxSegments: 1,
		Text: `Hallo {{ .new.name }}, {{ money .new.amount "EUR" }} sind am {{ date .new.due }} fällig. {{ .vars.shop }}`})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(repaymentData())
	if err != nil {
		t.Fatal(err)
	}
	want := Output{Text: "Hallo Anna, 1.234,50 € sind am 01.12.2026 fällig. Acme", Encoding: EncodingGSM7, Segments: 1}
	if out != want {
		t.Fatalf("Render = %+v\nwant     %+v", out, want)
	}
}

func TestMaxSegments(t *testing.T) {
	tests := []struct {
		name, text string
		max        int
		want       string
	}{
		{"GSM-7 at the limit", `{{ .v }}`, 2, ""},
		{"GSM-7 over the limit", `{{ .v }}x`, 2, `template "t": text: sms needs 3 segments (GSM-7), max_segments is 2`},
		{"UCS-2 over the limit", `{{ .v }}` + strings.Repeat("я", 30), 3, `template "t": text: sms needs 6 segments (UCS-2), max_segments is 3`},
		{"no limit", `{{ .v }}я`, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm, err := Compile("t", Spec{Kind: KindSMS, Text: tt.text, MaxSegments: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tm.Render(v(strings.Repeat("a", 306)))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Render: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("error = %v, want %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, ErrMaxSegments):
				t.Fatalf("errors.Is(err, ErrMaxSegments) = false")
			}
		})
	}
}

func TestRenderEmail(t *testing.T) {
	tm, err := Compile("welcome", Spec{Kind: KindEmail,
		Subject: `Welcome, {{ .new.name }}`,
		Text:    "Hello {{ .new.name }},\nyour link: {{ .new.url }}\n",
		HTML:    `<p>Hello {{ .new.name }}</p><a href="{{ .new.url }}">open</a><script>var n = {{ .new.name }};</script>`,
	})
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"new": map[string]any{"name": `<b>"Bob" & Co</b>`, "url": "javascript:alert(1)"}}
	out, err := tm.Render(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Output{
		Subject: `Welcome, <b>"Bob" & Co</b>`,
		Text:    "Hello <b>\"Bob\" & Co</b>,\nyour link: javascript:alert(1)\n",
		HTML:    `<p>Hello &lt;b&gt;&#34;Bob&#34; &amp; Co&lt;/b&gt;</p><a href="#ZgotmplZ">open</a><script>var n = "\u003cb\u003e\"Bob\" \u0026 Co\u003c/b\u003e";</script>`,
	}
	if out != want {
		t.Fatalf("Render =\n%+v\nwant\n%+v", out, want)
	}
}

func TestHTMLIsStrictToo(t *testing.T) {
	tm, err := Compile("t", Spec{Kind: KindEmail, Subject: "s", HTML: "<p>\n{{ .new.note }}</p>"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tm.Render(repaymentData())
	if want := `template "t": html:2:4: field new.note is NULL`; err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestSubjectRejectsLineBreaks(t *testing.T) {
	tm, err := Compile("t", Spec{Kind: KindEmail, Subject: "Order {{ .new.name }}", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a\r\nBcc: victim@example.com", "a\nb", "a\rb"} {
		_, err := tm.Render(map[string]any{"new": map[string]any{"name": name}})
		if want := `template "t": subject: subject contains a line break`; err == nil || err.Error() != want {
			t.Fatalf("name %q: error = %v, want %q", name, err, want)
		}
		if !errors.Is(err, ErrHeaderInjection) {
			t.Fatalf("errors.Is(err, ErrHeaderInjection) = false")
		}
	}
}

func TestRangeOverDigestItems(t *testing.T) {
	tm, err := Compile("digest", Spec{Kind: KindEmail, Subject: `{{ .count }} new {{ plural .count "request" "requests" }}`,
		Text: `{{ range .items }}- {{ .id }}: {{ .title }}
{{ end }}`})
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"count": 2, "items": []map[string]any{{"id": int64(1), "title": "A"}, {"id": int64(2), "title": "B"}}}
	out, err := tm.Render(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Output{Subject: "2 new requests", Text: "- 1: A\n- 2: B\n"}); out != want {
		t.Fatalf("Render = %+v, want %+v", out, want)
	}
	data["items"] = []map[string]any{{"id": int64(1), "title": "A"}, {"id": int64(2), "title": nil}}
	_, err = tm.Render(data)
	if want := `template "digest": text:1:35: field items[].title is NULL`; err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestDefinedTemplatesAreStrict(t *testing.T) {
	tm, err := Compile("t", Spec{Kind: KindWebhook, Text: `{{ define "who" }}{{ .name }}{{ end }}Hi {{ template "who" .new }}`})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(repaymentData())
	if err != nil || out.Text != "Hi Anna" {
		t.Fatalf("Render = %q, %v", out.Text, err)
	}
	_, err = tm.Render(map[string]any{"new": map[string]any{"name": nil}})
	if want := `template "t": text:1:22: field name is NULL`; err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestRenderIsSafeForConcurrentUse(t *testing.T) {
	tm, err := Compile("t", Spec{Kind: KindEmail, Subject: "{{ .new.name }}", Text: `{{ money .new.amount "EUR" }}`, HTML: "<b>{{ .new.name }}</b>"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				out, err := tm.Render(repaymentData())
				if err != nil || out.Text != "€1,234.50" || out.HTML != "<b>Anna</b>" || out.Subject != "Anna" {
					t.Errorf("Render = %+v, %v", out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestKindNames(t *testing.T) {
	for _, k := range []Kind{KindSMS, KindEmail, KindWebhook} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Fatalf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseKind("fax"); err == nil || err.Error() != `unknown kind "fax" (want sms, email or webhook)` {
		t.Fatalf("ParseKind(fax) error = %v", err)
	}
}

func TestRecursionIsRefused(t *testing.T) {
	_, err := Compile("t", Spec{Kind: KindSMS, Text: `{{ define "a" }}{{ template "b" . }}{{ end }}{{ define "b" }}x{{ template "a" . }}{{ end }}{{ template "a" . }}`})
	var e *Error
	if !errors.As(err, &e) || e.Msg != `template "a" calls itself (recursion is not allowed)` || e.Line != 1 {
		t.Fatalf("Compile error = %v", err)
	}
}

func TestRunawayTemplatesStop(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"range over a large integer", `{{ range 1000000000 }}{{ end }}x`, `template "t": text:1:10: range over 1000000000: at most 100 iterations`},
		{"range over a large count", `{{ range .count }}{{ end }}x`, `template "t": text:1:10: range over 5000: at most 100 iterations`},
		{"output over 1 MiB", `{{ range 100 }}{{ range 100 }}{{ range 100 }}xy{{ end }}{{ end }}{{ end }}`, `template "t": text: output exceeds 1 MiB`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm, err := Compile("t", Spec{Kind: KindWebhook, Text: tt.text})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tm.Render(map[string]any{"count": int64(5000)})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// panicky panics when a template calls its method: Render must fail the message, not panic.
type panicky struct{}

func (panicky) Boom() string { panic("boom") }

func TestRenderRecoversFromPanics(t *testing.T) {
	tm, err := Compile("t", Spec{Kind: KindWebhook, Text: `{{ .v.Boom }}`})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tm.Render(v(panicky{}))
	if want := `template "t": text:1:4: boom`; err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestHTMLHelpersAndDefault(t *testing.T) {
	tm, err := Compile("t", Spec{Kind: KindEmail, Subject: "s", Locale: "de",
		HTML: `<td>{{ money .new.amount "EUR" }}</td><td>{{ .new.note | default "<none>" }}</td><td title="{{ .new.name | upper }}">{{ .new.name | html }}</td>`})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.Render(repaymentData())
	if err != nil {
		t.Fatal(err)
	}
	if want := `<td>1.234,50 €</td><td>&lt;none&gt;</td><td title="ANNA">Anna</td>`; out.HTML != want {
		t.Fatalf("HTML = %q, want %q", out.HTML, want)
	}
}
