package rules

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"notifier/render"
)

var (
	// messageFields are shared by rules and sweeps: what to send, to whom, how.
	messageFields = []string{"name", "when", "key", "to", "channel", "kind", "template", "template_file",
		"subject", "html", "vars", "timezone", "locale", "region", "max_segments", "max_per_minute",
		"quiet_hours"}
	ruleFields  = append([]string{"table", "on", "at", "entity", "misfire", "recheck", "digest"}, messageFields...)
	sweepFields = append([]string{"schedule", "query", "key_column"}, messageFields...)

	quietFields  = []string{"from", "to", "timezone"}
	misfireField = []string{"skip_older_than"}
	digestFields = []string{"group_by", "every", "max_items"}
)

// rule decodes and compiles one rule (sw == nil) or the rule part of a sweep. It returns nil if
// anything in it is wrong (the problems are recorded in s).
func (l *loader) rule(s *source, n *yaml.Node, d *defaults, sw *Sweep) (*Rule, *fieldSet) {
	what, known := "rule", ruleFields
	if sw != nil {
		what, known = "sweep", sweepFields
	}
	before := len(*s.errs)
	f := s.fields(n, what, known)
	if f == nil {
		return nil, nil
	}
	r := &Rule{File: s.name, Line: n.Line, Sweep: sw, Location: d.loc, Locale: d.locale, Region: d.region,
		MaxPerMinute: d.maxPerMinute, MaxSegments: d.maxSegments, Vars: map[string]any{}}
	required := func(field string) bool {
		if !f.has(field) {
			s.errorf(n, "%s: missing required field %q", what, field)
			return false
		}
		return true
	}
	if required("name") {
		if name, ok := s.ruleName(f.get("name")); ok && l.claimName(s, f.get("name"), name) {
			r.Name = name
		}
	}
	if sw == nil {
		if required("table") {
			r.Table, r.tableRe, _ = s.tablePattern(f.get("table"))
		}
		if required("on") {
			r.ops, r.On = s.parseOps(f.get("on"))
		}
	}
	l.settings(s, f, r)
	if v := f.get("vars"); v != nil {
		l.vars(s, v, r)
	}
	r.varsAny = r.Vars

	prog := func(field string, asBool bool) (*program, string) { return l.compile(s, f, field, r, asBool) }
	r.when, r.When = prog("when", true)
	r.key, r.Key = prog("key", false)
	if required("to") {
		r.to, r.To = prog("to", false)
	}
	if sw == nil {
		l.reminder(s, f, r)
	}
	l.channel(s, f, d, r, n)
	if !f.has("template") && !f.has("template_file") && !f.has("html") {
		s.errorf(n, "%s: missing required field \"template\" (or template_file, or html for e-mail)", what)
	}
	if len(*s.errs) == before {
		l.template(s, f, r, n)
	}
	if len(*s.errs) > before {
		return nil, f
	}
	return r, f
}

// reminder compiles the time-based part of a rule (at, entity, recheck) and its digest, and
// checks that they are combined sensibly.
func (l *loader) reminder(s *source, f *fieldSet, r *Rule) {
	r.at, r.At = l.compile(s, f, "at", r, false)
	r.entity, r.Entity = l.compile(s, f, "entity", r, false)
	r.recheck, r.Recheck = l.compile(s, f, "recheck", r, true)
	if v := f.get("digest"); v != nil {
		r.Digest = l.digest(s, v, r)
	}
	for _, field := range []string{"entity", "recheck", "misfire"} {
		if f.has(field) && !f.has("at") {
			s.errorf(f.keys[field], "%s only applies to a rule with at (a reminder)", field)
		}
	}
	if f.has("at") && f.has("digest") {
		s.errorf(f.keys["digest"], "a rule has either at (a reminder) or digest, not both")
	}
}

// settings reads the scalar settings that override the file's defaults.
func (l *loader) settings(s *source, f *fieldSet, r *Rule) {
	if v := f.get("timezone"); v != nil {
		if loc, ok := s.location(v, "timezone"); ok {
			r.Location = loc
		}
	}
	if v := f.get("locale"); v != nil {
		r.Locale, _ = s.nonEmpty(v, "locale")
	}
	if v := f.get("region"); v != nil {
		r.Region, _ = s.region(v)
	}
	if v := f.get("max_segments"); v != nil {
		r.MaxSegments, _ = s.intField(v, "max_segments")
	}
	if v := f.get("max_per_minute"); v != nil {
		r.MaxPerMinute, _ = s.intField(v, "max_per_minute")
	}
	if v := f.get("quiet_hours"); v != nil {
		r.QuietHours = s.quietHours(v, r)
	}
	if v := f.get("misfire"); v != nil {
		r.Misfire = s.misfire(v)
	}
}

