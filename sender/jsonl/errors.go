package jsonl

import "errors"

// The errors of this package. Send wraps them once with the channel's context; test with
// errors.Is.
var (
	// ErrConfig marks an invalid Config; New returns it wrapped.
	ErrConfig = errors.New("invalid jsonl channel config")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("jsonl channel closed")
	// ErrWrite marks a failed write or fsync; the line was rolled back where possible and the
	// message may be retried (Send returns retry=true).
	ErrWrite = errors.New("jsonl write failed")
)
