package cdc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/driver"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// Reader tails one server's binlog. Create it with New; Run it once at a time; Close it when
// done.
type Reader struct {
	opts   Options
	filter *filter

	mu      sync.Mutex
	closed  bool
	running bool
	cancel  context.CancelFunc
	db      *sql.DB
	flavor  string

	live atomic.Int32 // open binlog streams of this Reader (status.go)
}

// New validates opts and returns a Reader. It does not connect: Run does.
func New(opts Options) (*Reader, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	f, err := newFilter(opts.Include, opts.Exclude)
	if err != nil {
		return nil, fmt.Errorf("cdc options: %w", err)
	}
	return &Reader{opts: opts, filter: f}, nil
}

// Close stops a running Run (which then returns nil) and releases the metadata connections.
// It is idempotent.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.cancel != nil {
		r.cancel()
	}
	if r.db != nil && !r.running {
		err := r.db.Close()
		r.db = nil
		return err
	}
	return nil
}

// Run streams the committed transactions that follow `from` into out, in binlog order, until
// ctx is done or Close is called (it then returns nil) or a fatal error. A zero `from` starts
// at the server's current position. Each Txn is sent only once it is complete; its Position
// resumes right after it.
//
// Run reconnects by itself with a capped, jittered exponential backoff when the connection
// drops, from the last Txn it sent, so a transaction cut in half is read again whole and
// nothing is skipped or sent twice. Fatal errors are those no retry can fix: ErrPositionPurged,
// ErrSchemaMismatch, ErrRowImage, and refused credentials or privileges. Run does not close
// out.
func (r *Reader) Run(ctx context.Context, from Position, out chan<- *Txn) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.running {
		r.mu.Unlock()
		return errors.New("cdc: Run is already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	r.running, r.cancel = true, cancel
	r.mu.Unlock()
	defer func() {
		cancel()
		r.mu.Lock()
		r.running, r.cancel = false, nil
		if r.closed && r.db != nil {
			_ = r.db.Close()
			r.db = nil
		}
		r.mu.Unlock()
	}()

	err := r.run(ctx, from, out)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *Reader) run(ctx context.Context, from Position, out chan<- *Txn) error {
	log := r.opts.Logger
	backoff := r.opts.MinBackoff
	pos := from
	started := false
	for {
		var err error
		if !started {
			// Resolve the start (and check the server) inside the retry loop: the replica may be
			// restarting when we start.
			pos, err = r.prepare(ctx, from)
			started = err == nil
		}
		if err == nil {
			s := newSession(r, pos, out)
			t0 := time.Now()
			err = s.run(ctx)
			pos = s.delivered
			if s.sent > 0 || time.Since(t0) > time.Minute {
				backoff = r.opts.MinBackoff
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if fatal(err) {
			return err
		}
		reconnectsTotal.Inc()
		wait := jitter(backoff)
		log.Warn("binlog connection lost; reconnecting", "addr", r.opts.Addr, "from", pos.String(), "in", wait.Round(time.Millisecond), "err", err)
		if sleep(ctx, wait) != nil {
			return nil
		}
		backoff = min(backoff*2, r.opts.MaxBackoff)
	}
}

// jitter spreads d over [0.75d, 1.25d).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + rand.Float64()/2))
}

// fatal reports whether err is one no reconnect can fix.
func fatal(err error) bool {
	if errors.Is(err, ErrPositionPurged) || errors.Is(err, ErrSchemaMismatch) || errors.Is(err, ErrRowImage) ||
		errors.Is(err, errDecode) || errors.Is(err, ErrUnsupported) {
		return true
	}
	var me *mysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case mysql.ER_ACCESS_DENIED_ERROR, mysql.ER_DBACCESS_DENIED_ERROR, mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR:
			return true
		}
	}
	return false
}

// metaDB returns the pooled connection used for metadata queries.
func (r *Reader) metaDB() *sql.DB {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db == nil {
		r.db = sql.OpenDB(driver.Connector{Addr: r.opts.Addr, User: r.opts.User, Password: r.opts.Password})
		r.db.SetMaxIdleConns(2)
		r.db.SetConnMaxIdleTime(time.Minute)
	}
	return r.db
}