func (l *loader) vars(s *source, n *yaml.Node, r *Rule) {
	if n.Kind != yaml.MappingNode {
		s.errorf(n, "vars must be a mapping, got %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			s.errorf(k, "vars: keys must be strings")
			continue
		}
		if _, dup := r.Vars[k.Value]; dup {
			s.errorf(k, "vars: %q repeated", k.Value)
			continue
		}
		if val, ok := s.value(v, "vars."+k.Value); ok {
			r.Vars[k.Value] = val
		}
	}
}

func (s *source) quietHours(n *yaml.Node, r *Rule) *QuietHours {
	f := s.fields(n, "quiet_hours", quietFields)
	if f == nil {
		return nil
	}
	q := &QuietHours{Location: r.Location}
	for _, field := range []string{"from", "to"} {
		if !f.has(field) {
			s.errorf(n, "quiet_hours: missing required field %q", field)
		}
	}
	if v := f.get("from"); v != nil {
		q.From, _ = s.clock(v, "quiet_hours.from")
	}
	if v := f.get("to"); v != nil {
		q.To, _ = s.clock(v, "quiet_hours.to")
	}
	if v := f.get("timezone"); v != nil {
		if loc, ok := s.location(v, "quiet_hours.timezone"); ok {
			q.Location = loc
		}
	}
	return q
}

func (s *source) misfire(n *yaml.Node) Misfire {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "fire" {
			s.errorf(n, "misfire: want fire or {skip_older_than: <duration>}, got %q", n.Value)
		}
		return Misfire{}
	}
	f := s.fields(n, "misfire", misfireField)
	if f == nil {
		return Misfire{}
	}
	if !f.has("skip_older_than") {
		s.errorf(n, "misfire: missing required field \"skip_older_than\"")
		return Misfire{}
	}
	d, _ := s.durationField(f.get("skip_older_than"), "misfire.skip_older_than")
	return Misfire{SkipOlderThan: d}
}

func (l *loader) digest(s *source, n *yaml.Node, r *Rule) *Digest {
	f := s.fields(n, "digest", digestFields)
	if f == nil {
		return nil
	}
	d := &Digest{}
	for _, field := range []string{"group_by", "every"} {
		if !f.has(field) {
			s.errorf(n, "digest: missing required field %q", field)
		}
	}
	d.group, d.GroupBy = l.compile(s, f, "group_by", r, false)
	if v := f.get("every"); v != nil {
		d.Every, _ = s.durationField(v, "digest.every")
	}
	if v := f.get("max_items"); v != nil {
		d.MaxItems, _ = s.intField(v, "digest.max_items")
	}
	return d
}

// compile compiles the expression in field (absent: nil, ""). Errors are positioned inside the
// scalar (see source.exprError).
func (l *loader) compile(s *source, f *fieldSet, field string, r *Rule, asBool bool) (*program, string) {
	n := f.get(field)
	if n == nil {
		return nil, ""
	}
	src, ok := s.nonEmpty(n, field)
	if !ok {
		return nil, ""
	}
	if len(src) > 10000 {
		s.errorf(n, "%s: expression longer than 10000 bytes", field)
		return nil, ""
	}
	p, err := compileExpr(src, r.Vars, r.Location, r.Region, asBool)
	if err != nil {
		s.exprError(n, field, err)
		return nil, src
	}
	return &program{Program: p, src: &source{name: s.name, data: s.data}, node: n}, src
}

var kinds = map[string]render.Kind{"sms": render.KindSMS, "email": render.KindEmail, "webhook": render.KindWebhook}

// channel resolves the rule's channel (its own, else the file default) and message kind.
func (l *loader) channel(s *source, f *fieldSet, d *defaults, r *Rule, n *yaml.Node) {
	node := f.get("channel")
	if node != nil {
		r.Channel, _ = s.nonEmpty(node, "channel")
	} else if d.channel != "" {
		r.Channel, node = d.channel, d.channelNode
	} else {
		s.errorf(n, "%s: missing required field \"channel\" (and no defaults.channel)", map[bool]string{true: "sweep", false: "rule"}[r.Sweep != nil])
		return
	}
	if r.Channel == "" {
		return
	}
	if l.opts.Channels != nil && !contains(l.opts.Channels, r.Channel) {
		s.errorf(node, "unknown channel %q (configured: %s)", r.Channel, strings.Join(l.opts.Channels, ", "))
	}
	if v := f.get("kind"); v != nil {
		name, ok := s.scalar(v, "kind")
		if k, known := kinds[name]; ok && known {
			r.Kind = k
		} else if ok {
			s.errorf(v, "kind %q: want sms, email or webhook", name)
		}
		return
	}
	if k, ok := l.opts.ChannelKinds[r.Channel]; ok {
		r.Kind = k
		return
	}
	lc := strings.ToLower(r.Channel)
	switch {
	case f.has("subject") || f.has("html") || strings.Contains(lc, "mail") || strings.Contains(lc, "smtp"):
		r.Kind = render.KindEmail
	case strings.Contains(lc, "hook") || strings.Contains(lc, "http") || strings.Contains(lc, "nats"):
		r.Kind = render.KindWebhook
	default:
		r.Kind = render.KindSMS
	}
}

