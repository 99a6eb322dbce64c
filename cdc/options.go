package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Flavors accepted by Options.Flavor.
const (
	FlavorMariaDB = "mariadb"
	FlavorMySQL   = "mysql"
)

// Options configures a Reader. Addr, User and ServerID are required; every other field has a
// default (see validate).
type Options struct {
	// Addr is the replica's "host:port".
	Addr string
	// User and Password log in to the replica. The user needs REPLICATION SLAVE, REPLICATION
	// CLIENT (BINLOG MONITOR on MariaDB) and SELECT on the watched tables and information_schema.
	User, Password string
	// Flavor is "mariadb" or "mysql"; empty: detected from the server's version.
	Flavor string
	// ServerID identifies this reader to the server as a replica. It must be non-zero, unique
	// among all replicas of the source and stable across restarts of the same deployment.
	ServerID uint32
	// Include and Exclude are "schema.table" patterns where '*' matches any run of characters;
	// each is matched against the whole name. A table is watched when it matches an Include
	// pattern (or Include is empty) and no Exclude pattern. Rows of other tables are not
	// decoded; their transactions only move the position (see ProgressInterval).
	Include, Exclude []string
	// Logger receives connection and schema events. Nil: discard.
	Logger *slog.Logger

	// Now is the clock that paces progress-only transactions. Nil: time.Now.
	Now func() time.Time
	// ProgressInterval is the least time between two progress-only Txns (transactions with no
	// watched change, DDL). Zero: 2 s.
	ProgressInterval time.Duration
	// HeartbeatPeriod asks the server for a heartbeat when the binlog is idle. Zero: 5 s.
	HeartbeatPeriod time.Duration
	// ReadTimeout drops a connection that delivered nothing (not even a heartbeat) for this
	// long, so a half-open TCP connection is noticed. Zero: 6 × HeartbeatPeriod.
	ReadTimeout time.Duration
	// ConnectTimeout bounds dialing and queries for metadata. Zero: 10 s.
	ConnectTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential wait between reconnects.
	// Zero: 200 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// SnapshotRowsPerSecond caps the rate at which Snapshot reads rows. Zero: no cap.
	SnapshotRowsPerSecond int

	// slowDecode forces go-mysql's decoder for every table (tests compare both decoders).
	slowDecode bool
}

func (o *Options) validate() error {
	var errs []error
	if o.Addr == "" {
		errs = append(errs, errors.New("addr is empty"))
	} else if _, port, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %w", o.Addr, err))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: port: %w", o.Addr, err))
	}
	if o.User == "" {
		errs = append(errs, errors.New("user is empty"))
	}
	if o.ServerID == 0 {
		errs = append(errs, errors.New("server id is 0: set a non-zero id unique among the source's replicas"))
	}
	switch o.Flavor {
	case "", FlavorMariaDB, FlavorMySQL:
	default:
		errs = append(errs, fmt.Errorf("flavor %q: want %q or %q", o.Flavor, FlavorMariaDB, FlavorMySQL))
	}
	for _, p := range append(append([]string(nil), o.Include...), o.Exclude...) {
		if _, err := compilePattern(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cdc options: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 2 * time.Second
	}
	if o.HeartbeatPeriod <= 0 {
		o.HeartbeatPeriod = 5 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 6 * o.HeartbeatPeriod
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	return nil
}

// compilePattern turns "schema.table" with '*' wildcards into an anchored regexp.
func compilePattern(p string) (*regexp.Regexp, error) {
	if p == "" || !strings.Contains(p, ".") {
		return nil, fmt.Errorf("table pattern %q: want schema.table ('*' matches any characters)", p)
	}
	parts := strings.Split(p, "*")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.Compile("^" + strings.Join(parts, ".*") + "$")
}

// filter decides which tables are watched. It caches decisions per table name; it is used by
// one goroutine at a time (the session's decoder).
type filter struct {
	include, exclude []*regexp.Regexp
	cache            map[string]map[string]bool // schema → table → watched
}

func newFilter(include, exclude []string) (*filter, error) {
	f := &filter{cache: map[string]map[string]bool{}}
	for _, p := range include {
		re, err := compilePattern(p)
		if err != nil {
			return nil, err
		}
		f.include = append(f.include, re)
	}
	for _, p := range exclude {
		re, err := compilePattern(p)
		if err != nil {
			return nil, err
		}
		f.exclude = append(f.exclude, re)
	}
	return f, nil
}

// watched reports whether schema.table is watched. Lookups of cached names do not allocate.
func (f *filter) watched(schema, table []byte) bool {
	if w, ok := f.cache[string(schema)][string(table)]; ok {
		return w
	}
	s, t := string(schema), string(table)
	w := f.match(s + "." + t)
	m := f.cache[s]
	if m == nil {
		m = map[string]bool{}
		f.cache[s] = m
	}
	m[t] = w
	return w
}

func (f *filter) match(name string) bool {
	ok := len(f.include) == 0
	for _, re := range f.include {
		if re.MatchString(name) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, re := range f.exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
