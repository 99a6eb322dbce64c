package sender

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"notifier/render"
	"notifier/state"
)

// outcome is a result on its way to the store, with what the log line and metrics need.
type outcome struct {
	state.Outcome
	msg   *state.Message
	rt    *Runtime
	cause string // the reason behind an uncertain or retried result, for the log
}

// deliver applies the channel's policies to one claimed message, sends it and hands the
// outcome to the committer. ctx ends waiting (the message is put back); sendCtx ends a send.
func (s *Sender) deliver(ctx, sendCtx context.Context, m *state.Message) {
	rt := s.opts.Channels[m.Channel]
	if rt == nil {
		s.startedOne()
		s.finish(outcome{msg: m, Outcome: state.Outcome{Key: m.Key, Result: state.ResultDead, At: s.now(),
			Reason: string(ReasonUnknownChannel), Error: fmt.Sprintf("channel %q is not configured", m.Channel)}})
		return
	}
	out, ok := s.admit(ctx, rt, m)
	s.startedOne()
	if !ok {
		s.finish(out)
		return
	}
	s.finish(s.send(sendCtx, rt, m))
}

// admit applies the channel's policies (schedule), waits up to MaxWait for the send time they
// give, then takes a channel and a global send slot. It returns ok=false with the outcome
// (deferred, dead or skipped) when the message is not to be sent now.
func (s *Sender) admit(ctx context.Context, rt *Runtime, m *state.Message) (outcome, bool) {
	now := s.now()
	if ctx.Err() != nil { // stopping: put it back untouched
		return deferred(rt, m, now, now, ReasonShutdown), false
	}
	at, out, ok := s.schedule(rt, m, now)
	if !ok {
		return out, false
	}
	undo := func() { rt.recipients.undo(m.To); rt.daily.undo() }
	if d := at.Sub(now); d > 0 && !s.sleepUntil(ctx, d) {
		undo()
		return deferred(rt, m, now, now, ReasonShutdown), false
	}
	if !s.acquire(ctx, rt) {
		undo()
		return deferred(rt, m, now, now, ReasonShutdown), false
	}
	return outcome{}, true
}

// schedule applies max_age, quiet hours, the pause, the recipient and daily caps and the rate
// limit at now. It returns when to send (at most MaxWait ahead; the caps and a rate slot are
// taken), or ok=false with the outcome that replaces the send.
func (s *Sender) schedule(rt *Runtime, m *state.Message, now time.Time) (at time.Time, out outcome, ok bool) {
	if now.Sub(origin(m)) > rt.cfg.MaxAge {
		return at, outcome{msg: m, rt: rt, Outcome: state.Outcome{Key: m.Key, Result: state.ResultDead, At: now,
			Reason: string(ReasonMaxAge), Error: fmt.Sprintf("not sent within max_age %s", rt.cfg.MaxAge)}}, false
	}
	q := rt.quiet
	if rq, ok := s.quiet[m.Rule]; ok {
		q = rq
	}
	if end, quiet := q.end(now); quiet {
		return at, deferred(rt, m, now, end, ReasonQuietHours), false
	}
	if p := rt.PausedUntil(); p.After(now.Add(s.opts.MaxWait)) {
		// Spread the crowd over MaxWait so it does not come back as one burst.
		return at, deferred(rt, m, now, p.Add(time.Duration(rand.Int64N(int64(s.opts.MaxWait)))), ReasonRateLimited), false
	}
	if until, ok := rt.recipients.take(m.To, now); !ok {
		if rt.cfg.PerRecipient.Excess == ExcessDrop {
			return at, outcome{msg: m, rt: rt, Outcome: state.Outcome{Key: m.Key, Result: state.ResultSkipped, At: now,
				Reason: string(ReasonRecipientCap), Error: fmt.Sprintf("more than %d messages per %s to this recipient",
					rt.cfg.PerRecipient.Max, rt.cfg.PerRecipient.Per)}}, false
		}
		return at, deferred(rt, m, now, until, ReasonRecipientCap), false
	}
	if next, ok := rt.daily.take(now); !ok {
		rt.recipients.undo(m.To)
		return at, deferred(rt, m, now, next, ReasonDailyCap), false
	}
	at = now
	if rt.limiter != nil {
		var ok bool
		if at, ok = rt.limiter.reserve(now, s.opts.MaxWait); !ok {
			rt.recipients.undo(m.To)
			rt.daily.undo()
			return at, deferred(rt, m, now, at, ReasonRateLimited), false
		}
	}
	if p := rt.PausedUntil(); p.After(at) {
		at = p
	}
	return at, outcome{}, true
}

