// Package render turns a rule's message templates and one row's data into the text that is
// sent: an SMS (with its GSM-7/UCS-2 encoding and segment count), an e-mail (subject, text and
// HTML parts) or a webhook body.
//
// Guarantees: rendering is strict. A field that does not exist, or that is NULL where its value
// is printed or passed to a helper, fails that one message with an error naming the field
// (`template "repayment_due": text:1:12: field new.amount is NULL`, `new has no field
// "amout"`), never a "<no value>" or a blank in the text. `default` is the explicit way to
// allow NULL; the condition of if/with/range, and the arguments of default, json, and, or, not,
// eq and ne may be NULL. A missing field is always an error (it is a typo, not data). Money is
// formatted from the exact decimal, never through a float. A DECIMAL prints with its column's
// scale wherever a value becomes text ({{ .new.amount }}, print/printf, upper, truncate,
// number without decimals, json): 1234.50 from a DECIMAL(12,2) is "1234.50", never "1234.5". HTML parts are auto-escaped
// (html/template), a subject is one line (a line break would be a header injection), and an
// SMS longer than the rule's max_segments fails instead of being sent. A compiled Template is
// safe for concurrent use.
//
// # Templates
//
// Templates are Go text/template (html/template for the HTML part). The data has the keys new,
// old (rows: column → value, NULL as nil), op, table, vars, commit_time, key, to, and for
// digests items and count. Helpers take the value first, like money in the example;
// the one-argument helpers (upper, lower, title, trim, mask, json, and date, datetime and
// number without options) may also be piped into:
//
//	money    {{ money .new.amount "EUR" }}        "€1,234.50" (en), "1.234,50 €" (de); rounded
//	         half away from zero to the currency's decimals; decimal, integer or decimal string
//	number   {{ number .new.qty }}, {{ number .new.rate 2 }}   locale separators; without the
//	         decimals argument, the value's own digits (a DECIMAL's scale)
//	date     {{ date .new.due }}, {{ date .new.due "long" }}   layouts short, medium (default),
//	         long, full, time, or a Go layout ("02.01.2006"); month and day names in the locale
//	datetime {{ datetime .commit_time }}, {{ datetime .commit_time "short" }}   date and time
//	plural   {{ plural .count "item" "items" }}   the locale's plural form; "%d" in a form is
//	         replaced by the count ("%d items"); ru takes 3 forms (one, few, many)
//	truncate {{ truncate .new.text 20 }}          at most 20 characters, "..." included if cut
//	upper, lower, title, trim                      {{ upper .new.name }}
//	default  {{ .new.x | default "n/a" }}          the fallback when the value is NULL or ""
//	json     {{ json .new }}                       JSON; for webhooks. Decimals are strings with
//	         their scale ("1234.50"): exact, where a JSON number is a float to many readers
//	mask     {{ mask .to }}                        see Mask
//	index    {{ index .vars.list 0 }}              as text/template's, but a missing key or an
//	         index out of range is an error, not NULL
//
// Locales (Spec.Locale): en, de, fr, es, it, ru; a region ("de-AT") is accepted and ignored.
// Separators are ASCII (a space where CLDR has a no-break space) and the ellipsis is "...", so
// an SMS stays in GSM-7. Dates are shown in Spec.Location, except a DATE column (cdc's midnight
// UTC), which the date helper shows as its calendar day.
//
// # Errors
//
// Compile returns *Error values with the part (text, subject, html) and the 1-based line and
// column inside it, all of a part's errors joined. Besides text/template's own parse errors it
// reports helper calls that would fail on every row: a wrong number of arguments, a value piped
// into a value-first helper with options, a literal unknown currency or date layout, the wrong
// number of plural forms for the locale, a negative truncate length, and a template that calls
// itself. Render errors read `template "name": part:line:col: msg` and wrap an *Error and,
// where one applies, ErrMissingField, ErrNullField, ErrMaxSegments or ErrHeaderInjection.
//
// # Limits
//
// One part renders at most MaxOutput bytes; range over an integer runs at most 100 times;
// templates may not recurse. These keep a wrong template from stalling the ingest path.
//
// render depends on no other package of this module.
package render
