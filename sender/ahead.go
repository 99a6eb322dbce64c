package sender

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"notifier/state"
)

// Acquirer is a Queue that can claim ahead of the due time (state.Store, ingest.FireGate): see
// state/acquire.go. With Options.ClaimAhead set, the sender uses it instead of Claim.
type Acquirer interface {
	// Acquire claims up to limit messages due by until, marked `sending` but acquired: not to be
	// handed over before Fire returned them.
	Acquire(ctx context.Context, now, until time.Time, limit int) ([]*state.Message, error)
	// Fire durably marks acquired messages handed over at now and returns those that may go.
	Fire(ctx context.Context, msgs []*state.Message, now time.Time) ([]*state.Message, error)
	// Unacquire puts acquired messages that were not fired back as they were.
	Unacquire(ctx context.Context, msgs []*state.Message) error
}

// DefaultMaxAhead caps the messages acquired ahead of their due time (Options.MaxAhead).
const DefaultMaxAhead = 250_000

// unacquireTimeout bounds putting the acquired messages back when Run stops (Settle does it at the
// next start otherwise).
const unacquireTimeout = 10 * time.Second

// aheadLoop is the loop with claiming ahead (Options.ClaimAhead): a goroutine (acquireAhead)
// acquires the messages due within ClaimAhead, while this loop fires them at their due time,
// in due order, as many at a time as there is room for (the same bound as Claim's: at most
// Concurrency + 2·ClaimBatch fired and not completed), and hands them to deliver. Acquiring is
// the costly part (two entries written per message); firing is one small synced commit per
// batch, so a burst due at one instant is handed over at the rate of the channel and of the
// outcomes rather than that of the claims. When ctx ends, the messages still acquired are put
// back (Unacquire).
func (s *Sender) aheadLoop(ctx, sendCtx context.Context, wg *sync.WaitGroup, h Acquirer) error {
	capacity := int64(s.opts.Concurrency + 2*s.opts.ClaimBatch)
	batches := make(chan []*state.Message, 4)
	acquiring := make(chan struct{})
	go func() { defer close(acquiring); s.acquireAhead(ctx, h, batches) }()

	var q aheadQueue
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		now := s.now()
		wake := s.opts.PollInterval
		if due, ok := q.next(); ok && !due.After(now) {
			room := capacity - s.claimed.Load()
			if room >= int64(min(s.opts.Concurrency, q.len())) || s.claimed.Load() == 0 {
				s.fire(ctx, sendCtx, wg, h, &q, now, int(room))
				continue
			}
			// Due, but no room: wait for sends to complete (s.room).
		} else if ok {
			wake = min(wake, due.Sub(now))
		}
		timer.Reset(wake)
		select {
		case <-ctx.Done():
		case b := <-batches:
			q.push(b)
		case <-s.room:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
	// Stopped: take what acquireAhead still hands in, then put everything acquired back.
	for {
		select {
		case b := <-batches:
			q.push(b)
			continue
		case <-acquiring:
		}
		break
	}
	for {
		select {
		case b := <-batches:
			q.push(b)
			continue
		default:
		}
		break
	}
	if rest := q.all(); len(rest) > 0 {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unacquireTimeout)
		defer cancel()
		if err := h.Unacquire(uctx, rest); err != nil {
			s.log.Error("put back acquired messages (the next start does it)", "count", len(rest), "err", err)
		} else {
			s.log.Info("put back acquired messages", "count", len(rest))
		}
		s.ahead.Add(-int64(len(rest)))
	}
	return nil
}

// fire fires up to limit acquired messages due by now and hands them to deliver.
func (s *Sender) fire(ctx, sendCtx context.Context, wg *sync.WaitGroup, h Acquirer, q *aheadQueue, now time.Time, limit int) {
	batch := q.popDue(now, max(1, limit))
	out, err := h.Fire(ctx, batch, now)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("fire acquired messages", "count", len(batch), "err", err)
			s.metrics.claimErrors.Inc()
			s.sleep(ctx, s.opts.PollInterval)
		}
		q.push(batch) // still acquired: fired again, or put back at the stop
		return
	}
	s.ahead.Add(-int64(len(batch)))
	select { // acquireAhead may be waiting for room
	case s.aheadRoom <- struct{}{}:
	default:
	}
	for _, m := range out {
		s.claimed.Add(1)
		s.waiting.Add(1)
		if !m.DueAt.IsZero() {
			s.metrics.lateness.Update(now.Sub(m.DueAt).Seconds())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.deliver(ctx, sendCtx, m)
		}()
	}
}

