package rules

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"notifier/cdc"
	"notifier/render"
)

// Meta is what the caller knows about the transaction of a change.
type Meta struct {
	// Position is the binlog position of the transaction (cdc.Position.String()); with the
	// change's Index it makes the default message key.
	Position string
	// CommitTime is the transaction's commit time: `commit_time` and `now()` in expressions.
	CommitTime time.Time
}

// EffectKind says what an Effect asks the store to do.
type EffectKind uint8

// The effect kinds.
const (
	// EffectSend: a message to send now (insert-if-absent by Key).
	EffectSend EffectKind = iota + 1
	// EffectSchedule: a reminder at At, reconciled by Slot (state.Schedule).
	EffectSchedule
	// EffectCancel: cancel the pending reminder of Slot (the condition no longer holds, or the
	// row was deleted).
	EffectCancel
	// EffectDigest: an item for the digest of Group in the window ending at Window.
	EffectDigest
	// EffectFailed: the rule could not be evaluated on this row; Err says why (invariant 5).
	EffectFailed
)

var effectNames = [...]string{EffectSend: "send", EffectSchedule: "schedule", EffectCancel: "cancel",
	EffectDigest: "digest", EffectFailed: "failed"}

// String returns the lower-case name: send, schedule, cancel, digest, failed.
func (k EffectKind) String() string {
	if int(k) < len(effectNames) && effectNames[k] != "" {
		return effectNames[k]
	}
	return fmt.Sprintf("effect(%d)", uint8(k))
}

// Effect is one consequence of a change for one rule.
type Effect struct {
	Kind EffectKind
	Rule *Rule
	// Key is the message key "<rule>:<key>": the rule's key expression, or by default
	//   - for a reminder: "<rule>:<entity>@<fire time RFC 3339>". A reminder's key always ends
	//     with "@<fire time>", after its key expression too: the same reminder is the same
	//     message whatever event re-derives it, and a moved fire time is a new message that
	//     replaces the pending one in its slot;
	//   - for a sweep: "<sweep>:<run time>:<key_column value>";
	//   - otherwise: "<rule>:<Meta.Position>#<Change.Index>". This default makes a replay safe
	//     only from the same binlog: a re-snapshot or a restore onto another server produces
	//     other coordinates and therefore new keys. Give a key expression when that matters.
	// A failed effect has no Key: the message's own key stays free, so that once the row is
	// fixed the next change can create it (the error names it when it was computed).
	Key     string
	To      string
	Channel string
	At      time.Time // schedule: fire time
	Slot    string    // schedule, cancel: "<rule>/<entity>"
	Group   string    // digest
	Window  time.Time // digest: end of the window
	// Data is the template data: new, old, op, table, vars, commit_time, key, to. It is a fresh
	// map per effect; the row maps are the change's own (not copied).
	Data map[string]any
	Err  error
}

// Render renders the effect's message with its rule's template.
func (e *Effect) Render() (render.Output, error) {
	if e.Rule == nil || e.Rule.Template == nil {
		return render.Output{}, fmt.Errorf("effect of kind %s has no template", e.Kind)
	}
	return e.Rule.Template.Render(e.Data)
}

// Evaluator evaluates changes against a Set. It holds the expression VM and the environment it
// reuses between evaluations, so it is NOT safe for concurrent use: use one per goroutine.
// The Set it reads is shared and read-only.
type Evaluator struct {
	set   *Set
	vm    vm.VM
	env   map[string]any
	cache map[tableKey]*tableRules

	lastAt  time.Time // the last commit time and its boxed value (see commitTime)
	boxedAt any
}

// commitTime boxes t for the env once per transaction (the changes of a transaction share it).
func (e *Evaluator) commitTime(t time.Time) any {
	if e.boxedAt == nil || !t.Equal(e.lastAt) || t.Location() != e.lastAt.Location() {
		e.lastAt, e.boxedAt = t, t
	}
	return e.boxedAt
}

type tableRules struct {
	name  any // "schema.table", boxed once
	rules []*Rule
}

// opNames are the boxed `op` values, so setting the env does not allocate.
var opNames = func() [6]any {
	var a [6]any
	for op := cdc.OpInsert; op <= cdc.OpSnapshot; op++ {
		a[op] = op.String()
	}
	a[5] = "sweep"
	return a
}()

