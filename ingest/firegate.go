package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"notifier/rules"
	"notifier/state"
)

// DeliveryQueue is the sender's view of the store (sender.Queue); *state.Store implements it.
type DeliveryQueue interface {
	Claim(ctx context.Context, now time.Time, limit int) ([]*state.Message, error)
	Complete(ctx context.Context, outs []state.Outcome) error
	NextDue() (time.Time, bool, error)
	// Acquire, Fire and Unacquire claim ahead of the due time (sender.Acquirer, state/acquire.go).
	Acquire(ctx context.Context, now, until time.Time, limit int) ([]*state.Message, error)
	Fire(ctx context.Context, msgs []*state.Message, now time.Time) ([]*state.Message, error)
	Unacquire(ctx context.Context, msgs []*state.Message) error
}

// FireGate applies the rules' fire-time policies to the messages the sender claims, before
// the sender sees them: at Claim, or, when the sender claims ahead (Acquire), at Fire, which
// is the due time. It wraps the store as the sender's queue:
//
//   - misfire {skip_older_than: D}: a reminder (a message with a slot) claimed for its first
//     attempt more than D after its fire time is completed as skipped, reason "misfire";
//   - quiet_hours of the rule: a message claimed inside the rule's window is deferred to the
//     window's end (reason "quiet_hours"; the attempt is given back);
//   - recheck (with a RowReader): a reminder whose rule has a recheck condition is sent only
//     if the condition holds on the row's latest image (rules.Set.Recheck at the fire time);
//     false, or the row deleted, completes it as skipped (reason "recheck"). When the row
//     cannot be read (replica down), the message is deferred by RecheckRetry.
//
// The rule is looked up by name in the current rule set; a message whose rule is gone is
// passed through unchanged. Channel-level quiet hours and caps stay the sender's.
type FireGate struct {
	q     DeliveryQueue
	rules func() *rules.Set
	rows  RowReader
	log   *slog.Logger
}

// RecheckRetry is how long a message waits when its recheck could not read the row.
const RecheckRetry = 30 * time.Second

// Reasons the gate writes.
const (
	ReasonMisfire            = "misfire"
	ReasonQuietHours         = "quiet_hours"
	ReasonRecheck            = "recheck"
	ReasonRecheckUnavailable = "recheck_unavailable"
)

// NewFireGate wraps q with the policies of the ingester's current rules. rows reads rows for
// recheck; nil sends reminders without rechecking.
func NewFireGate(q DeliveryQueue, g *Ingester, rows RowReader) *FireGate {
	return &FireGate{q: q, rules: g.Rules, rows: rows, log: g.log}
}

// recheck evaluates the rule's recheck condition on the row's latest image; hold=true with
// the outcome when the message must not go out now.
func (f *FireGate) recheck(ctx context.Context, set *rules.Set, m *state.Message, now time.Time) (state.Outcome, bool) {
	skip := func(why string) (state.Outcome, bool) {
		return state.Outcome{Key: m.Key, Result: state.ResultSkipped, At: now, Reason: ReasonRecheck, Error: why}, true
	}
	table, image, err := recheckImage(m.Data)
	if err != nil {
		f.log.Warn("recheck: no row in the message data; sending without recheck", "key", m.Key, "error", err)
		return state.Outcome{}, false
	}
	row, found, err := f.rows.LatestRow(ctx, table, image)
	if err != nil {
		f.log.Warn("recheck: row not readable; deferring", "key", m.Key, "retry_in", RecheckRetry, "error", err)
		return state.Outcome{Key: m.Key, Result: state.ResultDefer, At: now, RetryAt: now.Add(RecheckRetry),
			Reason: ReasonRecheckUnavailable, Error: err.Error()}, true
	}
	if !found {
		return skip("the row was deleted before the fire time")
	}
	ok, err := set.Recheck(m.Rule, row, now)
	if err != nil {
		return skip(fmt.Sprintf("recheck failed: %v", err))
	}
	if !ok {
		return skip("recheck is false on the latest row: " + set.Rule(m.Rule).Recheck)
	}
	return state.Outcome{}, false
}

// NextDue is the store's.
func (f *FireGate) NextDue() (time.Time, bool, error) { return f.q.NextDue() }

// Complete is the store's.
func (f *FireGate) Complete(ctx context.Context, outs []state.Outcome) error {
	return f.q.Complete(ctx, outs)
}

// Claim claims like the store, completes the messages a rule policy holds back (skipped or
// deferred, in one transaction) and returns the rest.
func (f *FireGate) Claim(ctx context.Context, now time.Time, limit int) ([]*state.Message, error) {
	ms, err := f.q.Claim(ctx, now, limit)
	if err != nil || len(ms) == 0 {
		return ms, err
	}
	return f.gate(ctx, ms, now), nil
}

// Acquire is the store's: the policies apply at Fire, the fire time.
func (f *FireGate) Acquire(ctx context.Context, now, until time.Time, limit int) ([]*state.Message, error) {
	return f.q.Acquire(ctx, now, until, limit)
}

// Fire completes the acquired messages a rule policy holds back at now (as Claim does) and
// fires the rest through the store.
func (f *FireGate) Fire(ctx context.Context, msgs []*state.Message, now time.Time) ([]*state.Message, error) {
	return f.q.Fire(ctx, f.gate(ctx, msgs, now), now)
}

// Unacquire is the store's.
func (f *FireGate) Unacquire(ctx context.Context, msgs []*state.Message) error {
	return f.q.Unacquire(ctx, msgs)
}

// gate completes the messages of ms (claimed, or acquired and not fired) that a rule policy
// holds back at now and returns the others.
func (f *FireGate) gate(ctx context.Context, ms []*state.Message, now time.Time) []*state.Message {
	set := f.rules()
	keep := ms[:0]
	var outs []state.Outcome
	for _, m := range ms {
		r := set.Rule(m.Rule)
		switch {
		case r == nil:
			keep = append(keep, m)
		case m.Slot != "" && m.Attempts <= 1 && r.Misfire.Skip(m.DueAt, now):
			outs = append(outs, state.Outcome{Key: m.Key, Result: state.ResultSkipped, At: now, Reason: ReasonMisfire,
				Error: fmt.Sprintf("fire time %s passed more than %s ago (misfire skip_older_than)",
					m.DueAt.UTC().Format(time.RFC3339), r.Misfire.SkipOlderThan)})
		case r.QuietHours != nil && r.QuietHours.Contains(now):
			outs = append(outs, state.Outcome{Key: m.Key, Result: state.ResultDefer, At: now,
				RetryAt: r.QuietHours.Next(now), Reason: ReasonQuietHours})
		case m.Recheck != "" && r.Recheck != "" && f.rows != nil:
			if o, hold := f.recheck(ctx, set, m, now); hold {
				outs = append(outs, o)
			} else {
				keep = append(keep, m)
			}
		default:
			keep = append(keep, m)
		}
	}
	if len(outs) > 0 {
		if err := f.q.Complete(ctx, outs); err != nil {
			// The held-back messages stay `sending`; the next start settles them. The others
			// are claimed and must reach the sender, so this is not returned.
			f.log.Error("fire gate: could not complete held-back messages", "count", len(outs), "error", err)
			return keep
		}
		for _, o := range outs {
			attrs := []any{"key", o.Key, "result", o.Result.String(), "reason", o.Reason}
			if !o.RetryAt.IsZero() {
				attrs = append(attrs, "until", o.RetryAt)
			}
			if o.Error != "" {
				attrs = append(attrs, "why", o.Error)
			}
			f.log.Info("message held back by its rule", attrs...)
		}
	}
	return keep
}
