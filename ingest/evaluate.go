package ingest

import (
	"encoding/json"
	"fmt"
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
	admitFn func(*rules.Effect, *state.Message) bool // e.admit, bound once
	change  *cdc.Change                              // the change being evaluated (admit)
	guardAt time.Time                                // its commit time, else now (admit)
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
// the input (a position without a transaction version, see TxnVersion); rule and template
// failures become dead messages.
func (e *evaluator) evaluate(t *cdc.Txn) (*batch, error) {
	set := e.g.rules.Load()
	if set != e.set || e.gen == nil {
		old := e.gen
		e.set, e.gen, e.rev = set, newGeneration(), set.NewEvaluator()
		old.close()
	}
	if e.admitFn == nil {
		e.admitFn = e.admit
	}
	now := e.g.opts.Now()
	pos := t.Position.String()
	b := &batch{pos: t.Position, txns: 1, rows: len(t.Changes), commit: t.CommitTime}
	b.bld.Admit = e.admitFn
	b.checkpoint = &state.Checkpoint{Flavor: e.g.opts.Flavor, Position: pos, CommitTime: t.CommitTime}
	keyPos := KeyPosition(t.Position)
	meta := rules.Meta{Position: keyPos, CommitTime: t.CommitTime}
	// The guard counts per minute of source time (the commit time), so a replay or a
	// catch-up after downtime sees the rate the source had, not a compressed one.
	e.guardAt = t.CommitTime
	if e.guardAt.IsZero() {
		e.guardAt = now
	}
	src := Source{Origin: pos, KeyOrigin: keyPos, Now: now}
	if len(t.Changes) > 0 && t.Changes[0].Op != cdc.OpSnapshot {
		// Reminder slots are ordered by the transaction's place in the binlog, not by its
		// commit time; snapshot rows (whose Position is a page token) stay unversioned.
		v, err := TxnVersion(t.Position)
		if err != nil {
			return nil, fmt.Errorf("ingest transaction: %w", err)
		}
		src.TxnVersion = v
	}
	for i := range t.Changes {
		ch := &t.Changes[i]
		e.countRow(ch)
		e.change = ch
		src.RowIndex = ch.Index
		e.effects = e.rev.Evaluate(ch, meta, e.effects[:0])
		for j := range e.effects {
			e.add(b, &e.effects[j], ch, &src)
		}
	}
	e.change = nil
	clear(e.effects) // drop references to row data until the next change
	if e.g.maxBytes > 0 {
		_, b.bytes = b.bld.Cost()
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

// add turns one effect into store operations in b (Builder.Add), with the pipeline's metrics
// and logs.
func (e *evaluator) add(b *batch, eff *rules.Effect, ch *cdc.Change, src *Source) {
	ruleName := ruleNameOf(eff)
	var rm *ruleMetrics
	if ruleName != "" {
		rm = e.gen.rule(ruleName, e.guard.state(ruleName).pausedValue)
	}
	m := b.bld.Add(eff, src)
	if rm == nil {
		return
	}
	switch eff.Kind {
	case rules.EffectDigest:
		rm.matches.Inc()
	case rules.EffectFailed:
		rm.errors.Inc()
		e.g.log.Warn("rule failed on a row; stored as a dead message", "rule", ruleName, "key", m.Key,
			"position", src.Origin, "table", ch.Schema+"."+ch.Table, "error", eff.Err)
	case rules.EffectSend, rules.EffectSchedule:
		rm.matches.Inc()
		if m.Reason == ReasonTemplate {
			rm.errors.Inc()
			e.g.log.Warn("template failed on a row; message stored dead", "rule", m.Rule, "key", m.Key,
				"to", render.Mask(m.To), "error", m.LastError)
		}
		rm.createdOn(m.Channel).Inc()
	}
}

// admit is the Builder's Admit: the blast-radius guard, for the change being evaluated.
// Snapshot rows bypass the guard: an initial snapshot legitimately creates a message (a
// reminder, typically) for each of its rows, hundreds of thousands in a few minutes, and
// they would all be stored held. The guard is for a wrong `when` on live changes; a
// snapshot is started by an operator for rules that opted in.
func (e *evaluator) admit(eff *rules.Effect, m *state.Message) bool {
	if e.change != nil && e.change.Op == cdc.OpSnapshot {
		return true
	}
	name := ruleNameOf(eff)
	if name == "" {
		return true
	}
	return e.guard.admit(name, e.maxPerMinute(eff.Rule), e.guardAt, eff.To)
}

func (e *evaluator) maxPerMinute(r *rules.Rule) int {
	if r != nil && r.MaxPerMinute > 0 {
		return r.MaxPerMinute
	}
	return e.g.opts.DefaultMaxPerMinute
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
