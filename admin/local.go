package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"notifier/cdc"
	"notifier/state"
)

// Store is what the admin API needs from the state store; *state.Store implements it.
type Store interface {
	Get(key string) (*state.Message, error)
	List(ctx context.Context, f state.Filter) ([]*state.Message, error)
	ListDue(ctx context.Context, before time.Time, limit int) ([]*state.Message, error)
	Counts(ctx context.Context) (map[state.Status]int, error)
	DueStats() (size int, oldest time.Time, err error)
	Cancel(ctx context.Context, key, reason string) error
	Resend(ctx context.Context, key string) error
	Drop(ctx context.Context, key, reason string) error
	Checkpoint() (state.Checkpoint, bool, error)
	SetCheckpoint(ctx context.Context, cp state.Checkpoint) error
	Size() (lsm, vlog int64)
}

// API is everything an operator can ask: the admin HTTP server serves it from a Local, and the
// CLI uses either a Client (the service runs) or a Local on the store it opened (it does not).
// Both return the same views, so the output is the same in both modes.
type API interface {
	// Status reports the checkpoint, message counts by state and the due index; online it also
	// carries the service's own Status.
	Status(ctx context.Context) (StatusReport, error)
	// Messages lists messages matching q, at most q.Limit: in key order, or by last update
	// when q.State is set (the store's status index).
	Messages(ctx context.Context, q Query) ([]MessageView, error)
	// Message returns one message with its text, data and history; state.ErrNotFound if absent.
	Message(ctx context.Context, key string, unmask bool) (MessageView, error)
	// Act cancels, resends or drops one message and returns it afterwards.
	Act(ctx context.Context, action Action, key string) (MessageView, error)
	// Timers lists the due index (scheduled, ready and retry-waiting messages) due before
	// `before` (zero: any time), earliest first.
	Timers(ctx context.Context, before time.Time, limit int) ([]MessageView, error)
	// DeadAct resends (ActionResend) or drops (ActionDrop) dead letters: the given keys, or every
	// dead message when all is true.
	DeadAct(ctx context.Context, action Action, keys []string, all bool) (BulkResult, error)
	// Checkpoint returns the stored binlog checkpoint.
	Checkpoint(ctx context.Context) (CheckpointView, error)
	// SetCheckpoint moves the checkpoint to pos (cdc.Position text); flavor "" keeps the current
	// one. The next binlog read starts right after pos.
	SetCheckpoint(ctx context.Context, pos, flavor string) (CheckpointChange, error)
	// Export calls fn for every message matching q (Limit ignored), in key order.
	Export(ctx context.Context, q Query, fn func(MessageView) error) error
}

// Action is an operator's action on one message.
type Action string

// The actions. Cancel: a pending message (scheduled, ready, retry, held) is never sent. Resend:
// a dead, uncertain, held or cancelled message becomes ready now (an explicit operator decision,
// logged). Drop: an uncertain, dead or held message is closed as cancelled.
const (
	ActionCancel Action = "cancel"
	ActionResend Action = "resend"
	ActionDrop   Action = "drop"
)

// ParseAction reads an action name.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case ActionCancel, ActionResend, ActionDrop:
		return a, nil
	}
	return "", fmt.Errorf("action %q: want cancel, resend or drop: %w", s, ErrBadRequest)
}

// Local answers the API from a store this process holds: the server's backend, and the CLI's
// offline mode.
type Local struct {
	Store Store
	// Service is the running service's own report; nil offline.
	Service func() Status
	// Rewind moves the checkpoint of a running pipeline (stop ingest, set, resume).
	Rewind func(ctx context.Context, cp state.Checkpoint) error
	// Running is true when a pipeline writes to Store (the admin server): without Rewind the
	// checkpoint is then not movable (ErrRewindUnsupported), because the pipeline would
	// overwrite it. Offline (false, Rewind nil) the checkpoint is written to the store directly.
	Running bool
	// Actor names who acts, for the reason recorded on cancel and drop ("operator via api").
	Actor string
	// Snapshot reports the last snapshot run (nil view: never run); nil func: not reported.
	Snapshot func() (*SnapshotView, error)
	// Sweeps reports the sweeps of the rules in force; nil: not reported.
	Sweeps func() ([]SweepView, error)
}

