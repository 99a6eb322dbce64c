package ingest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/cdc"
	"notifier/render"
	"notifier/rules"
	"notifier/state"
)

// evaluator turns one transaction into a batch part. It runs on the evaluator goroutine only.
type evaluator struct {
	g       *Ingester
	effects []rules.Effect // reused between changes
	set     *rules.Set     // the set whose generation is live
	rev     *rules.Evaluator
	gen     *generation
	guard   *guard
	rows    map[rowKey]*metrics.Counter
}

type rowKey struct {
	schema, table string
	op            cdc.Op
}

func newEvaluator(g *Ingester) evaluator {
	return evaluator{g: g, guard: newGuard(g.log), rows: make(map[rowKey]*metrics.Counter)}
}

// evaluate evaluates every change of t with the current rule set and returns the store
// operations, with the checkpoint set to t's position. It fails only on a broken invariant of
// the input (none today); rule and template failures become dead messages.
func (e *evaluator) evaluate(t *cdc.Txn) (*batch, error) {
	set := e.g.rules.Load()
	if set != e.set || e.gen == nil {
		old := e.gen
		e.set, e.gen, e.rev = set, newGeneration(), set.NewEvaluator()
		old.close()
	}
	now := e.g.opts.Now()
	pos := t.Position.String()
	b := &batch{pos: t.Position, txns: 1, rows: len(t.Changes), commit: t.CommitTime}
	b.b.Checkpoint = &state.Checkpoint{Flavor: e.g.opts.Flavor, Position: pos, CommitTime: t.CommitTime}
	keyPos := KeyPosition(t.Position)
	meta := rules.Meta{Position: keyPos, CommitTime: t.CommitTime}
	for i := range t.Changes {
		ch := &t.Changes[i]
		e.countRow(ch)
		e.effects = e.rev.Evaluate(ch, meta, e.effects[:0])
		for j := range e.effects {
			e.add(b, &e.effects[j], ch, pos, keyPos, t.CommitTime, now)
		}
	}
	clear(e.effects) // drop references to row data until the next change
	if e.g.maxBytes > 0 {
		_, b.bytes = b.b.Cost()
	}
	txnsTotal.Inc()
	if !t.CommitTime.IsZero() {
		lagSeconds.Set(now.Sub(t.CommitTime).Seconds())
	}
	return b, nil
}

func (e *evaluator) countRow(ch *cdc.Change) {
	k := rowKey{schema: ch.Schema, table: ch.Table, op: ch.Op}
	c, ok := e.rows[k]
	if !ok {
		name := ch.Table
		if ch.Schema != "" {
			name = ch.Schema + "." + ch.Table
		}
		c = rowCounter(name, ch.Op.String())
		e.rows[k] = c
	}
	c.Inc()
}

// KeyPosition is how message keys name a transaction (rules.Meta.Position, which the default
// key "<rule>:<position>#<row>" and the key of a rule-error message are built from): the GTID
// set alone when the position has one, else file:pos. A transaction has the same GTID set on
// every replica of the source but its own file:pos on each, so with GTIDs a fail-over to
// another replica finds the keys already stored instead of creating the messages again.
// Checkpoints and Message.Origin keep the whole position.
func KeyPosition(p cdc.Position) string {
	if p.GTID != "" {
		return cdc.Position{GTID: p.GTID}.String()
	}
	return p.String()
}

// add turns one effect into store operations in b. pos is the transaction's whole position
// (Origin), keyPos its KeyPosition (keys).
func (e *evaluator) add(b *batch, eff *rules.Effect, ch *cdc.Change, pos, keyPos string, commitTime, now time.Time) {
	ruleName := ruleNameOf(eff)
	var rg *ruleGuard
	if ruleName != "" {
		rg = e.guard.state(ruleName)
	}
	var rm *ruleMetrics
	if rg != nil {
		rm = e.gen.rule(ruleName, rg.pausedValue)
	}
	switch eff.Kind {
	case rules.EffectCancel:
		if eff.Slot == "" {
			return
		}
		b.cancel(eff.Slot)
		b.ops++
		return
	case rules.EffectDigest:
		if rm != nil {
			rm.matches.Inc()
		}
		b.b.Digest = append(b.b.Digest, state.DigestItem{
			Rule: ruleName, Group: eff.Group, Window: eff.Window, Item: eff.Key,
			Data: marshalData(eff.Data), Channel: eff.Channel, To: eff.To,
		})
		b.ops++
		return
	case rules.EffectFailed:
		m := e.failed(eff, ch, pos, keyPos, now)
		if rm != nil {
			rm.errors.Inc()
		}
		e.g.log.Warn("rule failed on a row; stored as a dead message", "rule", ruleName, "key", m.Key,
			"position", pos, "table", ch.Schema+"."+ch.Table, "error", eff.Err)
		b.b.Messages = append(b.b.Messages, m)
		b.ops++
		return
	case rules.EffectSend, rules.EffectSchedule:
	default:
		return
	}

	if rm != nil {
		rm.matches.Inc()
	}
	m := e.message(eff, pos, now)
	// Snapshot rows bypass the guard: an initial snapshot legitimately creates a message (a
	// reminder, typically) for each of its rows, hundreds of thousands in a few minutes, and
	// they would all be stored held. The guard is for a wrong `when` on live changes; a
	// snapshot is started by an operator for rules that opted in.
	if m.Status != state.StatusDead && rg != nil && ch.Op != cdc.OpSnapshot {
		// The guard counts per minute of source time (the commit time), so a replay or a
		// catch-up after downtime sees the rate the source had, not a compressed one.
		at := commitTime
		if at.IsZero() {
			at = now
		}
		if !e.guard.admit(ruleName, e.maxPerMinute(eff.Rule), at, eff.To) {
			m.Status = state.StatusHeld
			m.Reason = "rule_paused"
		}
	}
	if rm != nil {
		rm.createdOn(m.Channel).Inc()
	}
	b.msgs++
	b.ops++
	if eff.Kind == rules.EffectSchedule && eff.Slot != "" && m.Status == state.StatusScheduled {
		b.schedule(state.Schedule{Slot: eff.Slot, Message: m, Version: commitTime})
		return
	}
	b.b.Messages = append(b.b.Messages, m)
}

