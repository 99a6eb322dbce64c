package sweep

import "errors"

// Sentinel errors.
var (
	// ErrRunning: the sweep is already running (a run never starts twice at once).
	ErrRunning = errors.New("sweep is already running")
	// ErrUnknownSweep: no sweep of that name in the current rules.
	ErrUnknownSweep = errors.New("unknown sweep")
	// ErrKeyColumn: the query's result has no key_column, or a row's key is NULL.
	ErrKeyColumn = errors.New("sweep key column missing or NULL")
	// ErrCursor: a stored cursor cannot be read.
	ErrCursor = errors.New("unreadable sweep cursor")
	// ErrNoStore, ErrNoRules: required options are missing.
	ErrNoStore = errors.New("sweep: no store")
	ErrNoRules = errors.New("sweep: no rule set")
)
