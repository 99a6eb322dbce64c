package snapshot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"notifier/cdc"
	"notifier/ingest"
	"notifier/state"
)

// feeder hands snapshot pages to an ingest pipeline and attaches each page's cursor to the
// store transaction that commits the page's effects.
//
// ingest has no way to carry anything but a checkpoint with a Txn (issue 7 note): it writes
// state.Batch.Checkpoint = the Position of the batch's last Txn. So each page goes in as a Txn
// whose Position is a unique token, and the feeder is ingest's Store: in Apply it finds the
// queued page of that token, replaces the checkpoint by the page's cursors (and, for the first
// page, the run record and the real checkpoint), and forwards the batch to the state store.
type feeder struct {
	s    *Snapshotter
	run  *RunState
	txns chan *cdc.Txn
	done chan struct{}
	err  error // ingest.Run's, valid after done is closed

	cancel  context.CancelFunc
	stopped bool

	mu    sync.Mutex
	queue []*entry // pages handed to ingest, not yet committed, in order
}

// entry is one page (or a table's end) waiting for its commit.
type entry struct {
	position   string // the Txn's Position.String(): what ingest writes as the checkpoint
	table      string
	cursors    map[string][]byte
	checkpoint *state.Checkpoint
	progress   Progress
	rows       int
}

func newFeeder(s *Snapshotter, run *RunState) *feeder {
	return &feeder{s: s, run: run, txns: make(chan *cdc.Txn, 4), done: make(chan struct{})}
}

func (f *feeder) start(ctx context.Context) error {
	o := &f.s.opts
	ing, err := ingest.New(ingest.Options{Store: f, Rules: o.Rules, Flavor: o.Flavor,
		DefaultMaxPerMinute: o.DefaultMaxPerMinute, Kick: o.Kick, Now: o.Now, Logger: o.Logger})
	if err != nil {
		return fmt.Errorf("snapshot: ingest: %w", err)
	}
	ctx, f.cancel = context.WithCancel(ctx)
	go func() {
		defer close(f.done)
		f.err = ing.Run(ctx, f.txns)
		ing.Close() // unregister this run's per-rule series
	}()
	return nil
}

// stop ends the pipeline after everything handed over is committed, and returns its error.
func (f *feeder) stop() error {
	if !f.stopped {
		f.stopped = true
		close(f.txns)
	}
	<-f.done
	f.cancel()
	if f.err != nil {
		return fmt.Errorf("snapshot: %w", f.err)
	}
	return nil
}