var _ API = (*Local)(nil)

// Status implements API.
func (l *Local) Status(ctx context.Context) (StatusReport, error) {
	var r StatusReport
	if l.Service != nil {
		st := l.Service()
		r.Service = &st
	}
	cp, ok, err := l.Store.Checkpoint()
	if err != nil {
		return r, fmt.Errorf("read checkpoint: %w", err)
	}
	r.Checkpoint = viewCheckpoint(cp, ok)
	counts, err := l.Store.Counts(ctx)
	if err != nil {
		return r, fmt.Errorf("count messages: %w", err)
	}
	r.Counts = make(map[string]int, len(counts))
	for _, s := range state.Statuses() {
		r.Counts[s.String()] = counts[s]
	}
	if r.DueIndexSize, r.OldestDue, err = l.Store.DueStats(); err != nil {
		return r, fmt.Errorf("due index stats: %w", err)
	}
	r.StoreLSM, r.StoreVLog = l.Store.Size()
	if l.Snapshot != nil {
		if r.Snapshot, err = l.Snapshot(); err != nil {
			return r, fmt.Errorf("snapshot status: %w", err)
		}
	}
	if l.Sweeps != nil {
		if r.Sweeps, err = l.Sweeps(); err != nil {
			return r, fmt.Errorf("sweep status: %w", err)
		}
	}
	return r, nil
}

func filterOf(q Query) (state.Filter, error) {
	f := state.Filter{Rule: q.Rule, To: q.To, Since: q.Since, Limit: q.Limit, After: q.After}
	if q.State != "" {
		s, err := state.ParseStatus(q.State)
		if err != nil {
			return f, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		f.Status = s
	}
	return f, nil
}

// Messages implements API.
func (l *Local) Messages(ctx context.Context, q Query) ([]MessageView, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	f, err := filterOf(q)
	if err != nil {
		return nil, err
	}
	ms, err := l.Store.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	out := make([]MessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, viewMessage(m, false, q.Unmask))
	}
	return out, nil
}

// Message implements API.
func (l *Local) Message(ctx context.Context, key string, unmask bool) (MessageView, error) {
	m, err := l.Store.Get(key)
	if err != nil {
		return MessageView{}, fmt.Errorf("message %q: %w", key, err)
	}
	return viewMessage(m, true, unmask), nil
}

// Act implements API.
func (l *Local) Act(ctx context.Context, action Action, key string) (MessageView, error) {
	if err := l.act(ctx, action, key); err != nil {
		return MessageView{}, err
	}
	return l.Message(ctx, key, false)
}

func (l *Local) act(ctx context.Context, action Action, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	reason := "operator"
	if l.Actor != "" {
		reason = "operator via " + l.Actor
	}
	var err error
	switch action {
	case ActionCancel:
		err = l.Store.Cancel(ctx, key, reason)
	case ActionResend:
		err = l.Store.Resend(ctx, key)
	case ActionDrop:
		err = l.Store.Drop(ctx, key, reason)
	default:
		_, err = ParseAction(string(action))
		return err
	}
	if err != nil {
		return fmt.Errorf("%s message %q: %w", action, key, err)
	}
	return nil
}

// Timers implements API. It reads the due index only, so it costs `limit` entries however
// many reminders are pending.
func (l *Local) Timers(ctx context.Context, before time.Time, limit int) ([]MessageView, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	ms, err := l.Store.ListDue(ctx, before, min(limit, MaxLimit))
	if err != nil {
		return nil, fmt.Errorf("list timers: %w", err)
	}
	out := make([]MessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, viewMessage(m, false, false))
	}
	return out, nil
}

