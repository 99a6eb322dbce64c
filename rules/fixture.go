package rules

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"

	"notifier/cdc"
	"notifier/render"
)

// Fixtures (issue 3, `notifier rules test`): a YAML file of cases, each a change (or a sweep
// row) with the effects and rendered messages the rules must produce.
//
//	cases:
//	  - name: contract activated sends an SMS
//	    table: lending.contracts          # or `sweep: holiday-wish` for a sweep row (in new)
//	    op: update                        # insert, update, delete, snapshot
//	    commit_time: 2026-03-01T10:30:00Z # default 2026-01-01T00:00:00Z
//	    position: gtid:0-1-5              # optional; default "fixture"
//	    index: 0                          # optional row index in the transaction
//	    old: {id: 7, status: draft}
//	    new: {id: 7, status: active, amount: !decimal 1500.00, due_date: 2026-03-31}
//	    expect:                           # in order; `expect: []` = nothing happens
//	      - rule: contract-activated
//	        kind: send                    # send, schedule, cancel, digest, failed (optional)
//	        key: contract-activated:7
//	        to: "+491701234567"
//	        text: Your contract 7 is active.
//	        subject, html, at, slot, group, window: …  # compared when given
//	        error: substring of the failure   # for kind failed, or a template error
//
// Row values: YAML integers become int64, floats float64, unquoted dates and times time.Time
// in UTC (a date is a DATE: midnight UTC), `!decimal 12.50` a decimal.Decimal, null NULL.
// Cancel effects are compared only when a case expects at least one; otherwise they are
// ignored (every update of a reminder's row that does not match cancels its slot).

// FixtureResult is the outcome of one case.
type FixtureResult struct {
	Name string
	File string
	Line int
	// Effects are what the rules produced (cancels included); Outputs holds the rendered
	// message of each (zero for cancel and failed effects, and on a template error).
	Effects []Effect
	Outputs []render.Output
	// Failures are the differences from the expectation; empty when the case passed.
	Failures []string
}

// Passed reports whether the case matched its expectation.
func (r *FixtureResult) Passed() bool { return len(r.Failures) == 0 }

var (
	fixtureFileFields = []string{"cases"}
	fixtureCaseFields = []string{"name", "table", "sweep", "op", "commit_time", "position", "index",
		"old", "new", "expect"}
	fixtureExpectFields = []string{"rule", "kind", "key", "to", "channel", "text", "subject", "html",
		"at", "slot", "group", "window", "error"}
)

// RunFixtures evaluates every case of the fixture file at path against set and renders each
// effect with its rule's template. The error reports a malformed fixture file (all problems,
// positioned like LoadDir's); failing cases are reported in the results, not as an error.
func RunFixtures(set *Set, path string) ([]FixtureResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fixture file %q: %w", path, err)
	}
	var errs []error
	s := &source{name: path, data: data, errs: &errs}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: path, Line: 1, Col: 1, Msg: err.Error(), Err: ErrFixture}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: path, Line: 1, Col: 1, Msg: "empty fixture file", Err: ErrFixture}
	}
	top := s.fields(doc.Content[0], "fixture file", fixtureFileFields)
	var cases []*fixtureCase
	if top != nil && top.get("cases") != nil {
		s.list(top.get("cases"), "cases", func(n *yaml.Node) {
			if c := s.fixtureCase(n, set); c != nil {
				cases = append(cases, c)
			}
		})
	}
	if len(errs) > 0 {
		for i, e := range errs {
			if pe, ok := e.(*Error); ok && pe.Err == nil {
				pe.Err = ErrFixture
				errs[i] = pe
			}
		}
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	ev := set.NewEvaluator()
	results := make([]FixtureResult, 0, len(cases))
	for _, c := range cases {
		results = append(results, c.run(ev))
	}
	return results, nil
}

type fixtureCase struct {
	name, file string
	line       int
	change     cdc.Change
	sweep      *Sweep
	meta       Meta
	expect     []fixtureExpect
	cancels    bool // some expectation is a cancel: compare cancels too
}

type fixtureExpect struct {
	line   int
	fields map[string]string
}