func (e *evaluator) maxPerMinute(r *rules.Rule) int {
	if r != nil && r.MaxPerMinute > 0 {
		return r.MaxPerMinute
	}
	return e.g.opts.DefaultMaxPerMinute
}

func ruleNameOf(eff *rules.Effect) string {
	if eff.Rule != nil {
		return eff.Rule.Name
	}
	return ""
}

// message builds the stored message of a send or schedule effect, rendering its text now (a
// pending message never changes with a later rule or template edit). A render failure makes it
// dead with reason template (invariant 5).
func (e *evaluator) message(eff *rules.Effect, pos string, now time.Time) *state.Message {
	m := &state.Message{
		Key:       eff.Key,
		Rule:      ruleNameOf(eff),
		Channel:   eff.Channel,
		To:        eff.To,
		Data:      marshalData(eff.Data),
		Status:    state.StatusReady,
		CreatedAt: now,
		DueAt:     now,
		UpdatedAt: now,
		Origin:    pos,
	}
	if eff.Kind == rules.EffectSchedule {
		m.Status = state.StatusScheduled
		m.DueAt = eff.At
		m.Slot = eff.Slot
		if eff.Rule != nil {
			m.Recheck = eff.Rule.Recheck
		}
	}
	if eff.Rule == nil || eff.Rule.Template == nil {
		m.Status, m.Reason, m.LastError = state.StatusDead, ReasonNoTemplate, "rule has no template"
		m.DueAt = time.Time{}
		return m
	}
	out, err := eff.Rule.Template.Render(eff.Data)
	if err != nil {
		m.Status, m.Reason, m.LastError = state.StatusDead, ReasonTemplate, err.Error()
		m.DueAt = time.Time{}
		if rm := e.gen.rules[m.Rule]; rm != nil {
			rm.errors.Inc()
		}
		e.g.log.Warn("template failed on a row; message stored dead", "rule", m.Rule, "key", m.Key,
			"to", render.Mask(m.To), "error", err)
		return m
	}
	m.Subject, m.Text, m.HTML = out.Subject, out.Text, out.HTML
	return m
}

// failed builds the dead message recording a rule that failed on a row. Its key is the
// effect's key when the rule got that far, else derived from the rule and the row's binlog
// coordinates (keyPos, see KeyPosition), so a replay of the same transaction finds it
// instead of adding another.
func (e *evaluator) failed(eff *rules.Effect, ch *cdc.Change, pos, keyPos string, now time.Time) *state.Message {
	key := eff.Key
	if key == "" {
		key = ruleNameOf(eff) + "/error/" + keyPos + "/" + strconv.Itoa(ch.Index)
	}
	msg := "rule failed"
	if eff.Err != nil {
		msg = eff.Err.Error()
	}
	return &state.Message{
		Key: key, Rule: ruleNameOf(eff), Channel: eff.Channel, To: eff.To,
		Data:   marshalData(eff.Data),
		Status: state.StatusDead, Reason: ReasonRuleError, LastError: msg,
		CreatedAt: now, UpdatedAt: now, Origin: pos,
	}
}

// marshalData keeps the template data as JSON for inspection. Values JSON cannot hold (NaN,
// ±Inf from a division by zero) are reported in place of the data instead of failing the row.
func marshalData(d map[string]any) []byte {
	if d == nil {
		return nil
	}
	b, err := appendJSON(make([]byte, 0, 512), d)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("template data not representable as JSON: %v", err)})
	}
	return b
}
