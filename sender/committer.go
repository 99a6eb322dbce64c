package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"notifier/render"
	"notifier/state"
)

// committer writes outcomes back to the store in groups: one Complete (one synced Badger
// transaction) per group, so the outcome rate is not bounded by the fsync rate. A group closes
// after CompleteBatch outcomes or CompleteDelay after its first, and whatever arrives while a
// group is written forms the next one. Each outcome is logged and counted only once written.
type committer struct {
	s    *Sender
	stop context.CancelCauseFunc // stops the loop when the store fails for good

	mu  sync.Mutex
	err error
}

const (
	completeTries  = 5
	writesInFlight = 2
)

func (c *committer) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *committer) run(ctx context.Context) {
	s := c.s
	var writing sync.WaitGroup
	defer writing.Wait()
	slots := make(chan struct{}, writesInFlight)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		o, ok := <-s.done
		if !ok {
			return
		}
		batch := make([]outcome, 1, s.opts.CompleteBatch)
		batch[0] = o
		timer.Reset(s.opts.CompleteDelay)
		open := true
	gather:
		for len(batch) < s.opts.CompleteBatch {
			select {
			case o, ok := <-s.done:
				if !ok {
					open = false
					break gather
				}
				batch = append(batch, o)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		outs := make([]state.Outcome, len(batch))
		for i := range batch {
			outs[i] = batch[i].Outcome
		}
		slots <- struct{}{}
		writing.Add(1)
		go func() {
			defer func() { <-slots; writing.Done() }()
			c.write(ctx, batch, outs)
		}()
		if !open {
			return
		}
	}
}

// write completes one group, retrying a failing store a few times; if it keeps failing the
// loop is stopped and the group stays `sending` in the store for Settle at the next start.
func (c *committer) write(ctx context.Context, batch []outcome, outs []state.Outcome) {
	s := c.s
	defer func() {
		msgs := make([]*state.Message, len(batch))
		for i := range batch {
			msgs[i] = batch[i].msg
		}
		s.addClaimed(msgs, -1)
		s.signal()
	}()
	if c.failed() != nil {
		return
	}
	var err error
	for try := 0; try < completeTries; try++ {
		if err = s.opts.Store.Complete(ctx, outs); err == nil || skippedOnly(err) {
			break
		}
		s.metrics.writeErrors.Inc()
		s.log.Error("write outcomes", "count", len(outs), "try", try+1, "err", err)
		time.Sleep(50 * time.Millisecond << try)
	}
	var skipped []string
	if err != nil && skippedOnly(err) {
		// The others are written. A message that stopped being `sending` under our feet (an
		// operator's action, or a retried write that had gone through) keeps the state it has.
		s.log.Warn("outcomes not applied", "err", err)
		skipped = strings.Split(err.Error(), "\n")
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("sender: complete %d outcomes: %w", len(outs), err)
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
		c.stop(err)
		return
	}
	again := false
	for i := range batch {
		if r := batch[i].Result; r == state.ResultRetry || r == state.ResultDefer {
			again = true
		}
		if len(skipped) > 0 && mentions(skipped, batch[i].Key) {
			continue
		}
		c.record(&batch[i])
	}
	if again {
		select {
		case s.rearm <- struct{}{}:
		default:
		}
	}
}

// skippedOnly reports whether every error joined in err is a per-message refusal of Complete
// (not sending, not found, invalid): the rest of the group was written.
func skippedOnly(err error) bool {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		if !errors.Is(e, state.ErrWrongState) && !errors.Is(e, state.ErrNotFound) && !errors.Is(e, state.ErrInvalid) {
			return false
		}
	}
	return len(errs) > 0
}

// mentions reports whether one of the error lines names key (Complete quotes it).
func mentions(lines []string, key string) bool {
	q := strconv.Quote(key)
	for _, l := range lines {
		if strings.Contains(l, q) {
			return true
		}
	}
	return false
}

// record logs one state change and counts it.
func (c *committer) record(o *outcome) {
	s, m := c.s, o.msg
	ch := m.Channel
	if o.rt == nil && o.Reason == string(ReasonUnknownChannel) {
		ch = "unknown"
	}
	switch o.Result {
	case state.ResultSent, state.ResultDefer, state.ResultSkipped:
		if !s.log.Enabled(context.Background(), slog.LevelInfo) { // skip masking and attributes
			s.count(o, ch)
			return
		}
	}
	s.count(o, ch)
	attrs := []any{"key", m.Key, "channel", m.Channel, "rule", m.Rule, "to", render.Mask(m.To), "attempt", m.Attempts}
	switch o.Result {
	case state.ResultSent:
		s.log.Info("message sent", append(attrs, "provider_id", o.ProviderID)...)
	case state.ResultRetry:
		s.log.Warn("send failed, will retry", append(attrs, "reason", o.Reason, "retry_at", o.RetryAt, "err", maskedError(o))...)
	case state.ResultDead:
		s.log.Error("message dead", append(attrs, "reason", o.Reason, "err", maskedError(o))...)
	case state.ResultUncertain:
		s.log.Error("message uncertain, not resent by itself",
			append(attrs, "reason", o.Reason, "cause", o.cause, "err", maskedError(o))...)
	case state.ResultDefer:
		s.log.Info("message deferred", append(attrs, "reason", o.Reason, "until", o.RetryAt)...)
	case state.ResultSkipped:
		s.log.Info("message dropped", append(attrs, "reason", o.Reason, "err", maskedError(o))...)
	default:
		s.log.Log(context.Background(), slog.LevelError, "unknown outcome", append(attrs, "result", o.Result)...)
	}
}

// count updates the outcome's counter.
func (s *Sender) count(o *outcome, ch string) {
	m := s.metrics
	switch o.Result {
	case state.ResultSent:
		m.counter("notifier_messages_sent_total", "channel", ch, "rule", o.msg.Rule).Inc()
	case state.ResultRetry:
		m.counter("notifier_messages_retried_total", "channel", ch, "reason", o.Reason).Inc()
	case state.ResultDead:
		m.counter("notifier_messages_dead_total", "channel", ch, "reason", o.Reason).Inc()
	case state.ResultUncertain:
		m.counter("notifier_messages_uncertain_total", "channel", ch, "", "").Inc()
	case state.ResultDefer:
		m.counter("notifier_messages_deferred_total", "channel", ch, "reason", o.Reason).Inc()
	case state.ResultSkipped:
		m.counter("notifier_messages_skipped_total", "channel", ch, "reason", o.Reason).Inc()
	}
}

// maskedError is the outcome's error text with the recipient masked (providers echo it).
func maskedError(o *outcome) string {
	e, to := o.Error, o.msg.To
	if to == "" || e == "" {
		return e
	}
	masked := render.Mask(to)
	e = strings.ReplaceAll(e, to, masked)
	if t := strings.TrimPrefix(to, "+"); t != to && len(t) >= 6 {
		e = strings.ReplaceAll(e, t, masked)
	}
	return e
}