func (s *source) fixtureCase(n *yaml.Node, set *Set) *fixtureCase {
	f := s.fields(n, "fixture case", fixtureCaseFields)
	if f == nil {
		return nil
	}
	before := len(*s.errs)
	c := &fixtureCase{file: s.name, line: n.Line, meta: Meta{Position: "fixture",
		CommitTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if v := f.get("name"); v != nil {
		c.name, _ = s.nonEmpty(v, "name")
	} else {
		s.errorf(n, "fixture case: missing required field \"name\"")
	}
	s.fixtureTarget(f, n, set, c)
	if v := f.get("commit_time"); v != nil {
		if t, ok := s.fixtureValue(v).(time.Time); ok {
			c.meta.CommitTime = t
		} else {
			s.errorf(v, "commit_time: want a time such as 2026-03-01T10:30:00Z")
		}
	}
	if v := f.get("position"); v != nil {
		c.meta.Position, _ = s.nonEmpty(v, "position")
	}
	if v := f.get("index"); v != nil {
		c.change.Index, _ = s.intField(v, "index")
	}
	for _, img := range []struct {
		field string
		row   *cdc.Row
	}{{"old", &c.change.Before}, {"new", &c.change.After}} {
		v := f.get(img.field)
		if v == nil || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			continue
		}
		if v.Kind != yaml.MappingNode {
			s.errorf(v, "%s: want a mapping of column: value", img.field)
			continue
		}
		row, _ := s.fixtureValue(v).(map[string]any)
		*img.row = cdc.Row(row)
	}
	if v := f.get("expect"); v != nil {
		s.list(v, "expect", func(n *yaml.Node) { s.fixtureExpect(n, set, c) })
	} else {
		s.errorf(n, "fixture case: missing required field \"expect\" (expect: [] for no effect)")
	}
	if len(*s.errs) > before {
		return nil
	}
	return c
}

// fixtureTarget reads what a case evaluates: a sweep row, or a table and op.
func (s *source) fixtureTarget(f *fieldSet, n *yaml.Node, set *Set, c *fixtureCase) {
	switch {
	case f.has("sweep") && (f.has("table") || f.has("op") || f.has("old")):
		s.errorf(n, "fixture case: a sweep case has no table, op or old")
	case f.has("sweep"):
		name, _ := s.nonEmpty(f.get("sweep"), "sweep")
		for _, sw := range set.Sweeps {
			if sw.Name == name {
				c.sweep = sw
			}
		}
		if c.sweep == nil && name != "" {
			s.errorf(f.get("sweep"), "no sweep named %q", name)
		}
	case !f.has("table") || !f.has("op"):
		s.errorf(n, "fixture case: want table and op (or sweep)")
	default:
		if t, ok := s.nonEmpty(f.get("table"), "table"); ok {
			schema, table, found := strings.Cut(t, ".")
			if !found {
				s.errorf(f.get("table"), "table %q: want schema.table", t)
			}
			c.change.Schema, c.change.Table = schema, table
		}
		if op, ok := s.nonEmpty(f.get("op"), "op"); ok {
			var err error
			if c.change.Op, err = cdc.ParseOp(op); err != nil {
				s.errorf(f.get("op"), "op: %v", err)
			}
		}
	}
}

// fixtureExpect reads one expected effect.
func (s *source) fixtureExpect(n *yaml.Node, set *Set, c *fixtureCase) {
	ef := s.fields(n, "expect", fixtureExpectFields)
	if ef == nil {
		return
	}
	e := fixtureExpect{line: n.Line, fields: map[string]string{}}
	for _, k := range fixtureExpectFields {
		if v := ef.get(k); v != nil {
			e.fields[k], _ = s.scalar(v, k)
		}
	}
	if e.fields["rule"] == "" {
		s.errorf(n, "expect: missing required field \"rule\"")
	} else if set.Rule(e.fields["rule"]) == nil {
		s.errorf(ef.get("rule"), "expect: no rule named %q", e.fields["rule"])
	}
	if k := e.fields["kind"]; k != "" && !contains([]string{"send", "schedule", "cancel", "digest", "failed"}, k) {
		s.errorf(ef.get("kind"), "kind %q: want send, schedule, cancel, digest or failed", k)
	}
	c.cancels = c.cancels || e.fields["kind"] == "cancel"
	c.expect = append(c.expect, e)
}

// fixtureValue converts a YAML node to a row value (see the package comment on fixtures).
func (s *source) fixtureValue(n *yaml.Node) any {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = s.fixtureValue(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			l = append(l, s.fixtureValue(c))
		}
		return l
	case yaml.ScalarNode:
	default:
		return nil
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(n.Value, 0, 64); err == nil {
			return u
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
	case "!!timestamp":
		var t time.Time
		if err := n.Decode(&t); err == nil {
			return t.UTC()
		}
	case "!decimal":
		d, err := decimal.NewFromString(n.Value)
		if err != nil {
			s.errorf(n, "!decimal %q: %v", n.Value, err)
			return nil
		}
		return d
	case "!!str":
		return n.Value
	}
	s.errorf(n, "value %q (%s): not a row value", n.Value, n.ShortTag())
	return nil
}

func (c *fixtureCase) run(ev *Evaluator) FixtureResult {
	res := FixtureResult{Name: c.name, File: c.file, Line: c.line}
	if c.sweep != nil {
		res.Effects = ev.EvaluateSweep(c.sweep, c.change.After, c.meta.CommitTime, nil)
	} else {
		res.Effects = ev.Evaluate(&c.change, c.meta, nil)
	}
	res.Outputs = make([]render.Output, len(res.Effects))
	renderErrs := make([]error, len(res.Effects))
	var got []int // indexes of the effects compared
	for i := range res.Effects {
		e := &res.Effects[i]
		switch e.Kind {
		case EffectCancel:
			if !c.cancels {
				continue
			}
		case EffectSend, EffectSchedule, EffectDigest:
			res.Outputs[i], renderErrs[i] = RenderEffect(e)
		}
		got = append(got, i)
	}
	fail := func(format string, args ...any) { res.Failures = append(res.Failures, fmt.Sprintf(format, args...)) }
	for j, want := range c.expect {
		if j >= len(got) {
			fail("expect line %d: missing effect of rule %q", want.line, want.fields["rule"])
			continue
		}
		i := got[j]
		res.Failures = append(res.Failures, want.compare(&res.Effects[i], res.Outputs[i], renderErrs[i])...)
	}
	for _, i := range got[min(len(got), len(c.expect)):] {
		fail("unexpected effect: %s", describe(&res.Effects[i], false))
	}
	return res
}

// compare lists the differences between the expectation and an effect with its rendered
// output (or render error).
func (want fixtureExpect) compare(e *Effect, out render.Output, rerr error) []string {
	var failures []string
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
	actual := map[string]string{"rule": e.Rule.Name, "kind": e.Kind.String(), "key": e.Key, "to": e.To,
		"channel": e.Channel, "text": out.Text, "subject": out.Subject, "html": out.HTML, "slot": e.Slot, "group": e.Group}
	if !e.At.IsZero() {
		actual["at"] = e.At.UTC().Format(time.RFC3339)
	}
	if !e.Window.IsZero() {
		actual["window"] = e.Window.UTC().Format(time.RFC3339)
	}
	for _, k := range fixtureExpectFields {
		w, ok := want.fields[k]
		if !ok {
			continue
		}
		switch k {
		case "error":
			msg := ""
			if e.Err != nil {
				msg = e.Err.Error()
			} else if rerr != nil {
				msg = rerr.Error()
			}
			if msg == "" || !strings.Contains(msg, w) {
				fail("expect line %d: error: got %q, want it to contain %q", want.line, msg, w)
			}
		case "at", "window":
			if wt, err := parseTimeString(w); err != nil || actual[k] != wt.UTC().Format(time.RFC3339) {
				fail("expect line %d: %s: got %q, want %q", want.line, k, actual[k], w)
			}
		default:
			if actual[k] != w {
				fail("expect line %d: %s: got %q, want %q", want.line, k, actual[k], w)
			}
		}
	}
	if _, ok := want.fields["error"]; !ok {
		if e.Err != nil {
			fail("expect line %d: rule %q failed: %v", want.line, e.Rule.Name, e.Err)
		} else if rerr != nil {
			fail("expect line %d: rule %q: template: %v", want.line, e.Rule.Name, rerr)
		}
	}
	return failures
}

// RenderEffect renders the message of a send, schedule or digest effect. A digest effect is
// rendered as a digest of that one item (DigestData), which is what `rules test` shows.
func RenderEffect(e *Effect) (render.Output, error) {
	if e.Kind == EffectDigest && e.Rule != nil && e.Rule.Template != nil {
		return e.Rule.Template.Render(e.Rule.DigestData(e.Group, e.To, e.Window, []map[string]any{e.Data}, 1))
	}
	return e.Render()
}

// DigestData is the template data of a digest message: items (the Data of the first
// Digest.MaxItems items, in arrival order), count (all items of the window), more (count minus
// the items listed), group, to, window (its end), vars and rule.
func (r *Rule) DigestData(group, to string, window time.Time, items []map[string]any, count int) map[string]any {
	if r.Digest != nil && r.Digest.MaxItems > 0 && len(items) > r.Digest.MaxItems {
		items = items[:r.Digest.MaxItems]
	}
	list := make([]any, len(items))
	for i, it := range items {
		list[i] = it
	}
	return map[string]any{"items": list, "count": count, "more": count - len(items),
		"group": group, "to": to, "window": window, "vars": r.Vars, "rule": r.Name}
}

// DescribeEffect is a one-line description of an effect for the CLI and logs: kind, rule,
// key, channel, masked recipient, fire time, slot, digest group and window, error.
func DescribeEffect(e *Effect) string { return describe(e, true) }

func describe(e *Effect, mask bool) string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if e.Rule != nil {
		b.WriteString(" " + e.Rule.Name)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " key=%q", e.Key)
	}
	if e.Channel != "" {
		b.WriteString(" channel=" + e.Channel)
	}
	if e.To != "" {
		to := e.To
		if mask {
			to = render.Mask(to)
		}
		b.WriteString(" to=" + to)
	}
	if !e.At.IsZero() {
		b.WriteString(" at=" + e.At.UTC().Format(time.RFC3339))
	}
	if e.Slot != "" {
		b.WriteString(" slot=" + e.Slot)
	}
	if e.Kind == EffectDigest {
		fmt.Fprintf(&b, " group=%q window_end=%s", e.Group, e.Window.UTC().Format(time.RFC3339))
	}
	if e.Err != nil {
		b.WriteString(" error=" + strconv.Quote(e.Err.Error()))
	}
	return b.String()
}
