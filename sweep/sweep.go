package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"notifier/rules"
	"notifier/snapshot"
	"notifier/state"
)

// Store is what sweeps need of the state store; *state.Store implements it.
type Store interface {
	Apply(ctx context.Context, b *state.Batch) (state.ApplyResult, error)
	MaxBatchCount() int
	Cursor(name string) ([]byte, error)
}

// CursorName is the store cursor of a sweep: "sweep/<name>" (key w/sweep/<name>).
func CursorName(sweep string) string { return "sweep/" + sweep }

// Cursor is the stored state of a sweep's current or last run.
type Cursor struct {
	Tick     time.Time       `json:"tick"`            // the run's scheduled time
	After    snapshot.Values `json:"after,omitempty"` // key column value of the last committed row
	Rows     int64           `json:"rows"`            // rows committed in this run
	Messages int64           `json:"messages"`        // messages created in this run
	Done     bool            `json:"done"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished,omitzero"`
}

// Options configures a Scheduler. Addr, User, Store and Rules are required.
type Options struct {
	// Addr, User and Password log in to the replica the queries run on.
	Addr, User, Password string
	Store                Store
	Rules                *rules.Set
	// PageSize is the number of rows per query and per store transaction. Default 1000, at
	// most a quarter of the store's MaxBatchCount.
	PageSize int
	// RowsPerSecond caps the rows read per second, per run (0: no cap).
	RowsPerSecond int
	// CatchUp is how late a tick missed while the service was down may still run (once).
	// Default 1h; negative: never.
	CatchUp time.Duration
	// Poll is the longest the scheduler sleeps before looking at the clock and the rules
	// again. Default 1 minute.
	Poll time.Duration
	// QueryTimeout bounds one page's query. Default 5 minutes.
	QueryTimeout time.Duration
	// Kick wakes the sender after a commit that created messages.
	Kick func()
	// OnProgress is called after every committed page (tests, progress logs).
	OnProgress func(Progress)
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) validate() error {
	switch {
	case o.Store == nil:
		return ErrNoStore
	case o.Rules == nil:
		return ErrNoRules
	case o.Addr == "" || o.User == "":
		return fmt.Errorf("sweep options: addr and user of the replica are required")
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if limit := o.Store.MaxBatchCount() / 4; limit > 0 && o.PageSize > limit {
		o.PageSize = limit
	}
	if o.CatchUp == 0 {
		o.CatchUp = time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = time.Minute
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Progress reports a run's committed progress.
type Progress struct {
	Sweep    string
	Tick     time.Time
	Rows     int64
	Messages int64
	Done     bool
}

// Result describes a finished run.
type Result struct {
	Progress
	Resumed bool          // the run continued an interrupted one
	Already bool          // the tick had already run to completion: nothing was done
	Took    time.Duration // this call's duration
}

// Scheduler runs the sweeps of the current rule set on their schedules.
type Scheduler struct {
	opts  Options
	log   *slog.Logger
	rules atomic.Pointer[rules.Set]

	mu      sync.Mutex
	running map[string]bool
}

// New validates opts and returns a Scheduler.
func New(opts Options) (*Scheduler, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{opts: opts, log: opts.Logger, running: map[string]bool{}}
	s.rules.Store(opts.Rules)
	return s, nil
}

// SetRules replaces the rule set; the next tick of each sweep is computed from it. A running
// sweep finishes with the rules it started with.
func (s *Scheduler) SetRules(set *rules.Set) {
	if set != nil {
		s.rules.Store(set)
	}
}

// LoadCursor reads a sweep's stored cursor; ok is false when it never ran.
func LoadCursor(st Store, sweep string) (c Cursor, ok bool, err error) {
	b, err := st.Cursor(CursorName(sweep))
	if err != nil || b == nil {
		return c, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, false, fmt.Errorf("cursor %q: %w: %w", CursorName(sweep), ErrCursor, err)
	}
	return c, true, nil
}

// Status is a sweep's schedule and last run, for `notifier status`.
type Status struct {
	Name, Schedule string
	Next           time.Time // the next tick after now
	Last           Cursor    // the current or last run (zero if never run)
	HasRun         bool
	Running        bool // running in this process
}

// Status returns the state of every sweep of the current rules.
func (s *Scheduler) Status() ([]Status, error) {
	out, err := Statuses(s.opts.Store, s.rules.Load(), s.opts.Now())
	for i := range out {
		out[i].Running = s.isRunning(out[i].Name)
	}
	return out, err
}

// Statuses reads the state of every sweep of set from the store (offline `notifier status`).
func Statuses(st Store, set *rules.Set, now time.Time) ([]Status, error) {
	var out []Status
	for _, sw := range set.Sweeps {
		c, ok, err := LoadCursor(st, sw.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, Status{Name: sw.Name, Schedule: sw.Schedule, Next: sw.Next(now), Last: c, HasRun: ok})
	}
	return out, nil
}

func (s *Scheduler) isRunning(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[name]
}

// claim marks name running; false if it already is.
func (s *Scheduler) claim(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[name] {
		return false
	}
	s.running[name] = true
	runningGauge(name).Set(1)
	return true
}

func (s *Scheduler) release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, name)
	runningGauge(name).Set(0)
}

// RunOnce runs (or resumes) the run of sweep name for tick and returns when its rows are
// committed. A tick that already ran to completion does nothing (Result.Already); a sweep that
// is running fails with ErrRunning.
func (s *Scheduler) RunOnce(ctx context.Context, name string, tick time.Time) (Result, error) {
	var sw *rules.Sweep
	for _, x := range s.rules.Load().Sweeps {
		if x.Name == name {
			sw = x
		}
	}
	if sw == nil {
		return Result{}, fmt.Errorf("sweep %q: %w", name, ErrUnknownSweep)
	}
	if !s.claim(name) {
		return Result{}, fmt.Errorf("sweep %q: %w", name, ErrRunning)
	}
	defer s.release(name)
	return s.run(ctx, sw, tick)
}
