package state

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these or a Badger / I/O
// error, with a lowercase context that names the object (message key, slot, window).
var (
	// ErrNotFound: no message (or digest window) with that key.
	ErrNotFound = errors.New("not found")
	// ErrInUse: the store directory is locked by another process (or another Open in this one).
	ErrInUse = errors.New("store in use")
	// ErrBatchTooBig: an Apply batch does not fit in one Badger transaction. Nothing was
	// written: neither the effects nor the checkpoint. Split at a binlog transaction boundary.
	ErrBatchTooBig = errors.New("batch too big for one transaction")
	// ErrWrongState: the requested transition is not allowed from the message's current status
	// (e.g. Cancel of a sent message, Complete of a message that is not sending).
	ErrWrongState = errors.New("wrong message state")
	// ErrAlreadyFlushed: FlushDigest on a window that has already been flushed.
	ErrAlreadyFlushed = errors.New("digest window already flushed")
	// ErrCorrupt: a stored record could not be decoded.
	ErrCorrupt = errors.New("corrupt record")
	// ErrInvalid: an argument was rejected (empty key, unknown result, bad status...).
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
)
