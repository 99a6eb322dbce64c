package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"notifier/cdc"
	"notifier/rules"
	"notifier/state"
)

// Source reads a table in a consistent snapshot; *cdc.Reader implements it (see
// cdc.Reader.Snapshot for the contract: pages of OpSnapshot changes in primary-key order, the
// cursor of each page's last row, resumable from a cursor, throttled).
type Source interface {
	Snapshot(ctx context.Context, table string, after []any, pageSize int,
		fn func(txn *cdc.Txn, cursor []any) error) (cdc.Position, error)
}

// Store is what a snapshot needs of the state store; *state.Store implements it.
type Store interface {
	Apply(ctx context.Context, b *state.Batch) (state.ApplyResult, error)
	MaxBatchCount() int
	MaxBatchBytes() int64
	Cursor(name string) ([]byte, error)
}

// Cursor names in the store (w/<name>).
const (
	// RunCursor records the current or last run: tables, first position, finished or not.
	RunCursor = "snapshot"
	// tableCursorPrefix + "<schema.table>" is a table's cursor.
	tableCursorPrefix = "snapshot/"
)

// TableCursor is the name of a table's cursor: "snapshot/<schema.table>".
func TableCursor(table string) string { return tableCursorPrefix + table }

// Options configures a Snapshotter. Source, Store and Rules are required.
type Options struct {
	Source Source
	Store  Store
	Rules  *rules.Set
	// Tables are the "schema.table" names to snapshot in a new run (see TablesFor). An
	// unfinished run is resumed with its own tables first.
	Tables []string
	// MoveCheckpoint stores the first table's snapshot position as the binlog checkpoint, with
	// the first page's effects: the initial snapshot (no checkpoint yet) and a re-snapshot of
	// all tables after the checkpoint's binlog was purged. Leave it false to re-snapshot some
	// tables while the checkpoint stays valid (the binlog since it is still read).
	MoveCheckpoint bool
	// Flavor goes into the checkpoint: "mariadb" (default) or "mysql".
	Flavor string
	// PageSize is the number of rows per SELECT and per store transaction. Default: 1000, at
	// most a quarter of the store's MaxBatchCount (a row may yield several effects).
	PageSize int
	// DefaultMaxPerMinute is ingest's blast-radius limit for rules without max_per_minute
	// (0: none). A snapshot produces many messages at once: rules that opt in to `snapshot`
	// usually schedule reminders and should not be paused by it.
	DefaultMaxPerMinute int
	// Kick wakes the sender after a commit that created messages.
	Kick func()
	// OnProgress is called after every committed page and when a table is finished.
	OnProgress func(Progress)
	// Now is the clock (message times). Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) validate() error {
	switch {
	case o.Source == nil:
		return ErrNoSource
	case o.Store == nil:
		return ErrNoStore
	case o.Rules == nil:
		return ErrNoRules
	}
	if o.Flavor == "" {
		o.Flavor = cdc.FlavorMariaDB
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if limit := o.Store.MaxBatchCount() / 4; limit > 0 && o.PageSize > limit {
		o.PageSize = limit
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Progress reports a table's committed progress.
type Progress struct {
	Table    string
	Rows     int64        // rows committed for this table in this run (resumes included)
	Done     bool         // the table is finished
	Position cdc.Position // the table's snapshot position
}

// Result describes a finished run.
type Result struct {
	// Position is the first table's snapshot position: stream the binlog from here.
	Position cdc.Position
	Tables   []Progress
	// Resumed is true when the run continued an interrupted one.
	Resumed bool
}

// RunState is the stored record of a run (cursor w/snapshot).
type RunState struct {
	Tables         []string  `json:"tables"`
	Position       string    `json:"position,omitempty"` // first table's position (cdc.Position.String)
	MoveCheckpoint bool      `json:"move_checkpoint,omitempty"`
	Done           bool      `json:"done"`
	Started        time.Time `json:"started"`
	Finished       time.Time `json:"finished,omitzero"`
}

// TableState is the stored cursor of one table (w/snapshot/<table>).
type TableState struct {
	Position string `json:"position,omitempty"` // this table's snapshot position
	After    Values `json:"after,omitempty"`    // primary key of the last committed row
	Rows     int64  `json:"rows"`
	Done     bool   `json:"done"`
}

// Snapshotter runs snapshots. Create it with New; Run it once at a time.
type Snapshotter struct {
	opts Options
	log  *slog.Logger
}

// New validates opts and returns a Snapshotter.
func New(opts Options) (*Snapshotter, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Snapshotter{opts: opts, log: opts.Logger}, nil
}

// Pending reports whether the store holds an unfinished run, and its tables.
func Pending(st Store) (bool, []string, error) {
	run, ok, err := loadRun(st)
	if err != nil || !ok || run.Done {
		return false, nil, err
	}
	return true, run.Tables, nil
}

// Status returns the stored run and the cursor of each of its tables (ok false: never run).
func Status(st Store) (run RunState, tables map[string]TableState, ok bool, err error) {
	run, ok, err = loadRun(st)
	if err != nil || !ok {
		return run, nil, ok, err
	}
	tables = make(map[string]TableState, len(run.Tables))
	for _, t := range run.Tables {
		ts, err := loadTable(st, t)
		if err != nil {
			return run, nil, ok, err
		}
		tables[t] = ts
	}
	return run, tables, true, nil
}

func loadRun(st Store) (RunState, bool, error) {
	var run RunState
	b, err := st.Cursor(RunCursor)
	if err != nil || b == nil {
		return run, false, err
	}
	if err := json.Unmarshal(b, &run); err != nil {
		return run, false, fmt.Errorf("cursor %q: %w: %w", RunCursor, ErrCursor, err)
	}
	return run, true, nil
}

func loadTable(st Store, table string) (TableState, error) {
	var ts TableState
	b, err := st.Cursor(TableCursor(table))
	if err != nil || b == nil {
		return ts, err
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		return ts, fmt.Errorf("cursor %q: %w: %w", TableCursor(table), ErrCursor, err)
	}
	return ts, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("snapshot: encode cursor: %v", err)) // only our own types: a bug
	}
	return b
}

// Run resumes the unfinished run if there is one, else starts a new run of Options.Tables,
// and returns when every table is read and its effects committed. Cancelling ctx stops it
// (a hard stop: what was not committed is read again by the next Run).
func (s *Snapshotter) Run(ctx context.Context) (Result, error) {
	run, ok, err := loadRun(s.opts.Store)
	if err != nil {
		return Result{}, err
	}
	res := Result{Resumed: ok && !run.Done}
	if !res.Resumed {
		if len(s.opts.Tables) == 0 {
			return Result{}, ErrNoTables
		}
		run = RunState{Tables: slices.Clone(s.opts.Tables), MoveCheckpoint: s.opts.MoveCheckpoint, Started: s.opts.Now().UTC()}
		b := &state.Batch{Cursors: map[string][]byte{RunCursor: mustJSON(run)}}
		for _, t := range run.Tables {
			b.Cursors[TableCursor(t)] = nil // a new run starts every table from its beginning
		}
		if _, err := s.opts.Store.Apply(ctx, b); err != nil {
			return Result{}, fmt.Errorf("snapshot: record run of %v: %w", run.Tables, err)
		}
		s.log.Info("snapshot started", "tables", run.Tables, "move_checkpoint", run.MoveCheckpoint)
	} else {
		s.log.Warn("resuming an interrupted snapshot", "tables", run.Tables, "position", run.Position)
	}
	running.Set(1)
	defer running.Set(0)

	f := newFeeder(s, &run)
	if err := f.start(ctx); err != nil {
		return Result{}, err
	}
	for _, table := range run.Tables {
		p, err := f.table(ctx, table)
		if err != nil {
			_ = f.stop()
			return Result{}, err
		}
		res.Tables = append(res.Tables, p)
	}
	if err := f.stop(); err != nil {
		return Result{}, err
	}

	run.Done, run.Finished = true, s.opts.Now().UTC()
	b := &state.Batch{Cursors: map[string][]byte{RunCursor: mustJSON(run)}}
	if run.MoveCheckpoint && run.Position != "" {
		b.Checkpoint = &state.Checkpoint{Flavor: s.opts.Flavor, Position: run.Position}
	}
	if _, err := s.opts.Store.Apply(ctx, b); err != nil {
		return Result{}, fmt.Errorf("snapshot: record finished run: %w", err)
	}
	if run.Position != "" {
		if res.Position, err = cdc.ParsePosition(run.Position); err != nil {
			return Result{}, fmt.Errorf("snapshot: run position %q: %w", run.Position, err)
		}
	}
	s.log.Info("snapshot finished", "tables", run.Tables, "position", run.Position)
	return res, nil
}

// TablesFor lists the table patterns of the rules that opt in to op `snapshot`, sorted. Patterns
// with '*' must be expanded to table names before they are passed as Options.Tables.
func TablesFor(set *rules.Set) []string {
	var out []string
	for _, r := range set.Rules {
		if slices.Contains(r.On, cdc.OpSnapshot) && !slices.Contains(out, r.Table) {
			out = append(out, r.Table)
		}
	}
	slices.Sort(out)
	return out
}

var errStopped = errors.New("snapshot: ingest stopped")
