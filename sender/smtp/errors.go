package smtp

import (
	"errors"
	"fmt"
)

// The sentinel errors of this package; test with errors.Is.
var (
	// ErrConfig marks an invalid Config; New returns it wrapped.
	ErrConfig = errors.New("invalid smtp channel config")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("smtp channel closed")
	// ErrUncertain marks a failure after the end of the message data was written: the server
	// may have accepted the message. Send reports retry=true with reason timeout or connection
	// and NotSent()=false, so the sender makes the message uncertain on a non-idempotent channel.
	ErrUncertain = errors.New("connection lost after the message data was sent; it may have been delivered")
	// ErrRecipient marks a message whose To is not one valid e-mail address (final).
	ErrRecipient = errors.New("invalid recipient address")
)

// The failure reasons this package reports through Error.FailureReason. They are values of the
// sender's Reason set (sender/channel.go), whose names follow HTTP: "provider_4xx" is a final
// refusal, "provider_5xx" a transient failure. So an SMTP 5xx reply maps to provider_4xx and an
// SMTP 4xx reply to provider_5xx.
const (
	ReasonRefused    = "provider_4xx" // SMTP 5xx: permanent refusal
	ReasonTransient  = "provider_5xx" // SMTP 4xx: temporary failure
	ReasonTimeout    = "timeout"
	ReasonConnection = "connection"
	ReasonTemplate   = "template" // the message cannot be built (bad recipient)
	ReasonShutdown   = "shutdown" // ctx cancelled: the sender is stopping
)

// Error is a classified failure of one Send. The sender reads it through the duck-typed methods
// FailureReason and NotSent (see sender.ReasonOf and sender.NotSent); it never contains the
// password, and the recipient only as far as the server's reply quotes it.
type Error struct {
	Addr  string // server host:port
	Key   string // message key
	Stage string // dial, tls, hello, auth, mail, rcpt, data, end of data
	Code  int    // SMTP reply code, 0 when the server did not answer
	// Reason is one of the Reason* constants.
	Reason string
	// Sent is true when the failure came after the end of the message data was written and
	// without a reply: the message may have been delivered.
	Sent bool
	Err  error
}

// Error describes the failure with the server, the message key and the stage.
func (e *Error) Error() string {
	return fmt.Sprintf("smtp %s: message %q: %s: %v", e.Addr, e.Key, e.Stage, e.Err)
}

// Unwrap returns the cause (an *smtp.SMTPError for a server reply, a net.Error, ErrUncertain…).
func (e *Error) Unwrap() error { return e.Err }

// FailureReason returns Reason (read by sender.ReasonOf).
func (e *Error) FailureReason() string { return e.Reason }

// NotSent reports whether the server surely did not take the message: every failure except one
// after the end of data without a reply (read by sender.NotSent).
func (e *Error) NotSent() bool { return !e.Sent }
