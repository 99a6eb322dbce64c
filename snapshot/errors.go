package snapshot

import "errors"

// Sentinel errors.
var (
	// ErrNoSource: Options.Source is nil.
	ErrNoSource = errors.New("snapshot: no source (cdc reader)")
	// ErrNoStore: Options.Store is nil.
	ErrNoStore = errors.New("snapshot: no store")
	// ErrNoRules: Options.Rules is nil.
	ErrNoRules = errors.New("snapshot: no rule set")
	// ErrNoTables: neither Options.Tables nor an unfinished run name a table.
	ErrNoTables = errors.New("snapshot: no table to snapshot")
	// ErrCursor: a stored cursor cannot be read (written by an incompatible version).
	ErrCursor = errors.New("snapshot: unreadable cursor")
)
