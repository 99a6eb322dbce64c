package cdc

import "errors"

// Sentinel errors. Run wraps them with the details (position, table, variable) and a recovery
// hint; test with errors.Is.
var (
	// ErrPositionPurged: the server no longer has the binlog at the requested position (it was
	// purged, or the GTID is not in any binlog file). Nothing can resume from there: rebuild the
	// state from current data with `notifier snapshot --all`.
	ErrPositionPurged = errors.New("binlog position no longer on the server")
	// ErrSchemaMismatch: a row image has a different number (or kind) of columns than the
	// table has now, typically rows written before an ALTER TABLE read after it. The values
	// cannot be attributed to columns safely; re-snapshot the table from the current position.
	ErrSchemaMismatch = errors.New("row image does not match the table's columns")
	// ErrRowImage: the server does not write full row images (binlog_format must be ROW and
	// binlog_row_image FULL), or the binlog holds a statement-based row change.
	ErrRowImage = errors.New("binlog does not carry full row images")
	// ErrUnsupported: the binlog holds a transaction the reader cannot attribute safely (an XA
	// transaction on a watched table: its rows are logged at XA PREPARE, its outcome later).
	ErrUnsupported = errors.New("unsupported binlog content")
	// ErrClosed: Run or Snapshot was called on a closed Reader.
	ErrClosed = errors.New("cdc reader closed")
)
