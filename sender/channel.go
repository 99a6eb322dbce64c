package sender

import (
	"context"
	"errors"
	"net"
	"time"

	"notifier/state"
)

// Channel delivers one message to one provider. It is the only thing a transport implements.
//
// Send makes at most one delivery attempt and returns when it is over; it must honour ctx (the
// sender sets the per-attempt timeout on it with context.WithTimeoutCause). The result is
// classified by the sender as follows:
//
//   - err == nil: the provider accepted the message. The channel may set m.ProviderID.
//   - err != nil, retry == false: final; the message becomes dead with the error text.
//   - err != nil, retry == true: transient; the message is retried with backoff, unless the
//     channel is not idempotent and the request may have reached the provider (a timeout or a
//     connection broken after it was written): then it becomes uncertain and is never resent
//     by itself (DESIGN.md invariant 3). A refused dial (*net.OpError with Op "dial") is known
//     not to have been sent and is always retried.
//
// An error may carry its Reason and a provider-requested delay as an *ErrorWithReason. Channel
// packages that do not import sender may instead return an error implementing
// FailureReason() string and/or RetryDelay() time.Duration (see ReasonOf and RetryAfterOf).
// Send is called concurrently, up to the channel's concurrency; it must not keep m.
type Channel interface {
	Send(ctx context.Context, m *state.Message) (retry bool, err error)
}

// ChannelFunc adapts a function to a Channel.
type ChannelFunc func(ctx context.Context, m *state.Message) (retry bool, err error)

// Send calls f(ctx, m).
func (f ChannelFunc) Send(ctx context.Context, m *state.Message) (bool, error) { return f(ctx, m) }

// Reason is the machine-readable cause of a failed, deferred or cancelled delivery. It is used
// as the `reason` metric label and stored as the message's Reason, so its values form a small
// fixed set: never build one from provider text.
type Reason string

// The reasons. Append only: they are persisted in message records and dashboards.
const (
	ReasonNone           Reason = ""
	ReasonProvider4xx    Reason = "provider_4xx"    // the provider refused the request (final)
	ReasonProvider5xx    Reason = "provider_5xx"    // the provider failed (retried)
	ReasonRateLimited    Reason = "rate_limited"    // 429 or a provider throttle status (retried)
	ReasonTimeout        Reason = "timeout"         // no answer within the channel's timeout
	ReasonConnection     Reason = "connection"      // dial, TLS or broken connection
	ReasonTemplate       Reason = "template"        // the request could not be built from the message
	ReasonRejected       Reason = "rejected"        // a 2xx answer whose body says the message failed
	ReasonMaxAttempts    Reason = "max_attempts"    // retries exhausted
	ReasonMaxAge         Reason = "max_age"         // too old to be worth sending
	ReasonUncertain      Reason = "uncertain"       // may have been sent; not resent by itself
	ReasonUnknownChannel Reason = "unknown_channel" // the message names no configured channel
	ReasonQuietHours     Reason = "quiet_hours"     // deferred to the end of the quiet window
	ReasonRecipientCap   Reason = "recipient_cap"   // per-recipient cap reached (held or dropped)
	ReasonDailyCap       Reason = "daily_cap"       // the channel's rate_per_day is used up
	ReasonShutdown       Reason = "shutdown"        // the sender stopped while the call ran
	ReasonOther          Reason = "other"           // anything not classified above
)

var knownReasons = map[Reason]bool{
	ReasonProvider4xx: true, ReasonProvider5xx: true, ReasonRateLimited: true, ReasonTimeout: true,
	ReasonConnection: true, ReasonTemplate: true, ReasonRejected: true, ReasonMaxAttempts: true,
	ReasonMaxAge: true, ReasonUncertain: true, ReasonUnknownChannel: true, ReasonQuietHours: true,
	ReasonRecipientCap: true, ReasonDailyCap: true, ReasonShutdown: true, ReasonOther: true,
}

// String returns the label value.
func (r Reason) String() string { return string(r) }

// ParseReason maps a string to a known Reason; anything else is ReasonOther, which keeps the
// metric label set bounded whatever a channel returns.
func ParseReason(s string) Reason {
	if knownReasons[Reason(s)] {
		return Reason(s)
	}
	return ReasonOther
}

// ReasonFromStatus classifies an HTTP status code: 429 rate_limited, other 4xx provider_4xx,
// 5xx provider_5xx, anything else other.
func ReasonFromStatus(code int) Reason {
	switch {
	case code == 429:
		return ReasonRateLimited
	case code/100 == 4:
		return ReasonProvider4xx
	case code/100 == 5:
		return ReasonProvider5xx
	}
	return ReasonOther
}

// ErrorWithReason is a delivery error with its classification, in the manner of Alertmanager's
// notify.ErrorWithReason. RetryAfter, when positive, is the provider's requested delay (HTTP
// Retry-After); the sender waits at least that long and pauses the whole channel until then.
type ErrorWithReason struct {
	Reason     Reason
	RetryAfter time.Duration
	Err        error
}

// NewErrorWithReason wraps err with its reason.
func NewErrorWithReason(reason Reason, err error) *ErrorWithReason {
	return &ErrorWithReason{Reason: reason, Err: err}
}

// Error returns the wrapped error's text.
func (e *ErrorWithReason) Error() string {
	if e.Err == nil {
		return e.Reason.String()
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *ErrorWithReason) Unwrap() error { return e.Err }

// FailureReason returns the reason as a string (the duck-typed form ReasonOf also accepts).
func (e *ErrorWithReason) FailureReason() string { return string(e.Reason) }

// RetryDelay returns RetryAfter (the duck-typed form RetryAfterOf also accepts).
func (e *ErrorWithReason) RetryDelay() time.Duration { return e.RetryAfter }

// ReasonOf classifies an error returned by a Channel: its own reason if it carries one
// (*ErrorWithReason or a FailureReason() string method anywhere in its chain), else timeout for
// deadline errors, connection for network errors, other for the rest; none for nil.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonNone
	}
	var fr interface{ FailureReason() string }
	if errors.As(err, &fr) {
		if r := ParseReason(fr.FailureReason()); r != ReasonOther || fr.FailureReason() == string(ReasonOther) {
			return r
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return ReasonTimeout
		}
		return ReasonConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return ReasonConnection
	}
	return ReasonOther
}

// RetryAfterOf returns the provider-requested delay carried by err, or 0.
func RetryAfterOf(err error) time.Duration {
	var rd interface{ RetryDelay() time.Duration }
	if errors.As(err, &rd) {
		return rd.RetryDelay()
	}
	return 0
}

// NotSent reports whether err proves the request never left this process: a refused or failed
// dial. Such a failure is retried even on a channel that is not idempotent.
func NotSent(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var ns interface{ NotSent() bool }
	return errors.As(err, &ns) && ns.NotSent()
}

// answered reports whether the provider answered (so it surely did not take the message when
// the reason says so): a rate limit or a 5xx/4xx status. Such failures are safe to retry even
// on a channel that is not idempotent.
func answered(r Reason) bool {
	switch r {
	case ReasonRateLimited, ReasonProvider5xx, ReasonProvider4xx, ReasonTemplate, ReasonRejected:
		return true
	}
	return false
}
