package webhook

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of package webhook.
var (
	// ErrConfig: the channel's options are invalid.
	ErrConfig = errors.New("invalid webhook config")
	// ErrTemplate: the request could not be built from the message (a template failed, or the
	// body is not valid JSON).
	ErrTemplate = errors.New("build request")
	// ErrStatus: the provider answered with a status that is not 2xx.
	ErrStatus = errors.New("unexpected status")
	// ErrRejected: the provider answered 2xx but its body says the message was not accepted.
	ErrRejected = errors.New("rejected by provider")
	// ErrUnauthorized: a receipt callback without the shared secret.
	ErrUnauthorized = errors.New("receipt: bad or missing token")
)

// The reasons this package reports; they equal sender.Reason values (this package does not
// import sender, the sender classifies through Error.FailureReason).
const (
	reasonProvider4xx = "provider_4xx"
	reasonProvider5xx = "provider_5xx"
	reasonRateLimited = "rate_limited"
	reasonTimeout     = "timeout"
	reasonConnection  = "connection"
	reasonTemplate    = "template"
	reasonRejected    = "rejected"
)

// Error is a failed webhook call. Its text names the channel, the method and the redacted URL
// (no query, no user info), and carries the provider's answer truncated to 1 KiB with every
// configured secret replaced by "<secret>". Reason and RetryAfter are read by the sender
// (FailureReason, RetryDelay).
type Error struct {
	Channel    string
	Method     string
	URL        string        // redacted
	Status     int           // 0 when no answer
	Body       string        // the provider's answer, truncated and scrubbed
	Reason     string        // a sender.Reason value
	RetryAfter time.Duration // from Retry-After on 429/503
	// Written: the whole request was written to the connection (the provider may have acted
	// on it even if no answer came back).
	Written bool
	Err     error
}

// Error formats "webhook <channel>: POST https://host/path: status 400: <body>".
func (e *Error) Error() string {
	s := fmt.Sprintf("webhook %s: %s %s", e.Channel, e.Method, e.URL)
	if e.Status != 0 {
		s += fmt.Sprintf(": status %d", e.Status)
	}
	if e.Err != nil && (e.Status == 0 || !errors.Is(e.Err, ErrStatus)) {
		s += ": " + e.Err.Error()
	}
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// FailureReason returns the reason label.
func (e *Error) FailureReason() string { return e.Reason }

// NotSent reports that the request surely never reached the provider: no answer and the
// request was not completely written (read by sender.NotSent).
func (e *Error) NotSent() bool { return e.Status == 0 && !e.Written }

// RetryDelay returns the delay the provider asked for.
func (e *Error) RetryDelay() time.Duration { return e.RetryAfter }