// template compiles the message template (inline `template` or `template_file`, plus `subject`
// and `html`), mapping render's positions back into the rule file or the template file.
func (l *loader) template(s *source, f *fieldSet, r *Rule, n *yaml.Node) {
	if r.Kind != render.KindSMS {
		// A file default applies to the SMS rules of the file; a rule's own is an error.
		if f.has("max_segments") && r.MaxSegments > 0 {
			s.errorf(f.get("max_segments"), "max_segments applies to sms rules only")
			return
		}
		r.MaxSegments = 0
	}
	spec := render.Spec{Kind: r.Kind, MaxSegments: r.MaxSegments, Location: r.Location, Locale: r.Locale}
	textNode, tmplPath := f.get("template"), ""
	var tmplSrc *source
	switch {
	case textNode != nil && f.has("template_file"):
		s.errorf(f.keys["template_file"], "template and template_file are exclusive")
		return
	case textNode != nil:
		spec.Text, _ = s.scalar(textNode, "template")
	case f.has("template_file"):
		textNode = f.get("template_file")
		p, ok := s.nonEmpty(textNode, "template_file")
		if !ok {
			return
		}
		tmplPath = p
		if !filepath.IsAbs(p) {
			tmplPath = filepath.Join(filepath.Dir(s.name), p)
		}
		data, err := l.read(tmplPath)
		if err != nil {
			s.wrap(textNode, "template_file", err)
			return
		}
		if !utf8.Valid(data) {
			s.errorf(textNode, "template_file %q is not UTF-8 text", p)
			return
		}
		fmt.Fprintf(l.hash, "%s\x00%d\x00", p, len(data))
		l.hash.Write(data)
		spec.Text = string(data)
		tmplSrc = &source{name: tmplPath, data: data, errs: s.errs}
	}
	if v := f.get("subject"); v != nil {
		spec.Subject, _ = s.scalar(v, "subject")
	}
	if v := f.get("html"); v != nil {
		spec.HTML, _ = s.scalar(v, "html")
	}
	tpl, err := render.Compile(r.Name, spec)
	if err == nil {
		r.Template = tpl
		return
	}
	s.templateErrors(err, map[string]*yaml.Node{"text": textNode, "subject": f.get("subject"), "html": f.get("html")}, tmplSrc, n)
}

// templateErrors records render's errors at their positions: inside the scalar of the part
// (text, subject, html) in the rule file, or in the template file for a text from
// template_file; at the rule when render gives no position.
func (s *source) templateErrors(err error, parts map[string]*yaml.Node, tmplSrc *source, n *yaml.Node) {
	for _, e := range flatten(err) {
		var re *render.Error
		if !errors.As(e, &re) {
			s.wrap(n, "template", e)
			continue
		}
		node := parts[re.Part]
		field := map[string]string{"text": "template", "subject": "subject", "html": "html"}[re.Part]
		switch {
		case node == nil:
			s.wrap(n, "template", re)
		case re.Part == "text" && tmplSrc != nil:
			line, col := re.Line, re.Col
			if line <= 0 {
				line = 1
			}
			if col <= 0 {
				col = 1
			}
			tmplSrc.errAt(line, col, "template: "+re.Msg, re)
		case re.Line > 0:
			line, col := s.inScalar(node, re.Line, max(re.Col-1, 0))
			s.errAt(line, col, field+": "+re.Msg, re)
		default:
			s.errAt(node.Line, node.Column, field+": "+re.Msg, re)
		}
	}
}

// flatten lists the leaves of an errors.Join tree.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

var sweepParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// sweep decodes one sweep: a schedule and a query plus the rule part.
func (l *loader) sweep(s *source, n *yaml.Node, d *defaults) *Sweep {
	before := len(*s.errs)
	sw := &Sweep{}
	r, f := l.rule(s, n, d, sw)
	if f == nil {
		return nil
	}
	if r != nil {
		sw.Name, sw.Rule, sw.Location = r.Name, r, r.Location
	}
	for _, field := range []string{"schedule", "query", "key_column"} {
		if !f.has(field) {
			s.errorf(n, "sweep: missing required field %q", field)
		}
	}
	if v := f.get("schedule"); v != nil {
		if spec, ok := s.nonEmpty(v, "schedule"); ok {
			sched, err := sweepParser.Parse(spec)
			if err != nil {
				s.errorf(v, "schedule %q: %v (want 5 fields: minute hour day-of-month month day-of-week)", spec, err)
			} else {
				if ss, ok := sched.(*cron.SpecSchedule); ok {
					ss.Location = sw.Location
				}
				sw.Schedule, sw.sched = spec, sched
			}
		}
	}
	if v := f.get("query"); v != nil {
		sw.Query, _ = s.nonEmpty(v, "query")
	}
	if v := f.get("key_column"); v != nil {
		sw.KeyColumn, _ = s.nonEmpty(v, "key_column")
	}
	if len(*s.errs) > before {
		return nil
	}
	return sw
}