// acquireAhead acquires the messages due within ClaimAhead, up to MaxAhead acquired at a time, and sends
// each batch to the loop; it sleeps until the next due time minus ClaimAhead, a Kick, or
// PollInterval. It returns when ctx ends (every batch it acquired has been sent).
func (s *Sender) acquireAhead(ctx context.Context, h Acquirer, batches chan<- []*state.Message) {
	empty := 0
	for ctx.Err() == nil {
		room := int64(s.opts.MaxAhead) - s.ahead.Load()
		if room <= 0 {
			select {
			case <-ctx.Done():
			case <-s.aheadRoom:
			}
			continue
		}
		select { // a Kick before this acquire is served by it
		case <-s.kick:
		default:
		}
		now := s.now()
		msgs, err := h.Acquire(ctx, now, now.Add(s.opts.ClaimAhead), int(min(room, int64(4*s.opts.ClaimBatch))))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("acquire due messages", "err", err)
				s.metrics.claimErrors.Inc()
				s.sleep(ctx, s.opts.PollInterval)
			}
			continue
		}
		if len(msgs) > 0 {
			s.ahead.Add(int64(len(msgs)))
			batches <- msgs // the loop takes batches until this goroutine ends
			empty = 0
			continue
		}
		s.waitAhead(ctx, now, empty)
		empty++
	}
}

// waitAhead is wait for acquireAhead: it sleeps until ClaimAhead before the next due time.
func (s *Sender) waitAhead(ctx context.Context, now time.Time, empty int) {
	for {
		d := s.opts.PollInterval
		if next, ok, err := s.opts.Store.NextDue(); err != nil {
			s.log.Error("read next due time", "err", err)
		} else if ok {
			switch until := next.Add(-s.opts.ClaimAhead).Sub(now); {
			case until > 0:
				d = min(d, until)
			case empty == 0:
				return // due within the window: inserted while we acquired, or a retry just written
			default:
				d = min(d, time.Millisecond<<min(empty-1, 5))
			}
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-s.kick:
		case <-t.C:
		case <-s.rearm:
			t.Stop()
			now, empty = s.now(), 0
			continue
		}
		t.Stop()
		return
	}
}

// aheadQueue is the acquired messages in due order (then key: the store's order), owned by aheadLoop.
type aheadQueue struct {
	msgs []*state.Message
	head int
}

func compareDue(a, b *state.Message) int {
	if c := a.DueAt.Compare(b.DueAt); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

func (q *aheadQueue) len() int { return len(q.msgs) - q.head }

// push adds a batch (in due order, as Acquire returns it); a batch due before the last one acquired
// (a message inserted below the store's low-water mark) is merged in.
func (q *aheadQueue) push(b []*state.Message) {
	if len(b) == 0 {
		return
	}
	if q.head > 0 && q.head >= len(q.msgs)/2 {
		q.msgs = append(q.msgs[:0], q.msgs[q.head:]...)
		q.head = 0
	}
	inOrder := q.len() == 0 || compareDue(q.msgs[len(q.msgs)-1], b[0]) <= 0
	q.msgs = append(q.msgs, b...)
	if !inOrder || !slices.IsSortedFunc(b, compareDue) {
		slices.SortStableFunc(q.msgs[q.head:], compareDue)
	}
}

func (q *aheadQueue) next() (time.Time, bool) {
	if q.len() == 0 {
		return time.Time{}, false
	}
	return q.msgs[q.head].DueAt, true
}

// popDue removes and returns up to limit messages due by now, in due order.
func (q *aheadQueue) popDue(now time.Time, limit int) []*state.Message {
	end := q.head
	for end < len(q.msgs) && end-q.head < limit && !q.msgs[end].DueAt.After(now) {
		end++
	}
	out := slices.Clone(q.msgs[q.head:end])
	clear(q.msgs[q.head:end])
	q.head = end
	return out
}

func (q *aheadQueue) all() []*state.Message {
	out := q.msgs[q.head:]
	q.msgs, q.head = nil, 0
	return out
}
