package sender

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// The policy defaults, in one place.
const (
	DefaultChannelConcurrency = 16
	DefaultTimeout            = 30 * time.Second
	DefaultMaxAttempts        = 10
	DefaultMaxAge             = 24 * time.Hour
	DefaultBackoffInitial     = 5 * time.Second
	DefaultBackoffMax         = 10 * time.Minute
	DefaultPerRecipientWindow = 24 * time.Hour
)

// Runtime is one configured channel with its policy state: the transport plus its concurrency
// slots, rate limiter, daily and per-recipient counters, quiet hours and pause (after a 429).
// Build it with NewRuntime (or Build for a whole config section); a Runtime is used by one
// Sender at a time.
type Runtime struct {
	name    string
	channel Channel
	cfg     ChannelConfig
	loc     *time.Location

	slots      chan struct{}
	limiter    *limiter
	daily      *dailyCap
	recipients *recipientCap
	quiet      *quietWindow
	pause      atomic.Int64 // unix nanos until which nothing is sent (a provider's Retry-After)

	timeoutCause error // the cause of an attempt's context when cfg.Timeout expires
}

// NewRuntime applies the policy defaults to cfg, validates them and pairs them with ch.
func NewRuntime(name string, cfg ChannelConfig, ch Channel) (*Runtime, error) {
	if ch == nil {
		return nil, fmt.Errorf("channel %q: nil channel: %w", name, ErrConfig)
	}
	cfg = withDefaults(cfg)
	if err := validatePolicy(cfg); err != nil {
		return nil, fmt.Errorf("channel %q: %w", name, err)
	}
	loc := time.UTC
	if cfg.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(cfg.Timezone); err != nil {
			return nil, fmt.Errorf("channel %q: timezone: %w", name, err)
		}
	}
	q, err := newQuietWindow(cfg.QuietHours, loc)
	if err != nil {
		return nil, fmt.Errorf("channel %q: %w", name, err)
	}
	rt := &Runtime{
		name: name, channel: ch, cfg: cfg, loc: loc,
		slots:      make(chan struct{}, cfg.Concurrency),
		limiter:    newLimiter(cfg.RatePerSecond, cfg.Burst),
		recipients: newRecipientCap(cfg.PerRecipient),
		quiet:      q,
	}
	rt.timeoutCause = fmt.Errorf("channel %q: no answer within %s: %w (%w)", name, cfg.Timeout, ErrSendTimeout,
		context.DeadlineExceeded)
	if cfg.RatePerDay > 0 {
		rt.daily = &dailyCap{limit: cfg.RatePerDay, loc: loc}
	}
	return rt, nil
}

// Name returns the channel's name.
func (r *Runtime) Name() string { return r.name }

// Channel returns the transport.
func (r *Runtime) Channel() Channel { return r.channel }

// Config returns the configuration with defaults applied.
func (r *Runtime) Config() ChannelConfig { return r.cfg }

// Idempotent reports whether the channel may resend safely (for state.Store.Settle).
func (r *Runtime) Idempotent() bool { return r.cfg.Idempotent }

// PausedUntil returns the time until which the channel is paused after a provider asked to
// wait (zero if not paused).
func (r *Runtime) PausedUntil() time.Time {
	n := r.pause.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// pauseUntil extends the pause to t (never shortens it).
func (r *Runtime) pauseUntil(t time.Time) {
	n := t.UnixNano()
	for {
		cur := r.pause.Load()
		if cur >= n || r.pause.CompareAndSwap(cur, n) {
			return
		}
	}
}

// IdempotentFunc reports, for state.Store.Settle at start, whether a channel may resend a
// message found `sending` after a crash; an unknown channel may not.
func IdempotentFunc(rts map[string]*Runtime) func(channel string) bool {
	return func(channel string) bool {
		rt := rts[channel]
		return rt != nil && rt.Idempotent()
	}
}

func withDefaults(c ChannelConfig) ChannelConfig {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultChannelConcurrency
	}
	if c.Burst == 0 && c.RatePerSecond > 0 {
		c.Burst = max(1, int(c.RatePerSecond+0.999))
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Backoff.Initial == 0 {
		c.Backoff.Initial = DefaultBackoffInitial
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = max(DefaultBackoffMax, c.Backoff.Initial)
	}
	if c.PerRecipient != nil {
		p := *c.PerRecipient
		if p.Per == 0 {
			p.Per = DefaultPerRecipientWindow
		}
		if p.Excess == "" {
			p.Excess = ExcessHold
		}
		c.PerRecipient = &p
	}
	return c
}

func validatePolicy(c ChannelConfig) error {
	switch {
	case c.Concurrency < 0:
		return fmt.Errorf("concurrency %d < 0: %w", c.Concurrency, ErrConfig)
	case c.RatePerSecond < 0, c.RatePerDay < 0, c.Burst < 0:
		return fmt.Errorf("negative rate or burst: %w", ErrConfig)
	case c.Timeout < 0, c.MaxAge < 0, c.Backoff.Initial < 0, c.Backoff.Max < c.Backoff.Initial:
		return fmt.Errorf("negative duration or backoff.max < backoff.initial: %w", ErrConfig)
	case c.MaxAttempts < 0:
		return fmt.Errorf("max_attempts %d < 0: %w", c.MaxAttempts, ErrConfig)
	}
	if p := c.PerRecipient; p != nil {
		if p.Max < 0 || p.Per < 0 || (p.Excess != ExcessHold && p.Excess != ExcessDrop) {
			return fmt.Errorf("per_recipient {max: %d, per: %s, excess: %q}, want max >= 0 and excess hold|drop: %w",
				p.Max, p.Per, p.Excess, ErrConfig)
		}
	}
	return nil
}
