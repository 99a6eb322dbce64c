package render

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
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

var kindNames = [...]string{KindSMS: "sms", KindEmail: "email", KindWebhook: "webhook"}

// String returns the lower-case name used in rule files: sms, email, webhook.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n != "" && n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q (want sms, email or webhook)", s)
}

// Spec is the source of a message template, as written in a rule file.
type Spec struct {
	// Kind selects which parts are allowed: SMS and webhook use Text only; e-mail uses Subject
	// and at least one of Text and HTML.
	Kind Kind
	// Text is a text/template: the SMS text, the e-mail's plain-text part, or the webhook body.
	// It is used as written: a trailing line break is part of the SMS.
	Text string
	// Subject is the e-mail subject (text/template, one line).
	Subject string
	// HTML is the e-mail's HTML part (html/template: values are auto-escaped).
	HTML string
	// MaxSegments, when > 0, fails an SMS that needs more segments than this.
	MaxSegments int
	// Location is the time zone dates are shown in; nil means UTC.
	Location *time.Location
	// Locale selects number formats, month and day names and plural rules (see the package
	// documentation). Empty means "en".
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

// The parts of a Spec, as named in errors.
const (
	PartText    = "text"
	PartSubject = "subject"
	PartHTML    = "html"
)

// executor is what text/template and html/template have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// Template is a compiled Spec. It is safe for concurrent use.
type Template struct {
	name                string
	spec                Spec
	subject, text, html executor
}

// Compile parses and checks spec. Every error is a *Error carrying the part (text, subject or
// html) and, where known, the line and column inside that part; errors of several parts are
// returned together (errors.Join).
func Compile(name string, spec Spec) (*Template, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	loc, err := lookupLocale(spec.Locale)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	if spec.Location == nil {
		spec.Location = time.UTC
	}
	t := &Template{name: name, spec: spec}
	funcs := funcMap(loc, spec.Location)
	counter := 0
	checks := &callChecker{funcs: funcs, loc: loc}
	var errs []error
	if spec.Subject != "" {
		if i := strings.IndexAny(spec.Subject, "\r\n"); i >= 0 {
			line, col := position(spec.Subject, i)
			errs = append(errs, &Error{Part: PartSubject, Line: line, Col: col,
				Msg: "subject must be a single line", Err: ErrHeaderInjection})
		} else if t.subject, err = compileText(name, PartSubject, spec.Subject, funcs, &counter, checks); err != nil {
			errs = append(errs, err)
		}
	}
	if spec.Text != "" {
		if t.text, err = compileText(name, PartText, spec.Text, funcs, &counter, checks); err != nil {
			errs = append(errs, err)
		}
	}
	if spec.HTML != "" {
		if t.html, err = compileHTML(name, spec.HTML, funcs, &counter, checks); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	if len(errs) > 1 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// validate checks which parts the kind allows.
func (s *Spec) validate() error {
	var errs []error
	need := func(part, v string) {
		if v == "" {
			errs = append(errs, &Error{Part: part, Msg: "a" + article(s.Kind) + " " + s.Kind.String() + " needs a " + part})
		}
	}
	forbid := func(part, v string) {
		if v != "" {
			errs = append(errs, &Error{Part: part, Msg: "a" + article(s.Kind) + " " + s.Kind.String() + " has no " + part})
		}
	}
	switch s.Kind {
	case KindSMS, KindWebhook:
		need(PartText, s.Text)
		forbid(PartSubject, s.Subject)
		forbid(PartHTML, s.HTML)
	case KindEmail:
		need(PartSubject, s.Subject)
		if s.Text == "" && s.HTML == "" {
			errs = append(errs, &Error{Part: PartText, Msg: "an email needs a text or an html part"})
		}
	default:
		errs = append(errs, &Error{Msg: "unknown kind " + s.Kind.String()})
	}
	if s.MaxSegments < 0 {
		errs = append(errs, &Error{Msg: "max_segments " + strconv.Itoa(s.MaxSegments) + " is negative"})
	} else if s.MaxSegments > 0 && s.Kind != KindSMS {
		errs = append(errs, &Error{Msg: "max_segments applies to sms only"})
	}
	return errors.Join(errs...)
}

// article is the suffix of "a" before the kind's name: "an sms", "an email", "a webhook".
func article(k Kind) string {
	if k == KindWebhook {
		return ""
	}
	return "n"
}

// compileText parses a text/template part and makes it strict.
func compileText(name, part, src string, funcs template.FuncMap, counter *int, checks *callChecker) (*template.Template, error) {
	tm, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		return nil, parseError(name, part, src, err)
	}
	trees := map[string]*parse.Tree{}
	for _, sub := range tm.Templates() {
		trees[sub.Name()] = sub.Tree
	}
	if err := strictTrees(part, src, trees, counter, checks, tm.Funcs); err != nil {
		return nil, err
	}
	return tm, nil
}

// compileHTML parses the html/template part, makes it strict and escapes it now, so that an
// escaping error is a compile error.
func compileHTML(name, src string, funcs template.FuncMap, counter *int, checks *callChecker) (*htmltemplate.Template, error) {
	tm, err := htmltemplate.New(name).Option("missingkey=error").Funcs(htmltemplate.FuncMap(funcs)).Parse(src)
	if err != nil {
		return nil, parseError(name, PartHTML, src, err)
	}
	trees := map[string]*parse.Tree{}
	for _, sub := range tm.Templates() {
		trees[sub.Name()] = sub.Tree
	}
	addFuncs := func(m template.FuncMap) *htmltemplate.Template { return tm.Funcs(htmltemplate.FuncMap(m)) }
	if err := strictTrees(PartHTML, src, trees, counter, checks, addFuncs); err != nil {
		return nil, err
	}
	// html/template escapes on the first Execute; run it on no data and keep only its
	// escaping errors (the field errors of the empty data are expected).
	var he *htmltemplate.Error
	if err := tm.Execute(limitedBuffer{new(bytes.Buffer)}, nil); errors.As(err, &he) {
		msg, _, _ := strings.Cut(he.Description, ": {") // drop html/template's internal context dump
		e := &Error{Part: PartHTML, Line: he.Line, Msg: msg}
		if he.Node != nil {
			e.Line, e.Col = position(src, int(he.Node.Position()))
		}
		return nil, e
	}
	return tm, nil
}

// strictTrees refuses recursion and rewrites the trees of one part to be strict, adding the
// generated helpers with addFuncs.
func strictTrees[T any](part, src string, trees map[string]*parse.Tree, counter *int, checks *callChecker, addFuncs func(template.FuncMap) T) error {
	if n, name := checkRecursion(trees); n != nil {
		line, col := position(src, int(n.Position()))
		return &Error{Part: part, Line: line, Col: col, Msg: "template " + strconv.Quote(name) + " calls itself (recursion is not allowed)"}
	}
	gen := template.FuncMap{}
	checks.part, checks.src, checks.errs = part, src, nil
	r := rewriter{funcs: gen, next: counter, checks: checks}
	for _, name := range sortedNames(trees) {
		if tree := trees[name]; tree != nil {
			r.list(tree.Root, "")
		}
	}
	if len(checks.errs) > 0 {
		return errors.Join(checks.errs...)
	}
	addFuncs(gen)
	return nil
}

// position converts a byte offset in src to a 1-based line and column (in bytes).
func position(src string, off int) (line, col int) {
	if off > len(src) {
		off = len(src)
	}
	before := src[:off]
	line = 1 + strings.Count(before, "\n")
	return line, off - strings.LastIndexByte(before, '\n')
}

// parseError converts a text/template parse error ("template: name:3: msg").
func parseError(name, part, src string, err error) error {
	msg := err.Error()
	e := &Error{Part: part, Msg: msg}
	rest, ok := strings.CutPrefix(msg, "template: "+name+":")
	if !ok {
		return e
	}
	e.Line, rest = leadingInt(rest)
	if len(rest) > 1 && rest[0] == ':' && rest[1] >= '0' && rest[1] <= '9' {
		e.Col, rest = leadingInt(rest[1:])
	}
	e.Msg = strings.TrimPrefix(rest, ": ")
	if e.Col == 0 && e.Line > 0 {
		e.Col = quotedColumn(src, e.Line, e.Msg)
	}
	return e
}

// quotedColumn finds the column of the first quoted name in msg (`function "foo" not defined`)
// on the given line of src; 0 if there is none.
func quotedColumn(src string, line int, msg string) int {
	i := strings.IndexByte(msg, '"')
	if i < 0 {
		return 0
	}
	name, err := strconv.QuotedPrefix(msg[i:])
	if err != nil {
		return 0
	}
	name, _ = strconv.Unquote(name)
	if name == "" {
		return 0
	}
	for l := 1; l < line; l++ {
		nl := strings.IndexByte(src, '\n')
		if nl < 0 {
			return 0
		}
		src = src[nl+1:]
	}
	if nl := strings.IndexByte(src, '\n'); nl >= 0 {
		src = src[:nl]
	}
	if c := strings.Index(src, name); c >= 0 {
		return c + 1
	}
	return 0
}

// leadingInt splits the decimal number at the start of s off.
func leadingInt(s string) (int, string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(s[:i])
	return n, s[i:]
}

// execError converts an execution error into an *Error with the part and position.
func execError(part string, err error) *Error {
	e := &Error{Part: part, Msg: err.Error(), Err: err}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "template: "); ok {
		// "name:line:col: executing "name" at <node>: msg"
		if i := strings.Index(rest, ": executing "); i >= 0 {
			loc := rest[:i]
			if c := strings.LastIndexByte(loc, ':'); c > 0 {
				if l := strings.LastIndexByte(loc[:c], ':'); l >= 0 {
					e.Line, _ = strconv.Atoi(loc[l+1 : c])
					col, _ := strconv.Atoi(loc[c+1:])
					e.Col = col + 1 // text/template counts columns from 0
				}
			}
			tail := rest[i:]
			if j := strings.Index(tail, ">: "); j >= 0 {
				e.Msg = tail[j+3:]
			}
		}
	}
	if fe, ok := asFieldError(err); ok {
		e.Msg, e.Err = fe.msg, fe.err
	} else if cause := helperCause(err); cause != nil {
		e.Msg, e.Err = cause.Error(), cause
	}
	return e
}

// helperCause returns the error a helper returned, if the execution error is one.
func helperCause(err error) error {
	var ee template.ExecError
	if !errors.As(err, &ee) {
		return nil
	}
	if strings.Contains(ee.Err.Error(), ": error calling ") {
		return errors.Unwrap(ee.Err)
	}
	return nil
}

// bufPool holds render buffers; Render is on the ingest hot path.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled keeps a rare huge message from pinning its buffer.
const maxPooled = 64 << 10

// Name returns the template's name (the rule's name).
func (t *Template) Name() string { return t.name }

// Kind returns the kind of message the template renders.
func (t *Template) Kind() Kind { return t.spec.Kind }

// Render executes the template on data (keys such as new, old, op, table, vars, commit_time,
// key, to; items and count for digests). A missing or NULL field, a helper error, a subject
// with a line break or an SMS over MaxSegments is an error: `template "name": part:line:col:
// msg`, wrapping an *Error (errors.As) and, where one applies, a sentinel (errors.Is).
func (t *Template) Render(data map[string]any) (out Output, err error) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if r := recover(); r != nil {
			// Bad input fails one message, never the ingest loop (DESIGN.md, invariant 5);
			// the buffer may be in any state, so it is not reused.
			out, err = Output{}, t.fail(&Error{Msg: fmt.Sprintf("render panicked: %v", r)})
			return
		}
		if buf.Cap() <= maxPooled {
			bufPool.Put(buf)
		}
	}()
	if t.subject != nil {
		if out.Subject, err = t.exec(t.subject, PartSubject, buf, data); err != nil {
			return Output{}, err
		}
		if strings.ContainsAny(out.Subject, "\r\n") {
			return Output{}, t.fail(&Error{Part: PartSubject, Msg: "subject contains a line break", Err: ErrHeaderInjection})
		}
	}
	if t.text != nil {
		if out.Text, err = t.exec(t.text, PartText, buf, data); err != nil {
			return Output{}, err
		}
	}
	if t.html != nil {
		if out.HTML, err = t.exec(t.html, PartHTML, buf, data); err != nil {
			return Output{}, err
		}
	}
	if t.spec.Kind == KindSMS {
		if out.Text == "" {
			return Output{}, t.fail(&Error{Part: PartText, Msg: "sms text is empty"})
		}
		out.Encoding, out.Segments = Segments(out.Text)
		if max := t.spec.MaxSegments; max > 0 && out.Segments > max {
			return Output{}, t.fail(&Error{Part: PartText, Err: ErrMaxSegments,
				Msg: fmt.Sprintf("sms needs %d segments (%s), max_segments is %d", out.Segments, out.Encoding, max)})
		}
	}
	return out, nil
}

// MaxOutput bounds the size of one rendered part.
const MaxOutput = 1 << 20

// errTooLong stops an execution whose output passes MaxOutput.
var errTooLong = errors.New("output exceeds 1 MiB")

// limitedBuffer is a bytes.Buffer that refuses to grow past MaxOutput.
type limitedBuffer struct{ *bytes.Buffer }

func (b limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxOutput {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}

// exec runs one part into buf and returns the text.
func (t *Template) exec(x executor, part string, buf *bytes.Buffer, data map[string]any) (string, error) {
	buf.Reset()
	if err := x.Execute(limitedBuffer{buf}, data); err != nil {
		if errors.Is(err, errTooLong) {
			return "", t.fail(&Error{Part: part, Msg: errTooLong.Error()})
		}
		return "", t.fail(execError(part, err))
	}
	return buf.String(), nil
}

// fail names the template in a render error.
func (t *Template) fail(e *Error) error {
	switch {
	case e.Part == "":
		return fmt.Errorf("template %q: %w", t.name, e)
	case e.Line > 0:
		return fmt.Errorf("template %q: %s:%w", t.name, e.Part, e)
	}
	return fmt.Errorf("template %q: %s: %w", t.name, e.Part, e)
}
