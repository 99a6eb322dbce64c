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
}

// FireGate applies the rules' fire-time policies to the messages the sender claims, before
// the sender sees them. It wraps the store as the sender's queue:
//
//   - misfire {skip_older_than: D}: a reminder (a message with a slot) claimed for its first
//     attempt more than D after its fire time is completed as skipped, reason "misfire";
//   - quiet_hours of the rule: a message claimed inside the rule's window is deferred to the
//     window's end (reason "quiet_hours"; the attempt is given back).
//
// The rule is looked up by name in the current rule set; a message whose rule is gone is
// passed through unchanged. Channel-level quiet hours and caps stay the sender's.
//
// Not applied: `recheck` (it needs the row's latest image at fire time, read from the
// replica; see the integration notes).
type FireGate struct {
	q     DeliveryQueue
	rules func() *rules.Set
	log   *slog.Logger
}

// Reasons the gate writes.
const (
	ReasonMisfire    = "misfire"
	ReasonQuietHours = "quiet_hours"
)

// NewFireGate wraps q with the policies of the ingester's current rules.
func NewFireGate(q DeliveryQueue, g *Ingester) *FireGate {
	return &FireGate{q: q, rules: g.Rules, log: g.log}
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
		default:
			keep = append(keep, m)
		}
	}
	if len(outs) > 0 {
		if err := f.q.Complete(ctx, outs); err != nil {
			// The held-back messages stay `sending`; the next start settles them. The others
			// are claimed and must reach the sender, so this is not returned.
			f.log.Error("fire gate: could not complete held-back messages", "count", len(outs), "error", err)
			return keep, nil
		}
		for _, o := range outs {
			f.log.Info("message held back by its rule", "key", o.Key, "result", o.Result.String(),
				"reason", o.Reason, "until", o.RetryAt)
		}
	}
	return keep, nil
}
