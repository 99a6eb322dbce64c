package state

import (
	"fmt"
	"time"
)

// Status is where a message is in its life. The transitions are:
//
//	scheduled ──(due)──▶ ready ──claim──▶ sending ──▶ sent
//	                       ▲                 │ ├──▶ retry ──(due)──▶ ready
//	                       │                 │ ├──▶ dead
//	                       └──(idempotent)───┘ └──▶ uncertain   (crash or timeout on a
//	                                                             non-idempotent channel)
//	scheduled/ready/retry/held ──▶ cancelled;  scheduled ──▶ skipped (misfire policy)
//	held: created while its rule was paused by the blast-radius guard; released or dropped by hand.
type Status uint8

// The message states. Their numeric values are persisted: append, never reorder.
const (
	StatusScheduled Status = iota + 1
	StatusReady
	StatusSending
	StatusSent
	StatusRetry
	StatusDead
	StatusCancelled
	StatusUncertain
	StatusHeld
	StatusSkipped
)

var statusNames = [...]string{
	StatusScheduled: "scheduled",
	StatusReady:     "ready",
	StatusSending:   "sending",
	StatusSent:      "sent",
	StatusRetry:     "retry",
	StatusDead:      "dead",
	StatusCancelled: "cancelled",
	StatusUncertain: "uncertain",
	StatusHeld:      "held",
	StatusSkipped:   "skipped",
}

// String returns the lower-case name shown by the CLI and used as a metric label.
func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus is the inverse of Status.String.
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if n != "" && n == name {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("unknown message state %q", name)
}

// Statuses lists every state in order.
func Statuses() []Status {
	out := make([]Status, 0, len(statusNames)-1)
	for i := 1; i < len(statusNames); i++ {
		out = append(out, Status(i))
	}
	return out
}

// Terminal reports whether no further transition happens without an operator.
func (s Status) Terminal() bool {
	switch s {
	case StatusSent, StatusDead, StatusCancelled, StatusSkipped:
		return true
	}
	return false
}

// Message is the persisted record of one message (keys m/<Key> and b/<Key>, see codec.go). Its
// text is rendered when it is created, so a later rule or template change never alters what a
// pending message says. The store keeps times with millisecond precision and returns them in
// UTC.
type Message struct {
	Key     string // deterministic: a function of the rule and the row (invariant 2)
	Rule    string
	Channel string
	To      string // recipient: phone, address or a channel-specific target; masked in logs

	Subject string // e-mail subject; empty for SMS and webhooks
	Text    string // SMS text, e-mail text part, or webhook "text"
	HTML    string // e-mail HTML part, optional
	Data    []byte // JSON of the template data (row images etc.), kept for inspection

	Status     Status
	Attempts   int
	CreatedAt  time.Time
	DueAt      time.Time // when it should be sent; zero = now. Also the next retry time.
	UpdatedAt  time.Time
	LastError  string // the last failure, e.g. the provider's response (truncated)
	Reason     string // a short machine-readable reason for dead/uncertain/skipped/cancelled
	ProviderID string // the provider's message id, when the channel extracts one
	Origin     string // what created it: a binlog position, "snapshot", "sweep:<name>", "digest"
	Slot       string // "<rule>/<entity>" for a reminder; empty otherwise
	Recheck    string // for follow-ups: a condition re-checked at fire time (rule-owned)
	History    []Attempt
}

// Attempt is one delivery attempt or state change kept in Message.History (the last few).
type Attempt struct {
	At     time.Time
	Status Status // the status it led to
	Error  string
}

// Checkpoint is the binlog position after the last transaction whose effects are stored. It is
// opaque to this package: the cdc package writes and reads Position.
type Checkpoint struct {
	Flavor     string    // "mariadb" or "mysql"
	Position   string    // cdc.Position.String()
	CommitTime time.Time // commit time of that transaction, for lag
}