// each pages through the messages matching f (f.Limit is the page size).
func (l *Local) each(ctx context.Context, f state.Filter, fn func(*state.Message) error) error {
	const page = 1000
	f.Limit = page
	for {
		ms, err := l.Store.List(ctx, f)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(ms) < page {
			return nil
		}
		f.After = ms[len(ms)-1].Key
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// DeadAct implements API.
func (l *Local) DeadAct(ctx context.Context, action Action, keys []string, all bool) (BulkResult, error) {
	res := BulkResult{Done: []string{}}
	if action != ActionResend && action != ActionDrop {
		return res, fmt.Errorf("dead letters: action %q: want resend or drop: %w", action, ErrBadRequest)
	}
	if all == (len(keys) > 0) {
		return res, fmt.Errorf("dead letters: give keys or all, not both or neither: %w", ErrBadRequest)
	}
	if all {
		// Collect first: acting while paging would move messages out of the listed state.
		err := l.each(ctx, state.Filter{Status: state.StatusDead}, func(m *state.Message) error {
			keys = append(keys, m.Key)
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("list dead letters: %w", err)
		}
	}
	for _, k := range keys {
		if !all {
			// Named keys must be dead letters: `dead retry` is not a way to resend anything.
			m, err := l.Store.Get(k)
			if err != nil {
				res.fail(k, fmt.Errorf("message %q: %w", k, err))
				continue
			}
			if m.Status != state.StatusDead {
				res.fail(k, fmt.Errorf("message %q is %s, not dead", k, m.Status))
				continue
			}
		}
		if err := l.act(ctx, action, k); err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			res.fail(k, err)
			continue
		}
		res.Done = append(res.Done, k)
	}
	return res, nil
}

func (r *BulkResult) fail(key string, err error) {
	if r.Failed == nil {
		r.Failed = map[string]string{}
	}
	r.Failed[key] = err.Error()
}

// Checkpoint implements API.
func (l *Local) Checkpoint(ctx context.Context) (CheckpointView, error) {
	cp, ok, err := l.Store.Checkpoint()
	if err != nil {
		return CheckpointView{}, fmt.Errorf("read checkpoint: %w", err)
	}
	return viewCheckpoint(cp, ok), nil
}

// SetCheckpoint implements API.
func (l *Local) SetCheckpoint(ctx context.Context, pos, flavor string) (CheckpointChange, error) {
	var ch CheckpointChange
	p, err := cdc.ParsePosition(pos)
	if err != nil {
		return ch, fmt.Errorf("checkpoint: %w: %w", ErrBadRequest, err)
	}
	old, ok, err := l.Store.Checkpoint()
	if err != nil {
		return ch, fmt.Errorf("read checkpoint: %w", err)
	}
	ch.Old = viewCheckpoint(old, ok)
	if flavor == "" {
		flavor = old.Flavor
	}
	if flavor != "mariadb" && flavor != "mysql" {
		return ch, fmt.Errorf("checkpoint: flavor %q: want mariadb or mysql (no checkpoint stored yet, give one): %w", flavor, ErrBadRequest)
	}
	cp := state.Checkpoint{Flavor: flavor, Position: p.String()}
	switch {
	case l.Rewind != nil:
		err = l.Rewind(ctx, cp)
	case l.Running:
		err = ErrRewindUnsupported
	default:
		err = l.Store.SetCheckpoint(ctx, cp)
	}
	if err != nil {
		return ch, fmt.Errorf("set checkpoint %s: %w", cp.Position, err)
	}
	if ch.New, err = l.Checkpoint(ctx); err != nil {
		return ch, err
	}
	return ch, nil
}

// Export implements API.
func (l *Local) Export(ctx context.Context, q Query, fn func(MessageView) error) error {
	f, err := filterOf(q)
	if err != nil {
		return err
	}
	err = l.each(ctx, f, func(m *state.Message) error { return fn(viewMessage(m, true, q.Unmask)) })
	if err != nil {
		return fmt.Errorf("export messages: %w", err)
	}
	return nil
}

// isNotFound reports a missing message, whichever layer said so.
func isNotFound(err error) bool { return errors.Is(err, state.ErrNotFound) }

// isStateConflict reports an action the message's state does not allow.
func isStateConflict(err error) bool { return errors.Is(err, state.ErrWrongState) }
