package ingest

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"notifier/render"
)

// guard is the blast-radius guard: per rule, messages created by live changes (snapshot
// rows are not counted, see evaluator.add) per one-minute window of the source's commit time (so a replay or a catch-up after downtime is judged at the rate the
// source had, and judged the same way every time). The first `limit` messages of a window go out normally; the one after pauses the rule, and a
// paused rule's messages are stored held. A paused rule resumes at the first window boundary
// after a whole window in which it created no more than `limit` messages (held ones count), so
// a runaway rule stays paused while it keeps running away, and an operator releases or drops
// what it held (notifier messages resend/drop).
//
// The guard is owned by the evaluator goroutine, except the paused flags, which the metrics
// scraper reads. Its state survives rule reloads (by rule name) but not a restart: after a
// restart a rule starts unpaused, and what it held stays held.
type guard struct {
	log   *slog.Logger
	mu    sync.Mutex // guards the map (PausedRules reads it from other goroutines)
	rules map[string]*ruleGuard
}

type ruleGuard struct {
	window time.Time // start of the current minute window
	count  int       // messages created in the current window (held included)
	paused atomic.Bool
}

func newGuard(log *slog.Logger) *guard {
	return &guard{log: log, rules: make(map[string]*ruleGuard)}
}

func (g *guard) state(rule string) *ruleGuard {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.rules[rule]
	if !ok {
		r = &ruleGuard{}
		g.rules[rule] = r
	}
	return r
}

// paused lists the paused rules, sorted.
func (g *guard) paused() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for name, r := range g.rules {
		if r.paused.Load() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// pausedValue is the notifier_rule_paused gauge callback of one rule.
func (r *ruleGuard) pausedValue() float64 {
	if r.paused.Load() {
		return 1
	}
	return 0
}

// admit counts one new message of rule at now and reports whether it may go out (false: store
// it held). limit 0 means no limit.
func (g *guard) admit(rule string, limit int, now time.Time, to string) bool {
	r := g.state(rule)
	if limit <= 0 {
		if r.paused.Load() {
			r.paused.Store(false)
			g.log.Info("rule resumed: no max_per_minute any more", "rule", rule)
		}
		return true
	}
	w := now.Truncate(time.Minute)
	if w.After(r.window) { // commit times of later transactions may be a second earlier: never roll back
		calm := r.count <= limit && w.Sub(r.window) <= time.Minute
		if r.paused.Load() && (calm || w.Sub(r.window) > time.Minute) {
			r.paused.Store(false)
			g.log.Warn("rule resumed: back under max_per_minute", "rule", rule, "max_per_minute", limit,
				"last_minute", r.count)
		}
		r.window, r.count = w, 0
	}
	r.count++
	if r.paused.Load() {
		return false
	}
	if r.count > limit {
		r.paused.Store(true)
		g.log.Error("rule paused: more than max_per_minute messages in one minute; its messages are held until released (notifier messages --status held)",
			"rule", rule, "max_per_minute", limit, "first_held_to", render.Mask(to))
		return false
	}
	return true
}
