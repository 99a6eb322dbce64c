package rules

import (
	"errors"
	"regexp"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"notifier/cdc"
	"notifier/render"
)

// Options configure loading.
type Options struct {
	// Channels are the known channel names; a rule naming another is an error. nil: unchecked.
	Channels []string
	// ChannelKinds gives the message kind of a channel (sms, e-mail, webhook). A channel not
	// listed is inferred: a rule with subject or html is e-mail; a channel whose name contains
	// "mail" is e-mail, "hook", "http" or "nats" a webhook; anything else SMS. A rule's `kind`
	// overrides both.
	ChannelKinds map[string]render.Kind
	// DefaultTimezone applies to rules and sweeps whose file sets none (IANA name); "" = UTC.
	DefaultTimezone string
	// DefaultRegion is the phone region e164() assumes for national numbers (e.g. "DE").
	DefaultRegion string
}

// Rule is one compiled rule. It is immutable after loading and shared by all evaluators.
type Rule struct {
	Name string
	File string // rule file and line of the rule, for messages
	Line int

	Table string   // "schema.table" pattern ('*' matches any run of characters)
	On    []cdc.Op // operations the rule reacts to (for a sweep: none)

	Channel  string
	Kind     render.Kind
	Template *render.Template // compiled text/subject/html
	Vars     map[string]any   // constants, `vars` in expressions and templates
	Location *time.Location   // timezone for dates in expressions and templates
	Locale   string
	Region   string // default phone region for e164()

	MaxSegments int
	// MaxPerMinute is the blast-radius guard: more messages than this per minute from the rule
	// pause it (messages held). 0 = no limit. Enforced by the caller.
	MaxPerMinute int

	// Expression sources, as written (empty when absent).
	When, Key, To, At, Entity, Recheck string

	Misfire    Misfire
	QuietHours *QuietHours // nil: none
	Digest     *Digest     // nil: not a digest rule
	Sweep      *Sweep      // non-nil for the rule part of a sweep

	order   int   // load order
	ops     uint8 // bit per cdc.Op
	tableRe *regexp.Regexp
	varsAny any
	when    *program
	key     *program
	to      *program
	at      *program
	entity  *program
	recheck *program
}

// program is a compiled expression and where it is in its rule file.
type program struct {
	*vm.Program
	src  *source // the rule file (name and bytes, no error list)
	node *yaml.Node
}

// locate positions a run-time error of p in the rule file: expr reports the line and column
// inside the expression, mapped like a compile error (source.inScalar).
func (p *program) locate(err error) error {
	var fe *file.Error
	if p == nil || p.src == nil || !errors.As(err, &fe) || fe.Line == 0 {
		return compact(err)
	}
	line, col := p.src.inScalar(p.node, fe.Line, fe.Column)
	return &runError{msg: fe.Message, cause: fe.Prev, file: p.src.name, line: line, col: col}
}

// Scheduled reports whether the rule schedules reminders (it has `at`).
func (r *Rule) Scheduled() bool { return r.at != nil }

// Digest gathers a rule's messages per group into one message per time window.
type Digest struct {
	GroupBy  string        // expression source; its value names the group (e.g. a supplier id)
	Every    time.Duration // window length; windows are aligned to the Unix epoch in UTC
	MaxItems int           // items listed in one digest message (0 = all); the rest are counted
	group    *program
}

// WindowEnd is the end of the window that contains t.
func (d *Digest) WindowEnd(t time.Time) time.Time {
	return t.Truncate(d.Every).Add(d.Every).UTC()
}

// Sweep is a scheduled query (issue 7): at each Schedule tick the caller runs Query on the
// replica and passes each result row to Evaluator.EvaluateSweep (op "sweep", row in `new`).
type Sweep struct {
	Name      string
	Schedule  string // 5-field cron spec
	Location  *time.Location
	Query     string
	KeyColumn string // the column that identifies a row; with the run time it makes the default key
	Rule      *Rule  // when/key/to/channel/template part
	sched     cron.Schedule
}

// Next returns the first run time strictly after t.
func (s *Sweep) Next(t time.Time) time.Time { return s.sched.Next(t.In(s.Location)) }

func (r *Rule) hasOp(op cdc.Op) bool { return op < 8 && r.ops&(1<<op) != 0 }