// send queues e and hands txn to ingest.
func (f *feeder) send(ctx context.Context, txn *cdc.Txn, e *entry) error {
	e.position = txn.Position.String()
	f.mu.Lock()
	f.queue = append(f.queue, e)
	f.mu.Unlock()
	select {
	case f.txns <- txn:
		return nil
	case <-f.done:
		if f.err != nil {
			return fmt.Errorf("snapshot: %w", f.err)
		}
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// table snapshots one table from its cursor to its end.
func (f *feeder) table(ctx context.Context, table string) (Progress, error) {
	st := f.s.opts.Store
	ts, err := loadTable(st, table)
	if err != nil {
		return Progress{}, err
	}
	prog := func() Progress {
		p := Progress{Table: table, Rows: ts.Rows, Done: ts.Done}
		p.Position, _ = cdc.ParsePosition(ts.Position)
		return p
	}
	if ts.Done {
		return prog(), nil
	}
	if ts.Rows > 0 {
		f.s.log.Info("snapshot resumes table", "table", table, "after", ts.After.String(), "rows", ts.Rows)
	}
	first := func(pos cdc.Position, e *entry) {
		if ts.Position == "" {
			ts.Position = pos.String()
		}
		if f.run.Position != "" || pos.IsZero() {
			return
		}
		f.run.Position = pos.String()
		e.cursors[RunCursor] = mustJSON(f.run)
		if f.run.MoveCheckpoint {
			e.checkpoint = &state.Checkpoint{Flavor: f.s.opts.Flavor, Position: f.run.Position}
		}
	}
	after := []any(ts.After)
	pos, err := f.s.opts.Source.Snapshot(ctx, table, after, f.s.opts.PageSize, func(txn *cdc.Txn, cursor []any) error {
		e := &entry{table: table, cursors: map[string][]byte{}, rows: len(txn.Changes)}
		first(txn.Position, e)
		// The token names the page by its start, so a resumed run gives a page the same
		// identity (and rule-default keys the same values) as before the crash.
		token := "snapshot:" + table + ":" + Values(after).String()
		after = cursor
		ts.After, ts.Rows = Values(cursor), ts.Rows+int64(len(txn.Changes))
		e.cursors[TableCursor(table)] = mustJSON(ts)
		e.progress = prog()
		return f.send(ctx, &cdc.Txn{Position: cdc.Position{GTID: token}, CommitTime: txn.CommitTime, Changes: txn.Changes}, e)
	})
	if err != nil {
		return Progress{}, fmt.Errorf("snapshot %s: %w", table, err)
	}
	e := &entry{table: table, cursors: map[string][]byte{}}
	first(pos, e)
	ts.Done = true
	e.cursors[TableCursor(table)] = mustJSON(ts)
	e.progress = prog()
	if err := f.send(ctx, &cdc.Txn{Position: cdc.Position{GTID: "snapshot:" + table + ":end"}}, e); err != nil {
		return Progress{}, err
	}
	return prog(), nil
}

// Apply is ingest's commit: it swaps the token checkpoint for the pages' cursors. ingest's own
// batch is left as it was (ingest reads its checkpoint after Apply).
func (f *feeder) Apply(ctx context.Context, in *state.Batch) (state.ApplyResult, error) {
	b := *in
	b.Schedules = append([]state.Schedule(nil), in.Schedules...)
	var done []*entry
	if b.Checkpoint != nil {
		f.mu.Lock()
		for i, e := range f.queue {
			if e.position == b.Checkpoint.Position {
				done = f.queue[: i+1 : i+1]
				f.queue = f.queue[i+1:]
				break
			}
		}
		f.mu.Unlock()
		if done == nil {
			return state.ApplyResult{}, fmt.Errorf("snapshot: commit of unknown page %q", b.Checkpoint.Position)
		}
	}
	b.Checkpoint = nil
	b.Cursors = map[string][]byte{}
	for _, e := range done {
		for k, v := range e.cursors {
			b.Cursors[k] = v
		}
		if e.checkpoint != nil {
			b.Checkpoint = e.checkpoint
		}
	}
	for _, m := range b.Messages {
		m.Origin = origin(m.Origin)
	}
	for i := range b.Schedules {
		// No version: a snapshot row is older than any binlog change after its position, so
		// it must neither block one (a version would) nor be blocked.
		b.Schedules[i].Version = time.Time{}
		b.Schedules[i].Message.Origin = origin(b.Schedules[i].Message.Origin)
	}
	res, err := f.s.opts.Store.Apply(ctx, &b)
	if err != nil {
		return res, err
	}
	for _, e := range done {
		if e.rows > 0 {
			rowsCounter(e.table).Add(e.rows)
		}
		if f.s.opts.OnProgress != nil {
			f.s.opts.OnProgress(e.progress)
		}
	}
	return res, nil
}

// MaxBatchCount leaves room for the cursors the feeder adds.
func (f *feeder) MaxBatchCount() int { return f.s.opts.Store.MaxBatchCount() - 8 }

// MaxBatchBytes leaves room for the cursors the feeder adds.
func (f *feeder) MaxBatchBytes() int64 { return f.s.opts.Store.MaxBatchBytes() - 64<<10 }

// origin turns the token ingest wrote ("gtid:snapshot:<table>:<page>") into "snapshot:<table>".
func origin(s string) string {
	s = strings.TrimPrefix(s, "gtid:")
	if rest, ok := strings.CutPrefix(s, "snapshot:"); ok {
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			return "snapshot:" + rest[:i]
		}
	}
	return s
}
