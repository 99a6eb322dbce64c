package jetstream

import (
	"errors"
	"fmt"
)

// The sentinel errors of this package; test with errors.Is.
var (
	// ErrConfig marks an invalid Config; New returns it wrapped.
	ErrConfig = errors.New("invalid jetstream channel config")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("jetstream channel closed")
)

// The failure reasons this package reports through Error.FailureReason (values of the sender's
// Reason set, sender/channel.go).
const (
	ReasonTimeout    = "timeout"      // no ack in time: the message may be stored (NotSent false)
	ReasonConnection = "connection"   // not connected and the publish was not written
	ReasonServer     = "provider_5xx" // JetStream answered with an error, or no stream listens
	ReasonTemplate   = "template"     // the message cannot be encoded or is too large (final)
	ReasonShutdown   = "shutdown"
)

// Error is a classified failure of one Send, read by the sender through FailureReason and
// NotSent (sender.ReasonOf, sender.NotSent). It never contains credentials or the recipient.
type Error struct {
	Subject string
	Key     string
	Reason  string
	// Sent is true when the publish was written without an answer (timeout): the stream may
	// hold it. A resend is then safe only thanks to the msg id dedupe, so declare the channel
	// idempotent (and keep the stream's duplicate window longer than any resend gap).
	Sent bool
	Err  error
}

// Error describes the failure with the subject and the message key.
func (e *Error) Error() string {
	return fmt.Sprintf("jetstream publish to %q: message %q: %v", e.Subject, e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// FailureReason returns Reason (read by sender.ReasonOf).
func (e *Error) FailureReason() string { return e.Reason }

// NotSent reports whether the stream surely did not store the message (read by sender.NotSent).
func (e *Error) NotSent() bool { return !e.Sent }