const opSweep = 5

// NewEvaluator returns an evaluator for s.
func (s *Set) NewEvaluator() *Evaluator {
	env := make(map[string]any, len(envFuncs)+8)
	for k, f := range envFuncs {
		env[k] = f
	}
	return &Evaluator{set: s, env: env, cache: map[tableKey]*tableRules{}}
}

// Evaluate appends the effects of one change to out, using a pooled Evaluator; it is safe for
// concurrent use. It never fails as a whole: a rule that errors on this row yields an
// EffectFailed effect naming the rule and the row.
func (s *Set) Evaluate(ch *cdc.Change, meta Meta, out []Effect) []Effect {
	e := s.pool.Get().(*Evaluator)
	out = e.Evaluate(ch, meta, out)
	s.pool.Put(e)
	return out
}

// EvaluateSweep is Evaluator.EvaluateSweep with a pooled Evaluator; safe for concurrent use.
func (s *Set) EvaluateSweep(sw *Sweep, row cdc.Row, runAt time.Time, out []Effect) []Effect {
	e := s.pool.Get().(*Evaluator)
	out = e.EvaluateSweep(sw, row, runAt, out)
	s.pool.Put(e)
	return out
}

// rulesFor returns the rules of a table: exact names from the Set's map, patterns matched once
// per table and cached here.
func (e *Evaluator) rulesFor(schema, table string) *tableRules {
	k := tableKey{schema, table}
	if tr, ok := e.cache[k]; ok {
		return tr
	}
	name := schema + "." + table
	tr := &tableRules{name: name, rules: append([]*Rule(nil), e.set.exact[k]...)}
	added := false
	for _, r := range e.set.patterns {
		if r.tableRe.MatchString(name) {
			tr.rules, added = append(tr.rules, r), true
		}
	}
	if added { // keep load order across exact and pattern rules
		sort.SliceStable(tr.rules, func(i, j int) bool { return tr.rules[i].order < tr.rules[j].order })
	}
	e.cache[k] = tr
	return tr
}

// Evaluate appends the effects of one change to out. For every rule on the change's table:
//   - op not in `on`: nothing (except a delete of a reminder's row: EffectCancel);
//   - `when` false: nothing, or EffectCancel for a reminder on update/delete/snapshot, so a
//     pending reminder whose condition no longer holds is withdrawn;
//   - `when` true: EffectSend, EffectSchedule (rule with `at`) or EffectDigest;
//   - an error anywhere: EffectFailed.
func (e *Evaluator) Evaluate(ch *cdc.Change, meta Meta, out []Effect) []Effect {
	tr := e.rulesFor(ch.Schema, ch.Table)
	if len(tr.rules) == 0 {
		return out
	}
	env := e.env
	env["new"] = map[string]any(ch.After)
	env["old"] = map[string]any(ch.Before)
	env["op"] = opNames[ch.Op%5]
	env["table"] = tr.name
	env["commit_time"] = e.commitTime(meta.CommitTime)
	for _, r := range tr.rules {
		if !r.hasOp(ch.Op) {
			if ch.Op == cdc.OpDelete && r.at != nil {
				out = e.cancel(r, ch, meta, out)
			}
			continue
		}
		env["vars"] = r.varsAny
		ok := true
		if r.when != nil {
			v, err := e.run(r.when)
			if err != nil {
				out = append(out, e.failed(r, ch, meta, "when", err))
				continue
			}
			ok, _ = v.(bool)
		}
		switch {
		case r.at != nil && (!ok || ch.Op == cdc.OpDelete):
			if ch.Op != cdc.OpInsert {
				out = e.cancel(r, ch, meta, out)
			}
		case ok:
			out = append(out, e.effect(r, ch, meta, tr.name))
		}
	}
	return out
}

