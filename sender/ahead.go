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

// idempotentBacklog: with claiming ahead, how many more messages (× ClaimBatch) on idempotent
// channels may be fired and wait for their outcome to be written than the Concurrency +
// 2·ClaimBatch bound of Claim allows. That bound is what a crash can leave in `sending`, which
// on a channel that is not idempotent becomes uncertain; on an idempotent one it is sent again
// and the provider drops the repeat, so there the bound only limits memory (the outcomes
// waiting for the committer), and a burst is handed over at the channel's rate rather than at
// the rate outcomes are written (about half of it: BENCHMARKS.md).
const idempotentBacklog = 16

// unacquireTimeout bounds putting the acquired messages back when Run stops (Settle does it at the
// next start otherwise).
const unacquireTimeout = 10 * time.Second

// aheadLoop is the loop with claiming ahead (Options.ClaimAhead): a goroutine (acquireAhead)
// acquires the messages due within ClaimAhead, while this loop fires them at their due time,
// in due order, and hands them to deliver. Acquiring is the costly part (two entries written
// per message); firing is one small synced commit per batch (firesInFlight at once), so a
// burst due at one instant is handed over at the rate of the channel rather than that of the
// claims. What may be fired is bounded by admission: at most 2·ClaimBatch waiting to start,
// and, fired and not completed, Claim's bound (Concurrency + 2·ClaimBatch) on channels that
// are not idempotent, idempotentBacklog·ClaimBatch more on idempotent ones. When ctx ends,
// the messages still acquired are put back (Unacquire).
func (s *Sender) aheadLoop(ctx, sendCtx context.Context, wg *sync.WaitGroup, h Acquirer) error {
	capacity := int64(s.opts.Concurrency + 2*s.opts.ClaimBatch)
	batches := make(chan []*state.Message, 4)
	acquiring := make(chan struct{})
	go func() { defer close(acquiring); s.acquireAhead(ctx, h, batches) }()

	var q aheadQueue
	fires := make(chan fireResult, firesInFlight)
	inFlight := 0
	var retryAt time.Time // after a failed Fire
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		now := s.now()
		wake := s.opts.PollInterval
		if due, ok := q.next(); ok && due.After(now) {
			wake = min(wake, due.Sub(now))
		} else if ok && inFlight < firesInFlight && !now.Before(retryAt) {
			// Fire everything due, or, when the room stops it, once a good part of a batch
			// fits: each fire is a synced commit, and room frees a few messages at a time.
			idle := s.claimed.Load() == 0 && inFlight == 0
			if free := int64(2*s.opts.ClaimBatch) - s.waiting.Load(); free >= int64(s.opts.ClaimBatch/2) || idle {
				n, all := q.admit(now, s.admission(capacity))
				if n > 0 && (all || n >= s.opts.ClaimBatch/2 || idle) {
					batch := q.pop(n)
					s.reserve(batch, +1)
					s.ahead.Add(-int64(n))
					select { // acquireAhead may be waiting for room
					case s.aheadRoom <- struct{}{}:
					default:
					}
					inFlight++
					go func() {
						out, err := h.Fire(ctx, batch, now)
						fires <- fireResult{batch: batch, out: out, err: err, now: now}
					}()
					continue
				}
			}
			// Due, but no room: wait for sends to start or complete (s.room).
		} else if ok && retryAt.After(now) {
			wake = min(wake, retryAt.Sub(now))
		}
		timer.Reset(wake)
		select {
		case <-ctx.Done():
		case b := <-batches:
			q.push(b)
		case r := <-fires:
			inFlight--
			if !s.fired(ctx, sendCtx, wg, &q, r) {
				retryAt = s.now().Add(s.opts.PollInterval)
			}
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
	// Stopped: finish the fires in flight, take what acquireAhead still hands in, then put
	// everything acquired back.
	for ; inFlight > 0; inFlight-- {
		s.fired(ctx, sendCtx, wg, &q, <-fires)
	}
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

// firesInFlight is how many Fire transactions aheadLoop runs at once. A Fire is a small
// synced commit, but Badger's one writer goroutine takes it after the outcomes queued before
// it (tens of milliseconds in a burst); with one at a time the firing, not the channel, set
// the pace.
const firesInFlight = 3

// fireResult is what one Fire returned for batch.
type fireResult struct {
	batch, out []*state.Message
	err        error
	now        time.Time
}

// reserve counts batch (being fired) as claimed and waiting to start (d = +1), or takes that
// back (d = -1) for messages that did not go out.
func (s *Sender) reserve(batch []*state.Message, d int64) {
	s.addClaimed(batch, d)
	s.waiting.Add(d * int64(len(batch)))
}

// fired hands the messages of a Fire to deliver and takes back the reservation of those that
// did not go out (held back by a fire-time policy, or withdrawn). After an error the batch is
// put back in q (still acquired: fired again later, or put back at the stop); it returns
// false then.
func (s *Sender) fired(ctx, sendCtx context.Context, wg *sync.WaitGroup, q *aheadQueue, r fireResult) bool {
	if r.err != nil {
		s.reserve(r.batch, -1)
		s.ahead.Add(int64(len(r.batch)))
		q.push(r.batch)
		if ctx.Err() == nil {
			s.log.Error("fire acquired messages", "count", len(r.batch), "err", r.err)
			s.metrics.claimErrors.Inc()
		}
		return false
	}
	if len(r.out) < len(r.batch) {
		var dropped []*state.Message
		j := 0
		for _, m := range r.batch {
			if j < len(r.out) && r.out[j] == m {
				j++
			} else {
				dropped = append(dropped, m)
			}
		}
		s.reserve(dropped, -1)
	}
	for _, m := range r.out {
		s.handOver(ctx, sendCtx, wg, m, r.now)
	}
	return true
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
		s.wait(ctx, now, empty, s.opts.ClaimAhead)
		empty++
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

// admit returns how many messages from the head are due by now and admitted by room, which
// is called with each in turn and takes it (true) or stops there (false); all is true when
// room took every message due.
func (q *aheadQueue) admit(now time.Time, room func(*state.Message) bool) (n int, all bool) {
	for i := q.head; i < len(q.msgs) && !q.msgs[i].DueAt.After(now); i++ {
		if !room(q.msgs[i]) {
			return n, false
		}
		n++
	}
	return n, true
}

// pop removes and returns the first n messages.
func (q *aheadQueue) pop(n int) []*state.Message {
	out := slices.Clone(q.msgs[q.head : q.head+n])
	clear(q.msgs[q.head : q.head+n])
	q.head += n
	return out
}

func (q *aheadQueue) all() []*state.Message {
	out := q.msgs[q.head:]
	q.msgs, q.head = nil, 0
	return out
}

// admission returns the admission test of fire for one round: at most 2·ClaimBatch messages
// waiting to start, and fired and not completed at most capacity (Claim's bound) on channels
// that are not idempotent and capacity + settleBacklog in all.
func (s *Sender) admission(capacity int64) func(*state.Message) bool {
	start := int64(2*s.opts.ClaimBatch) - s.waiting.Load()
	exposed := capacity - s.exposed.Load()
	all := capacity + int64(s.settleBacklog()) - s.claimed.Load()
	return func(m *state.Message) bool {
		if start <= 0 || all <= 0 {
			return false
		}
		if !s.idempotent(m) {
			if exposed <= 0 {
				return false
			}
			exposed--
		}
		start--
		all--
		return true
	}
}

// settleBacklog is how many more outcomes than Claim's bound may wait to be written (see
// idempotentBacklog); 0 without claiming ahead.
func (s *Sender) settleBacklog() int {
	if _, ok := s.opts.Store.(Acquirer); !ok || s.opts.ClaimAhead <= 0 {
		return 0
	}
	return idempotentBacklog * s.opts.ClaimBatch
}

// idempotent reports whether m's channel dedupes resends (an unknown channel does not).
func (s *Sender) idempotent(m *state.Message) bool {
	rt := s.opts.Channels[m.Channel]
	return rt != nil && rt.cfg.Idempotent
}

// addClaimed counts msgs as claimed and not yet completed (d = +1), or no longer (d = -1),
// and those on channels that are not idempotent as exposed.
func (s *Sender) addClaimed(msgs []*state.Message, d int64) {
	var exposed int64
	for _, m := range msgs {
		if !s.idempotent(m) {
			exposed++
		}
	}
	s.claimed.Add(d * int64(len(msgs)))
	s.exposed.Add(d * exposed)
}

// handOver starts the delivery of m, claimed (or fired) at now.
func (s *Sender) handOver(ctx, sendCtx context.Context, wg *sync.WaitGroup, m *state.Message, now time.Time) {
	if !m.DueAt.IsZero() {
		s.metrics.lateness.Update(now.Sub(m.DueAt).Seconds())
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.deliver(ctx, sendCtx, m)
	}()
}
