package ingest

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// Fixed series of the pipeline (default set).
var (
	txnsTotal      = metrics.NewCounter(`notifier_binlog_transactions_total`)
	lagSeconds     = metrics.NewGauge(`notifier_binlog_lag_seconds`, nil)
	commitDuration = metrics.NewHistogram(`notifier_checkpoint_commit_duration_seconds`)
	commitsTotal   = metrics.NewCounter(`notifier_checkpoint_commits_total`)
	digestsFlushed = metrics.NewCounter(`notifier_digests_flushed_total`)
	digestErrors   = metrics.NewCounter(`notifier_digest_errors_total`)
)

// rowCounter returns notifier_binlog_rows_total{table,op} for a table and op; the evaluator
// caches the result per (table, op), so the name is formatted once.
func rowCounter(table, op string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`notifier_binlog_rows_total{table=%q,op=%q}`, table, op))
}

// generation holds the per-rule series of one rule set. It owns a metrics.Set that is
// registered while the set is live and unregistered when SetRules swaps in the next one, so a
// removed rule's series disappear (vmalert's pattern).
type generation struct {
	set   *metrics.Set
	rules map[string]*ruleMetrics
}

type ruleMetrics struct {
	matches *metrics.Counter
	errors  *metrics.Counter
	created map[string]*metrics.Counter // by channel
	set     *metrics.Set
	name    string
}

func newGeneration() *generation {
	s := metrics.NewSet()
	metrics.RegisterSet(s)
	return &generation{set: s, rules: make(map[string]*ruleMetrics)}
}

func (g *generation) close() {
	if g != nil {
		metrics.UnregisterSet(g.set, true)
	}
}

// rule returns the series of one rule, creating them on first use. paused reports the
// guard state for the notifier_rule_paused gauge (read by the scraper, so it must be safe
// for concurrent use).
func (g *generation) rule(name string, paused func() float64) *ruleMetrics {
	if m, ok := g.rules[name]; ok {
		return m
	}
	m := &ruleMetrics{
		matches: g.set.NewCounter(fmt.Sprintf(`notifier_rule_matches_total{rule=%q}`, name)),
		errors:  g.set.NewCounter(fmt.Sprintf(`notifier_rule_errors_total{rule=%q}`, name)),
		created: make(map[string]*metrics.Counter),
		set:     g.set,
		name:    name,
	}
	g.set.NewGauge(fmt.Sprintf(`notifier_rule_paused{rule=%q}`, name), paused)
	g.rules[name] = m
	return m
}

func (m *ruleMetrics) createdOn(channel string) *metrics.Counter {
	c, ok := m.created[channel]
	if !ok {
		c = m.set.GetOrCreateCounter(fmt.Sprintf(`notifier_messages_created_total{rule=%q,channel=%q}`, m.name, channel))
		m.created[channel] = c
	}
	return c
}