// EvaluateSweep evaluates one result row of a sweep's query run at runAt (the scheduled tick,
// which is `commit_time` and `now()`): op "sweep", the row in `new`.
func (e *Evaluator) EvaluateSweep(sw *Sweep, row cdc.Row, runAt time.Time, out []Effect) []Effect {
	r := sw.Rule
	env := e.env
	env["new"] = map[string]any(row)
	env["old"] = map[string]any(nil)
	env["op"] = opNames[opSweep]
	env["table"] = "sweep:" + sw.Name
	env["commit_time"] = runAt
	env["vars"] = r.varsAny
	ch := &cdc.Change{After: row}
	meta := Meta{Position: "sweep:" + sw.Name + "@" + runAt.UTC().Format(time.RFC3339), CommitTime: runAt}
	if r.when != nil {
		v, err := e.run(r.when)
		if err != nil {
			return append(out, e.failed(r, ch, meta, "when", err))
		}
		if ok, _ := v.(bool); !ok {
			return out
		}
	}
	return append(out, e.effect(r, ch, meta, env["table"]))
}

// run evaluates one of r's expressions in the current env; an error is positioned in the rule
// file.
func (e *Evaluator) run(p *program) (any, error) {
	v, err := e.vm.Run(p.Program, e.env)
	if err != nil {
		return nil, p.locate(err)
	}
	return v, nil
}

// effect builds the effect of a matching rule (when true).
func (e *Evaluator) effect(r *Rule, ch *cdc.Change, meta Meta, table any) Effect {
	eff := Effect{Rule: r, Channel: r.Channel, Kind: EffectSend}
	data := map[string]any{
		"new": map[string]any(ch.After), "old": map[string]any(ch.Before), "op": e.env["op"],
		"table": table, "vars": r.Vars, "commit_time": meta.CommitTime,
	}
	eff.Data = data
	fail := func(field string, err error) Effect {
		if eff.Key != "" {
			field += " (message " + eff.Key + ")"
		}
		f := e.failed(r, ch, meta, field, err)
		f.Data = data
		return f
	}
	var entity string
	if r.at != nil {
		eff.Kind = EffectSchedule
		v, err := e.run(r.at)
		if err != nil {
			return fail("at", err)
		}
		at, ok := v.(time.Time)
		if !ok {
			return fail("at", typeErr("a time", v))
		}
		if at.IsZero() {
			return fail("at", fmt.Errorf("fire time is the zero time: %w", ErrNull))
		}
		eff.At = at
		if entity, err = e.entity(r, ch); err != nil {
			return fail("entity", err)
		}
		eff.Slot = r.Name + "/" + entity
	}
	if r.Digest != nil {
		eff.Kind = EffectDigest
		v, err := e.run(r.Digest.group)
		if err != nil {
			return fail("group_by", err)
		}
		if v == nil {
			return fail("group_by", ErrNull)
		}
		eff.Group = Format(v)
		eff.Window = r.Digest.WindowEnd(meta.CommitTime)
	}
	key, err := e.key(r, ch, meta, entity, eff.At)
	if err != nil {
		return fail("key", err)
	}
	eff.Key = key
	data["key"] = key
	v, err := e.run(r.to)
	if err != nil {
		return fail("to", err)
	}
	if v == nil {
		return fail("to", fmt.Errorf("recipient: %w", ErrNull))
	}
	eff.To = Format(v)
	if strings.TrimSpace(eff.To) == "" {
		return fail("to", errors.New("recipient is empty"))
	}
	data["to"] = eff.To
	return eff
}

// key computes the message key (see Effect.Key).
func (e *Evaluator) key(r *Rule, ch *cdc.Change, meta Meta, entity string, at time.Time) (string, error) {
	k := ""
	switch {
	case r.key != nil:
		v, err := e.run(r.key)
		if err != nil {
			return "", err
		}
		if v == nil {
			return "", fmt.Errorf("key: %w", ErrNull)
		}
		if k = Format(v); k == "" {
			return "", errors.New("key is empty")
		}
	case r.at != nil:
		k = entity
	case r.Sweep != nil:
		id, ok := ch.After[r.Sweep.KeyColumn]
		if !ok || id == nil {
			return "", fmt.Errorf("key_column %q: %w", r.Sweep.KeyColumn, ErrNull)
		}
		k = meta.CommitTime.UTC().Format(time.RFC3339) + ":" + Format(id)
	default:
		k = meta.Position + "#" + itoa(ch.Index)
	}
	if r.at != nil {
		// The fire time is part of a reminder's key: a moved due date is a new message, which
		// the state's slot reconciliation puts in place of the old one.
		k += "@" + at.UTC().Format(time.RFC3339)
	}
	return r.Name + ":" + k, nil
}

