package sender

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/state"
)

// Queue is what the sender needs from the store; *state.Store satisfies it.
type Queue interface {
	// Claim durably marks up to limit due messages `sending` and returns them.
	Claim(ctx context.Context, now time.Time, limit int) ([]*state.Message, error)
	// Complete records outcomes in one transaction.
	Complete(ctx context.Context, outs []state.Outcome) error
	// NextDue returns the earliest due time, ok=false if nothing is pending.
	NextDue() (time.Time, bool, error)
}

// Options configures a Sender. Zero values take the defaults noted on each field.
type Options struct {
	Store    Queue               // required
	Channels map[string]*Runtime // by channel name; a message naming another channel is dead
	// Concurrency caps sends in flight over all channels (default 64).
	Concurrency int
	// ClaimBatch caps the messages taken by one Claim (default 2048). The loop claims ahead of
	// the sends only as much as they consumed during the previous claim, twice over (at least
	// Concurrency, at most ClaimBatch), so a slow provider never has a large claimed-but-not-
	// started backlog: after a crash those are what Store.Settle finds in `sending` and, on a
	// non-idempotent channel, turns uncertain. When the sends took everything claimed before
	// the next claim returned (the channel starved: consumption was bounded by the claims, not
	// by the provider), the allowance doubles instead, so a burst ramps up in a few claims.
	// While claims come back full, two run at once (the store builds one while the other
	// commits), each within the allowance. At most Concurrency + 2·ClaimBatch messages are
	// claimed (or being claimed) and not yet completed at any time.
	ClaimBatch int
	// ClaimAhead, when the Store is also an Acquirer, claims messages this long before they
	// are due and holds them in memory until their due time (see aheadLoop and
	// state/acquire.go): a burst due at one instant is then handed over at the channel's rate,
	// not at the rate of the durable claims. Until its due time a message claimed ahead can
	// still be rescheduled or cancelled by its rule (the store withdraws it). 0 (the default)
	// claims at the due time.
	ClaimAhead time.Duration
	// MaxAhead caps the messages acquired ahead (default DefaultMaxAhead; each holds its rendered
	// text and data in memory, about 1 KB).
	MaxAhead int
	// PollInterval is the fallback wake-up (default 1s); the loop mainly sleeps until NextDue
	// or a Kick.
	PollInterval time.Duration
	// MaxWait is the longest a claimed message waits in memory for a rate-limit slot or the
	// end of a channel pause before it is deferred back to the store (default 1s).
	MaxWait time.Duration
	// CompleteBatch caps the outcomes written by one Complete (default 2048).
	CompleteBatch int
	// CompleteDelay is how long the first outcome of a group waits for others before the group
	// is written (default 2ms). Outcomes arriving while a write is in progress join the next
	// group whatever this is.
	CompleteDelay time.Duration
	// DrainTimeout bounds the sends still running when Run's ctx ends (default 10s); sends
	// cut by it are retried (idempotent channels) or uncertain.
	DrainTimeout time.Duration
	// RuleQuietHours are quiet hours per rule name; they replace the channel's for that rule's
	// messages (a rule's window is usually in its own time zone: set QuietHours.Timezone).
	RuleQuietHours map[string]QuietHours
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets one line per state change (default slog.Default()).
	Logger *slog.Logger
	// Metrics receives the sender's series (default: a new Set the caller does not see).
	Metrics *metrics.Set
}

// The loop's defaults.
const (
	DefaultConcurrency = 64
	// DefaultClaimBatch: 2048 lets Claim and Complete (each one synced transaction) overlap in
	// a burst. With 512 the claimed-not-completed bound (Concurrency + 2·ClaimBatch) was reached
	// after one claim, so every claim waited for the previous group's Complete and the two
	// fsynced transactions ran in turn (issue 4: 200k due at once took ~3.3 s, not 2). It caps
	// only a fast channel's claims; a slow one's follow its consumption (see ClaimBatch).
	DefaultClaimBatch    = 2048
	DefaultPollInterval  = time.Second
	DefaultMaxWait       = time.Second
	DefaultCompleteBatch = 2048
	DefaultCompleteDelay = 2 * time.Millisecond
	DefaultDrainTimeout  = 10 * time.Second
	maxErrorText         = 1024 // bytes of provider answer kept in a message's LastError
)