// acquire takes a channel slot and a global slot, or returns false once ctx is done.
func (s *Sender) acquire(ctx context.Context, rt *Runtime) bool {
	select {
	case rt.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	select {
	case s.global <- struct{}{}:
	case <-ctx.Done():
		<-rt.slots
		return false
	}
	if ctx.Err() != nil { // select picks at random among ready cases: do not start a send now
		<-s.global
		<-rt.slots
		return false
	}
	return true
}

// deferred is the outcome that puts m back, due at `at`, without counting an attempt.
func deferred(rt *Runtime, m *state.Message, now, at time.Time, r Reason) outcome {
	return outcome{msg: m, rt: rt, Outcome: state.Outcome{Key: m.Key, Result: state.ResultDefer, At: now,
		RetryAt: at, Reason: string(r)}}
}

// sleepUntil waits d, or returns false if ctx ends first.
func (s *Sender) sleepUntil(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// origin is the time m's delivery is measured from for max_age: its first failed attempt
// (the oldest retry in its history), else the time it was due (a message claimed long after
// its due time, e.g. after an outage, is as late as that), else its creation.
func origin(m *state.Message) time.Time {
	for _, a := range m.History {
		if a.Status == state.StatusRetry {
			return a.At
		}
	}
	if !m.DueAt.IsZero() {
		return m.DueAt
	}
	return m.CreatedAt
}

// send makes one attempt through the channel's slot (taken by admit) and classifies it.
func (s *Sender) send(ctx context.Context, rt *Runtime, m *state.Message) outcome {
	defer func() { <-s.global; <-rt.slots }()
	start := s.now()
	actx, cancel := context.WithTimeoutCause(ctx, rt.cfg.Timeout, rt.timeoutCause)
	retry, err := rt.channel.Send(actx, m)
	cancel()
	end := s.now()
	s.metrics.duration(rt.name).Update(end.Sub(start).Seconds())
	if err == nil {
		return outcome{msg: m, rt: rt, Outcome: state.Outcome{Key: m.Key, Result: state.ResultSent, At: end,
			ProviderID: m.ProviderID}}
	}
	o := s.classify(rt, m, retry, err, end)
	if o.Result != state.ResultUncertain { // surely not sent: give the caps' slots back
		rt.recipients.undo(m.To)
		rt.daily.undo()
	}
	return o
}

// classify turns a failed attempt into retry, dead or uncertain (see Channel).
func (s *Sender) classify(rt *Runtime, m *state.Message, retry bool, err error, now time.Time) outcome {
	reason := ReasonOf(err)
	if errors.Is(err, ErrDrainTimeout) || errors.Is(err, context.Canceled) {
		reason = ReasonShutdown
	}
	text := render.Clip(err.Error(), maxErrorText)
	o := outcome{msg: m, rt: rt, cause: string(reason), Outcome: state.Outcome{Key: m.Key, At: now, Error: text}}
	dead := func(r Reason) outcome {
		o.Result, o.Reason = state.ResultDead, string(r)
		return o
	}
	if !retry {
		return dead(reason)
	}
	if !rt.cfg.Idempotent && !NotSent(err) && !answered(reason) {
		o.Result, o.Reason = state.ResultUncertain, string(ReasonUncertain)
		return o
	}
	next := now.Add(backoff(rt.cfg.Backoff, m.Attempts))
	if ra := RetryAfterOf(err); ra > 0 {
		rt.pauseUntil(now.Add(ra))
		next = now.Add(ra)
	}
	// A provider that throttles has not taken the message: only max_age bounds those retries.
	if reason != ReasonRateLimited && m.Attempts >= rt.cfg.MaxAttempts {
		return dead(ReasonMaxAttempts)
	}
	if next.Sub(origin(m)) > rt.cfg.MaxAge {
		return dead(ReasonMaxAge)
	}
	o.Result, o.Reason, o.RetryAt = state.ResultRetry, string(reason), next
	return o
}

// finish hands an outcome to the committer.
func (s *Sender) finish(o outcome) { s.done <- o }
