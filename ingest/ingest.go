package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"notifier/cdc"
	"notifier/rules"
	"notifier/state"
)

// Store is what the pipeline needs of the state store; *state.Store implements it.
//
// Apply must write the whole batch, checkpoint included, atomically and durably before it
// returns nil. MaxBatchCount is the number of operations (messages, schedules, cancels,
// digest items) one Apply can safely hold.
type Store interface {
	Apply(ctx context.Context, b *state.Batch) (state.ApplyResult, error)
	MaxBatchCount() int
}

// Commit describes one committed batch; Options.OnCommit receives it after Apply returned.
type Commit struct {
	Checkpoint   state.Checkpoint
	Position     cdc.Position
	Transactions int // binlog transactions in the batch
	Rows         int // row changes in them
	Ops          int // store operations written
	Result       state.ApplyResult
	Duration     time.Duration // Apply's duration
}

// Options configures an Ingester. Store and Rules are required.
type Options struct {
	Store Store
	// Rules is the initial rule set; SetRules replaces it.
	Rules *rules.Set
	// Flavor is written into every checkpoint: "mariadb" (default) or "mysql".
	Flavor string
	// FlushInterval is the group-commit period: a non-empty batch is handed to the committer
	// this long after its first transaction arrived (sooner when it is full). Default 10 ms.
	FlushInterval time.Duration
	// MaxBatch caps the operations per Apply. Default (and upper bound) Store.MaxBatchCount().
	MaxBatch int
	// DefaultMaxPerMinute is the blast-radius limit of rules that set no max_per_minute;
	// 0 = no limit for them.
	DefaultMaxPerMinute int
	// Kick is called after every commit that created messages (the sender's wake-up).
	Kick func()
	// OnCommit, if set, is called by the committer after every successful Apply.
	OnCommit func(Commit)
	// Now is the clock (message times, lag). Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.Store == nil {
		return ErrNoStore
	}
	if o.Rules == nil {
		return ErrNoRules
	}
	if o.Flavor == "" {
		o.Flavor = "mariadb"
	}
	if o.Flavor != "mariadb" && o.Flavor != "mysql" {
		return fmt.Errorf("ingest options: flavor %q: want mariadb or mysql", o.Flavor)
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 10 * time.Millisecond
	}
	limit := o.Store.MaxBatchCount()
	if o.MaxBatch <= 0 || (limit > 0 && o.MaxBatch > limit) {
		o.MaxBatch = limit
	}
	if o.MaxBatch <= 0 {
		return fmt.Errorf("ingest options: store reports a batch cap of %d", limit)
	}
	if o.DefaultMaxPerMinute < 0 {
		return fmt.Errorf("ingest options: default max per minute %d is negative", o.DefaultMaxPerMinute)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Ingester runs the pipeline. Create it with New, feed it with Run; SetRules may be called
// from any goroutine at any time.
type Ingester struct {
	opts  Options
	log   *slog.Logger
	rules atomic.Pointer[rules.Set]

	committed atomic.Pointer[Commit] // the last successful commit
	lastTxn   atomic.Int64           // commit time (unix ns) of the last evaluated transaction
	caughtUp  atomic.Bool            // the evaluator has nothing to do: no transaction waiting
	maxBytes  int64                  // the store's MaxBatchBytes, 0 if it reports none

	// Owned by the evaluator goroutine.
	ev evaluator
}

// New validates opts and returns an Ingester.
func New(opts Options) (*Ingester, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	g := &Ingester{opts: opts, log: opts.Logger}
	if bs, ok := opts.Store.(interface{ MaxBatchBytes() int64 }); ok {
		g.maxBytes = bs.MaxBatchBytes()
	}
	g.rules.Store(opts.Rules)
	g.ev = newEvaluator(g)
	return g, nil
}

// SetRules replaces the rule set. The evaluator picks it up before the next binlog
// transaction; a transaction is always evaluated by one set.
func (g *Ingester) SetRules(s *rules.Set) {
	if s == nil {
		return
	}
	old := g.rules.Swap(s)
	if old != s {
		g.log.Info("rules swapped", "rules", len(s.Rules), "hash", s.Hash)
	}
}

// Rules returns the current rule set.
func (g *Ingester) Rules() *rules.Set { return g.rules.Load() }

// Close unregisters the per-rule metrics of the current rule set. Call it when the Ingester
// is no longer used (Run may be called again before that, e.g. after a pipeline restart).
func (g *Ingester) Close() {
	g.ev.gen.close()
	g.ev.gen = nil
	g.ev.set = nil
}

// PausedRules lists the rules the blast-radius guard has paused (their messages are held).
func (g *Ingester) PausedRules() []string { return g.ev.guard.paused() }

// Lag is how far behind the source the pipeline is: zero when every transaction read is
// committed and none is waiting, else the time since the commit of the last transaction it
// evaluated.
func (g *Ingester) Lag() time.Duration {
	if g.caughtUp.Load() {
		return 0
	}
	ns := g.lastTxn.Load()
	if ns == 0 {
		return 0
	}
	return max(0, g.opts.Now().Sub(time.Unix(0, ns)))
}

// LastCommit returns the last successful commit, ok=false before the first one.
func (g *Ingester) LastCommit() (Commit, bool) {
	c := g.committed.Load()
	if c == nil {
		return Commit{}, false
	}
	return *c, true
}

// batch is the unit the evaluator hands to the committer: whole transactions only.
type batch struct {
	bld        Builder
	checkpoint *state.Checkpoint
	pos        cdc.Position
	bytes      int64 // state.Batch.Cost bytes, checked when the store reports MaxBatchBytes
	txns       int
	rows       int
	commit     time.Time // commit time of the last transaction
}

// Run consumes txns until the channel is closed, then commits what it holds and returns nil.
// Closing txns is the graceful stop (stop the reader first, then close its channel). Run
// returns early with an error when a commit fails, a transaction is too big for one batch, or
// ctx is cancelled (a hard stop: the uncommitted tail is simply read again on restart).
func (g *Ingester) Run(ctx context.Context, txns <-chan *cdc.Txn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	commits := make(chan *batch) // unbuffered: a send succeeds only when the committer waits
	done := make(chan struct{})
	var commitErr error
	go func() {
		defer close(done)
		commitErr = g.commitLoop(ctx, commits)
	}()

	err := g.evalLoop(ctx, txns, commits, done)
	close(commits)
	if err != nil {
		cancel(err)
	}
	<-done
	if err != nil && err != errCommitterStopped {
		return err
	}
	return commitErr
}

// evalLoop evaluates transactions into batches and hands them to the committer: when a batch
// is FlushInterval old (as soon as the committer is free), when it is full, or at the end.
func (g *Ingester) evalLoop(ctx context.Context, txns <-chan *cdc.Txn, commits chan<- *batch, done <-chan struct{}) error {
	var (
		cur    *batch
		due    bool
		timer  = time.NewTimer(time.Hour)
		timerC <-chan time.Time
	)
	timer.Stop()
	defer timer.Stop()

	handoff := func() error { // blocking
		select {
		case commits <- cur:
			cur, due, timerC = nil, false, nil
			return nil
		case <-done:
			return errCommitterStopped
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	for {
		var sendC chan<- *batch
		if due && cur != nil {
			sendC = commits
		}
		if cur == nil && len(txns) == 0 && !g.caughtUp.Load() {
			// Everything read is committed and nothing waits: the reader is caught up (as far
			// as it knows: it gets the server's heartbeats while the binlog is idle).
			g.caughtUp.Store(true)
			lagSeconds.Set(0)
		}
		select {
		case sendC <- cur:
			cur, due, timerC = nil, false, nil
		case <-timerC:
			timerC, due = nil, true
		case t, ok := <-txns:
			if !ok {
				if cur != nil {
					return handoff()
				}
				return nil
			}
			g.caughtUp.Store(false)
			if !t.CommitTime.IsZero() {
				g.lastTxn.Store(t.CommitTime.UnixNano())
			}
			part, err := g.ev.evaluate(t)
			if err != nil {
				return err
			}
			if part.bld.Ops() > g.opts.MaxBatch || (g.maxBytes > 0 && part.bytes > g.maxBytes) {
				return fmt.Errorf("ingest transaction at %s: %d store operations (~%d bytes), one store batch holds %d (%d bytes); a binlog transaction is never split: %w",
					t.Position, part.bld.Ops(), part.bytes, g.opts.MaxBatch, g.maxBytes, ErrTxnTooBig)
			}
			if cur != nil && (cur.bld.Ops()+part.bld.Ops() > g.opts.MaxBatch || (g.maxBytes > 0 && cur.bytes+part.bytes > g.maxBytes)) {
				if err := handoff(); err != nil {
					return err
				}
			}
			if cur == nil {
				cur = part
				timer.Reset(g.opts.FlushInterval)
				timerC = timer.C
			} else {
				cur.merge(part)
			}
			if cur.bld.Ops() >= g.opts.MaxBatch || (g.maxBytes > 0 && cur.bytes >= g.maxBytes*9/10) {
				if err := handoff(); err != nil {
					return err
				}
			}
		case <-done:
			return errCommitterStopped
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

var errCommitterStopped = fmt.Errorf("ingest: committer stopped")

// merge appends the next transaction's part to b; the checkpoint moves to the later position.
func (b *batch) merge(p *batch) {
	b.bld.Append(&p.bld)
	b.checkpoint = p.checkpoint
	b.pos = p.pos
	b.bytes += p.bytes
	b.txns += p.txns
	b.rows += p.rows
	b.commit = p.commit
}

// commitLoop applies batches one at a time until commits is closed.
func (g *Ingester) commitLoop(ctx context.Context, commits <-chan *batch) error {
	for b := range commits {
		sb, _ := b.bld.Finish()
		sb.Checkpoint = b.checkpoint
		start := time.Now()
		res, err := g.opts.Store.Apply(ctx, sb)
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("ingest commit of %d transactions up to %s: %w", b.txns, b.pos, err)
		}
		commitDuration.Update(took.Seconds())
		commitsTotal.Inc()
		c := &Commit{Checkpoint: *b.checkpoint, Position: b.pos, Transactions: b.txns, Rows: b.rows,
			Ops: b.bld.Ops(), Result: res, Duration: took}
		g.committed.Store(c)
		if b.bld.Messages() > 0 && g.opts.Kick != nil {
			g.opts.Kick()
		}
		if g.opts.OnCommit != nil {
			g.opts.OnCommit(*c)
		}
	}
	return nil
}