func (o *Options) validate() error {
	if o.Store == nil {
		return fmt.Errorf("sender options: store: %w", ErrConfig)
	}
	for name, rt := range o.Channels {
		if rt == nil {
			return fmt.Errorf("sender options: channel %q: nil runtime: %w", name, ErrConfig)
		}
	}
	if o.Concurrency < 0 || o.ClaimBatch < 0 || o.CompleteBatch < 0 || o.ClaimAhead < 0 || o.MaxAhead < 0 {
		return fmt.Errorf("sender options: negative concurrency or batch: %w", ErrConfig)
	}
	for rule, q := range o.RuleQuietHours {
		if _, err := newQuietWindow(&q, time.UTC); err != nil {
			return fmt.Errorf("sender options: rule %q: %w", rule, err)
		}
	}
	setDefault(&o.Concurrency, DefaultConcurrency)
	setDefault(&o.ClaimBatch, DefaultClaimBatch)
	setDefault(&o.MaxAhead, DefaultMaxAhead)
	setDefault(&o.PollInterval, DefaultPollInterval)
	setDefault(&o.MaxWait, DefaultMaxWait)
	setDefault(&o.CompleteBatch, DefaultCompleteBatch)
	setDefault(&o.CompleteDelay, DefaultCompleteDelay)
	setDefault(&o.DrainTimeout, DefaultDrainTimeout)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	return nil
}

func setDefault[T int | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// Sender is the delivery loop. Build it with New, run it with Run.
type Sender struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *senderMetrics

	quiet     map[string]*quietWindow // by rule
	kick      chan struct{}           // a Kick since the last claim
	rearm     chan struct{}           // retries or deferrals were written: recompute the timer
	room      chan struct{}           // a claimed message started or was completed
	claimed   atomic.Int64            // claimed (fired, when claiming ahead) and not yet completed
	exposed   atomic.Int64            // of those, on channels that are not idempotent (a crash makes them uncertain)
	ahead     atomic.Int64            // acquired ahead of their due time (aheadLoop)
	aheadRoom chan struct{}           // acquired messages were fired
	waiting   atomic.Int64            // claimed and not yet handed to the channel (or finished)
	started   atomic.Int64            // handed to the channel or finished without a send, ever
	global    chan struct{}           // send slots over all channels
	done      chan outcome            // to the committer
	running   atomic.Bool
}

// New validates opts and builds a Sender.
func New(opts Options) (*Sender, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	quiet := make(map[string]*quietWindow, len(opts.RuleQuietHours))
	for rule, q := range opts.RuleQuietHours {
		quiet[rule], _ = newQuietWindow(&q, time.UTC) // validated above
	}
	s := &Sender{
		quiet:     quiet,
		opts:      opts,
		log:       opts.Logger,
		now:       opts.Now,
		metrics:   newSenderMetrics(opts.Metrics),
		kick:      make(chan struct{}, 1),
		rearm:     make(chan struct{}, 1),
		room:      make(chan struct{}, 1),
		aheadRoom: make(chan struct{}, 1),
		global:    make(chan struct{}, opts.Concurrency),
	}
	opts.Metrics.GetOrCreateGauge(`notifier_sender_claimed`, func() float64 { return float64(s.claimed.Load()) })
	opts.Metrics.GetOrCreateGauge(`notifier_sender_in_flight`, func() float64 { return float64(len(s.global)) })
	opts.Metrics.GetOrCreateGauge(`notifier_sender_ahead`, func() float64 { return float64(s.ahead.Load()) })
	return s, nil
}

// Kick wakes the loop to claim at once; the ingest side calls it after committing messages
// that are due now. It never blocks.
func (s *Sender) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run claims and delivers due messages until ctx is done. Then it stops claiming, lets the
// sends in flight finish (bounded by DrainTimeout), puts messages still waiting for a slot
// back (deferred to now), writes every outcome and returns. It returns nil after a clean
// stop, or the store error that stopped it.
func (s *Sender) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)

	loopCtx, stopLoop := context.WithCancelCause(ctx)
	defer stopLoop(nil)
	sendCtx, cancelSends := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelSends(nil)

	s.done = make(chan outcome, s.opts.Concurrency+s.opts.ClaimBatch+s.settleBacklog())
	c := &committer{s: s, stop: stopLoop}
	committed := make(chan struct{})
	go func() { defer close(committed); c.run(context.WithoutCancel(ctx)) }()

	var wg sync.WaitGroup
	var err error
	if h, ok := s.opts.Store.(Acquirer); ok && s.opts.ClaimAhead > 0 {
		err = s.aheadLoop(loopCtx, sendCtx, &wg, h)
	} else {
		err = s.loop(loopCtx, sendCtx, &wg)
	}

	drain := time.AfterFunc(s.opts.DrainTimeout, func() { cancelSends(ErrDrainTimeout) })
	wg.Wait()
	drain.Stop()
	close(s.done)
	<-committed
	if err := c.failed(); err != nil {
		return err
	}
	return err
}

// claimsInFlight is how many Claims the loop runs at once during a burst: the store builds
// one while the one before it commits (Store.Claim), so claiming is not bounded by the sum of
// the two. Outside a burst (the last claim did not come back full) there is one at a time.
const claimsInFlight = 2

// claimResult is what one Claim call returned.
type claimResult struct {
	msgs  []*state.Message
	err   error
	limit int
	now   time.Time
}