// prepare checks the server and turns `from` into a concrete start position (GTID set and/or
// file:pos). It also fixes the flavor.
func (r *Reader) prepare(ctx context.Context, from Position) (Position, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ConnectTimeout)
	defer cancel()
	db := r.metaDB()
	var version, format, image string
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image").
		Scan(&version, &format, &image); err != nil {
		return from, fmt.Errorf("server %s: read binlog settings: %w", r.opts.Addr, err)
	}
	flavor := r.opts.Flavor
	if flavor == "" {
		flavor = FlavorMySQL
		if strings.Contains(strings.ToLower(version), "mariadb") {
			flavor = FlavorMariaDB
		}
	}
	r.mu.Lock()
	r.flavor = flavor
	r.mu.Unlock()
	if !strings.EqualFold(format, "ROW") || !strings.EqualFold(image, "FULL") {
		return from, fmt.Errorf("server %s has binlog_format=%s binlog_row_image=%s, want ROW and FULL "+
			"(set them in the server config and restart; on a replica they apply to its own binlog): %w",
			r.opts.Addr, format, image, ErrRowImage)
	}
	switch {
	case from.GTID != "":
		if _, err := mysql.ParseGTIDSet(flavor, from.GTID); err != nil {
			return from, fmt.Errorf("position %s: gtid set for flavor %s: %w", from, flavor, err)
		}
		return from, nil
	case from.File != "":
		if err := r.checkFile(ctx, db, from); err != nil {
			return from, err
		}
		if flavor == FlavorMariaDB {
			var gtid sql.NullString
			if err := db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", from.File, from.Pos).Scan(&gtid); err != nil {
				return from, fmt.Errorf("position %s: look up gtid: %w", from, err)
			}
			from.GTID = gtid.String
		}
		return from, nil
	}
	return r.current(ctx, db, flavor)
}

// CurrentPosition returns the server's current binlog position, with its GTID set where the
// server has GTIDs: Run from it yields exactly the transactions committed after the call.
func (r *Reader) CurrentPosition(ctx context.Context) (Position, error) {
	if r.isClosed() {
		return Position{}, ErrClosed
	}
	return r.prepare(ctx, Position{})
}

func (r *Reader) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// serverFlavor returns the flavor found by the last prepare.
func (r *Reader) serverFlavor() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flavor
}

// checkFile fails with ErrPositionPurged when the position's binlog file is gone.
func (r *Reader) checkFile(ctx context.Context, db *sql.DB, p Position) error {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return fmt.Errorf("server %s: list binlogs: %w", r.opts.Addr, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var files []string
	for rows.Next() {
		dest := make([]any, len(cols))
		var name string
		dest[0] = &name
		for i := 1; i < len(dest); i++ {
			dest[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("server %s: list binlogs: %w", r.opts.Addr, err)
		}
		if name == p.File {
			return nil
		}
		files = append(files, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("server %s: list binlogs: %w", r.opts.Addr, err)
	}
	return purgedError(p, fmt.Sprintf("the server's binlogs are %s", strings.Join(files, ", ")))
}

// purgedError builds the ErrPositionPurged error for p.
func purgedError(p Position, detail string) error {
	return fmt.Errorf("position %s: %s: %w; run `notifier snapshot --all` to rebuild from current data "+
		"(it also moves the checkpoint to the current position)", p, detail, ErrPositionPurged)
}

// current reads the server's current binlog position (and its GTID set).
func (r *Reader) current(ctx context.Context, db *sql.DB, flavor string) (Position, error) {
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil && flavor == FlavorMySQL {
		rows, err = db.QueryContext(ctx, "SHOW BINARY LOG STATUS") // MySQL 8.4 removed SHOW MASTER STATUS
	}
	if err != nil {
		return Position{}, fmt.Errorf("server %s: read current binlog position: %w", r.opts.Addr, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Position{}, fmt.Errorf("server %s: read current binlog position: %w", r.opts.Addr, err)
		}
		return Position{}, fmt.Errorf("server %s has no binlog (log_bin is OFF): %w", r.opts.Addr, ErrRowImage)
	}
	vals := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return Position{}, fmt.Errorf("server %s: read current binlog position: %w", r.opts.Addr, err)
	}
	rows.Close()
	var p Position
	p.File = vals[0].String
	if _, err := fmt.Sscan(vals[1].String, &p.Pos); err != nil {
		return Position{}, fmt.Errorf("server %s: binlog position %q: %w", r.opts.Addr, vals[1].String, err)
	}
	if flavor == FlavorMariaDB {
		var gtid sql.NullString
		if err := db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos).Scan(&gtid); err != nil {
			return Position{}, fmt.Errorf("position %s: look up gtid: %w", p, err)
		}
		p.GTID = gtid.String
	} else if len(vals) >= 5 {
		p.GTID = strings.ReplaceAll(vals[4].String, "\n", "")
	}
	return p, nil
}

// levelFilter drops go-mysql's chatty Info lines (every rotate and connect) below min.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (h levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
