package state

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Defaults used when an Options field is zero.
const (
	DefaultDedupeHorizon = 30 * 24 * time.Hour
	DefaultMemTableSize  = 32 << 20
)

// Options configures Open. The zero value of every field but Dir is a usable default.
type Options struct {
	// Dir is the store directory (one volume). Required unless InMemory.
	Dir string
	// InMemory keeps everything in memory: tests only, nothing survives Close.
	InMemory bool
	// NoSync turns off the fsync of every commit (Badger SyncWrites). The default (false) is
	// synced: a committed Apply, Claim or Complete survives a power loss, which invariants 1 and
	// 3 need. Set it only for tests and benchmarks that measure something else.
	NoSync bool
	// DedupeHorizon is how long terminal records (sent, dead, cancelled, skipped) and flushed
	// digest markers are kept before Expire deletes them. Default 30 days.
	DedupeHorizon time.Duration
	// MemTableSize is Badger's memtable size (default 32 MiB). A transaction is capped at 15%
	// of it, so it also bounds MaxBatchCount; memory use is about 3× this plus 32 MiB of caches.
	MemTableSize int64
	// Logger receives Badger's warnings and errors and the store's own; default slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) validate() error {
	if o.Dir == "" && !o.InMemory {
		return fmt.Errorf("state options: Dir is required: %w", ErrInvalid)
	}
	if o.DedupeHorizon < 0 || o.MemTableSize < 0 {
		return fmt.Errorf("state options: negative DedupeHorizon or MemTableSize: %w", ErrInvalid)
	}
	if o.DedupeHorizon == 0 {
		o.DedupeHorizon = DefaultDedupeHorizon
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.MemTableSize < 1<<20 {
		return fmt.Errorf("state options: MemTableSize %d below 1 MiB: %w", o.MemTableSize, ErrInvalid)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// badgerOptions tunes Badger for a small pod (LIBRARY-NOTES B): bounded memtables and caches,
// small vlog files, two compactors, no expvar metrics, one version per key, synced commits.
func (o *Options) badgerOptions() badger.Options {
	dir := o.Dir
	if o.InMemory {
		dir = ""
	}
	return badger.DefaultOptions(dir).
		WithInMemory(o.InMemory).
		WithSyncWrites(!o.NoSync).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(true). // Apply, Claim, Complete and admin writes may touch one m/<key>
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(3).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20). // Snappy is on: the cache holds decompressed blocks
		WithIndexCacheSize(16 << 20). // bound bloom filters and table indexes
		WithValueLogFileSize(64 << 20).
		// Records stay in the LSM (values below the threshold); Badger requires the threshold
		// below the transaction size limit, which a small memtable lowers.
		WithValueThreshold(min(1<<20, o.MemTableSize/16)).
		WithCompression(options.Snappy).
		WithNumCompactors(2).
		WithMetricsEnabled(false).
		WithLogger(slogAdapter{o.Logger})
}

// slogAdapter passes Badger's warnings and errors to slog; Badger's info and debug chatter
// (compaction progress, table flushes) is dropped.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Errorf(f string, args ...any) {
	a.l.LogAttrs(context.Background(), slog.LevelError, "badger: "+strings.TrimSpace(fmt.Sprintf(f, args...)))
}

func (a slogAdapter) Warningf(f string, args ...any) {
	a.l.LogAttrs(context.Background(), slog.LevelWarn, "badger: "+strings.TrimSpace(fmt.Sprintf(f, args...)))
}

func (slogAdapter) Infof(string, ...any)  {}
func (slogAdapter) Debugf(string, ...any) {}