// loop claims while there is room and something is due, and sleeps otherwise. It keeps at
// most `target` claimed messages waiting to start; target follows the consumption (see
// Options.ClaimBatch). Claims run on their own goroutines, up to claimsInFlight during a
// burst; their limits count against the room while they run.
func (s *Sender) loop(ctx, sendCtx context.Context, wg *sync.WaitGroup) error {
	capacity := int64(s.opts.Concurrency + 2*s.opts.ClaimBatch)
	minTarget, maxTarget := int64(min(s.opts.Concurrency, s.opts.ClaimBatch)), int64(s.opts.ClaimBatch)
	target, lastStarted := minTarget, s.started.Load()
	results := make(chan claimResult, claimsInFlight)
	inFlight, reserved := 0, int64(0) // claims running, and the sum of their limits
	full := true                      // the last claim came back full: claim again at once
	empty := 0                        // claims in a row that returned nothing
	var lastNow time.Time
	for {
		// Start claims: one when something may be due, a second while the claims keep
		// coming back full.
		for ctx.Err() == nil && inFlight < claimsInFlight && full {
			room := min(target-s.waiting.Load(), capacity-s.claimed.Load()-reserved)
			if room < max(1, target/2) && s.claimed.Load()+reserved > 0 {
				break
			}
			select { // a Kick before this claim is served by it
			case <-s.kick:
			default:
			}
			limit, now := int(room), s.now()
			inFlight++
			reserved += room
			go func() {
				msgs, err := s.opts.Store.Claim(ctx, now, limit)
				results <- claimResult{msgs: msgs, err: err, limit: limit, now: now}
			}()
		}
		if inFlight == 0 {
			if ctx.Err() != nil {
				return nil
			}
			if !full {
				s.wait(ctx, lastNow, empty, 0)
				full = true
				continue
			}
			select { // no room: wait until sends start or complete
			case <-ctx.Done():
			case <-s.room:
			}
			continue
		}
		var r claimResult
		select {
		case r = <-results:
		case <-s.room:
			continue
		}
		inFlight--
		reserved -= int64(r.limit)
		if r.err != nil {
			if ctx.Err() == nil {
				s.log.Error("claim due messages", "err", r.err)
				s.metrics.claimErrors.Inc()
				s.sleep(ctx, s.opts.PollInterval)
			}
			continue
		}
		started := s.started.Load()
		if len(r.msgs) == r.limit && s.waiting.Load() == 0 {
			// Starved: the sends took all we had claimed before this claim returned, so what
			// they consumed measures our claims, not the channel. Twice that is the previous
			// claim again (limit = target - the batch just claimed), which pinned a burst at
			// Concurrency per claim for ~0.7 s; double the allowance instead (slow start).
			// A slow channel's claimed messages wait for a send slot, so it starves only while
			// slots are free, and the next claim measures it again.
			target = min(2*target, maxTarget)
		} else {
			target = min(max(2*(started-lastStarted), minTarget), maxTarget)
		}
		lastStarted = started
		s.addClaimed(r.msgs, +1)
		s.waiting.Add(int64(len(r.msgs)))
		for _, m := range r.msgs {
			s.handOver(ctx, sendCtx, wg, m, r.now)
		}
		switch {
		case len(r.msgs) == r.limit:
			empty, full = 0, true // more may be due
		case len(r.msgs) == 0:
			empty++
			full, lastNow = false, r.now
		default:
			empty = 0
			full, lastNow = false, r.now
		}
	}
}

// signal wakes the loop if it waits for room.
func (s *Sender) signal() {
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// startedOne records that a claimed message no longer waits to start.
func (s *Sender) startedOne() {
	s.waiting.Add(-1)
	s.started.Add(1)
	s.signal()
}

// wait sleeps until the next due time, a Kick, or PollInterval, whichever is first. When the
// committer has written retries or deferrals (which may be due before the time it sleeps
// until), it looks at the next due time again. Something due now is claimed at once, unless
// the last claims came back empty (a queue wrapper such as ingest's FireGate may hold back a
// whole batch, and the due index may lag a claim): then it waits 1ms, doubling up to 32ms,
// so a stuck due entry can never make it spin. lead moves the next due time earlier: the
// claims ahead (acquireAhead) wake lead before it.
func (s *Sender) wait(ctx context.Context, now time.Time, empty int, lead time.Duration) {
	for {
		d := s.opts.PollInterval
		if next, ok, err := s.opts.Store.NextDue(); err != nil {
			s.log.Error("read next due time", "err", err)
		} else if ok {
			switch until := next.Add(-lead).Sub(now); {
			case until > 0:
				d = min(d, until)
			case empty == 0:
				return // due (within lead): inserted while we claimed, or a retry just written
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

func (s *Sender) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