// entity computes a reminder's entity: the `entity` expression, evaluated with `new` bound to
// the row as it is now (for a delete: as it was), else the row's `id` column.
func (e *Evaluator) entity(r *Rule, ch *cdc.Change) (string, error) {
	img := ch.Image()
	if r.entity == nil {
		id, ok := img["id"]
		if !ok || id == nil {
			return "", fmt.Errorf("no id column (give the rule an entity expression): %w", ErrNull)
		}
		return Format(id), nil
	}
	saved := e.env["new"]
	e.env["new"] = map[string]any(img)
	v, err := e.run(r.entity)
	e.env["new"] = saved
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", fmt.Errorf("entity: %w", ErrNull)
	}
	return Format(v), nil
}

// cancel appends EffectCancel for the reminder slot of r on this row.
func (e *Evaluator) cancel(r *Rule, ch *cdc.Change, meta Meta, out []Effect) []Effect {
	saved := e.env["vars"]
	e.env["vars"] = r.varsAny
	entity, err := e.entity(r, ch)
	e.env["vars"] = saved
	if err != nil {
		return append(out, e.failed(r, ch, meta, "entity", err))
	}
	return append(out, Effect{Kind: EffectCancel, Rule: r, Channel: r.Channel, Slot: r.Name + "/" + entity})
}

// failed builds an EffectFailed naming the rule, the row and the expression that failed.
func (e *Evaluator) failed(r *Rule, ch *cdc.Change, meta Meta, field string, err error) Effect {
	row := ch.Schema + "." + ch.Table + " " + ch.Op.String()
	if r.Sweep != nil {
		row = "sweep row"
	}
	if id, ok := ch.Image()["id"]; ok && id != nil {
		row += " id=" + Format(id)
	}
	if meta.Position != "" {
		row += " at " + meta.Position + "#" + itoa(ch.Index)
	}
	return Effect{Kind: EffectFailed, Rule: r, Channel: r.Channel,
		Err: fmt.Errorf("rule %q (%s), %s: %s: %w", r.Name, where(r, err), row, field, compact(err))}
}

// where is the position of a run-time error: inside the expression when known, else the rule.
func where(r *Rule, err error) string {
	var re *runError
	if errors.As(err, &re) && re.file != "" {
		return fmt.Sprintf("%s:%d:%d", re.file, re.line, re.col)
	}
	return fmt.Sprintf("%s:%d", r.File, r.Line)
}

// compact drops the multi-line source snippet from an expr run-time error, keeping the message,
// the position in the expression and the cause (for errors.Is).
func compact(err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return err
	}
	return &runError{msg: fmt.Sprintf("%s (%d:%d)", fe.Message, fe.Line, fe.Column+1), cause: fe.Prev}
}

// runError is a run-time error of an expression: the message, where it happened (in the rule
// file, when known) and the cause.
type runError struct {
	msg       string
	cause     error
	file      string
	line, col int
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.cause }

func typeErr(want string, v any) error {
	return fmt.Errorf("want %s, got %s: %w", want, typeName(v), ErrType)
}

func itoa(i int) string { return Format(int64(i)) }

// Recheck evaluates the `recheck` condition of the rule called name against the latest image of
// the row (in `new`; `old` is nil, op is "recheck") at the fire time at (which is `commit_time`
// and `now()`). A rule without recheck passes. The caller stores the rule name with a scheduled
// message and, at fire time, skips the message when Recheck returns false. Safe for concurrent
// use.
func (s *Set) Recheck(name string, row cdc.Row, at time.Time) (bool, error) {
	r := s.Rule(name)
	if r == nil {
		return false, fmt.Errorf("recheck %q: %w", name, ErrUnknownRule)
	}
	if r.recheck == nil {
		return true, nil
	}
	e := s.pool.Get().(*Evaluator)
	defer s.pool.Put(e)
	env := e.env
	env["new"], env["old"], env["op"] = map[string]any(row), map[string]any(nil), "recheck"
	env["table"], env["commit_time"], env["vars"] = r.Table, at, r.varsAny
	v, err := e.run(r.recheck)
	if err != nil {
		return false, fmt.Errorf("rule %q (%s): recheck: %w", r.Name, where(r, err), err)
	}
	ok, _ := v.(bool)
	return ok, nil
}
