package sender

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// limiter is a token bucket kept as a GCRA: tat is the theoretical arrival time of the next
// token, burst tokens may be taken ahead of it. reserve either books a slot not further than
// maxWait ahead (the caller sleeps until it), or, when the bucket is further behind, returns
// a later time to defer the message to without booking; successive deferrals are spread one
// interval apart so a deferred crowd comes back at the configured rate instead of all at once.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	burst    int
	tat      time.Time
	horizon  time.Time // the next deferral slot
}

func newLimiter(perSecond float64, burst int) *limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &limiter{interval: time.Duration(float64(time.Second) / perSecond), burst: burst}
}

// reserve returns the time the message may be sent and true (the slot is booked), or the time
// to defer it to and false.
func (l *limiter) reserve(now time.Time, maxWait time.Duration) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tat := l.tat
	if tat.Before(now) {
		tat = now
	}
	at := tat.Add(-time.Duration(l.burst-1) * l.interval)
	if at.Before(now) {
		at = now
	}
	if at.Sub(now) <= maxWait {
		l.tat = tat.Add(l.interval)
		return at, true
	}
	h := l.horizon
	if h.Before(at) {
		h = at
	}
	l.horizon = h.Add(l.interval)
	return h, false
}

// dailyCap counts sends per calendar day in loc. Counts live in memory: a restart starts the
// day's count again from zero (see the package report; persisted counters need the state store).
type dailyCap struct {
	mu    sync.Mutex
	limit int
	loc   *time.Location
	day   string
	n     int
}

// take counts one send at now, or returns the start of the next day when the cap is reached.
func (d *dailyCap) take(now time.Time) (time.Time, bool) {
	if d == nil {
		return time.Time{}, true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	local := now.In(d.loc)
	day := local.Format(time.DateOnly)
	if day != d.day {
		d.day, d.n = day, 0
	}
	if d.n >= d.limit {
		y, m, dd := local.Date()
		return time.Date(y, m, dd+1, 0, 0, 0, 0, d.loc), false
	}
	d.n++
	return time.Time{}, true
}

// undo gives back a slot taken by take when the message was not sent after all.
func (d *dailyCap) undo() {
	if d == nil {
		return
	}
	d.mu.Lock()
	if d.n > 0 {
		d.n--
	}
	d.mu.Unlock()
}

// recipientCap is a sliding-window cap per recipient, in memory.
type recipientCap struct {
	mu   sync.Mutex
	max  int
	per  time.Duration
	drop bool
	sent map[string][]time.Time
	ops  int
}

func newRecipientCap(p *PerRecipient) *recipientCap {
	if p == nil || p.Max <= 0 {
		return nil
	}
	return &recipientCap{max: p.Max, per: p.Per, drop: p.Excess == ExcessDrop, sent: map[string][]time.Time{}}
}

// take counts one message to `to` at now, or returns when the window has room again.
func (r *recipientCap) take(to string, now time.Time) (time.Time, bool) {
	if r == nil {
		return time.Time{}, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops++
	if r.ops%4096 == 0 {
		r.prune(now)
	}
	ts := r.sent[to]
	cut := 0
	for cut < len(ts) && !ts[cut].After(now.Add(-r.per)) {
		cut++
	}
	ts = ts[cut:]
	if len(ts) >= r.max {
		r.sent[to] = ts
		return ts[0].Add(r.per), false
	}
	r.sent[to] = append(ts, now)
	return time.Time{}, true
}

// undo forgets the last send counted for `to`.
func (r *recipientCap) undo(to string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if ts := r.sent[to]; len(ts) > 0 {
		r.sent[to] = ts[:len(ts)-1]
	}
	r.mu.Unlock()
}

func (r *recipientCap) prune(now time.Time) {
	for to, ts := range r.sent {
		if len(ts) == 0 || !ts[len(ts)-1].After(now.Add(-r.per)) {
			delete(r.sent, to)
		}
	}
}

// quietWindow is a daily wall-clock window [start, end) in loc; end <= start crosses midnight.
type quietWindow struct {
	startMin, endMin int // minutes after local midnight
	loc              *time.Location
}

func newQuietWindow(q *QuietHours, def *time.Location) (*quietWindow, error) {
	if q == nil {
		return nil, nil
	}
	s, err := parseClock(q.Start)
	if err != nil {
		return nil, fmt.Errorf("quiet_hours start: %w", err)
	}
	e, err := parseClock(q.End)
	if err != nil {
		return nil, fmt.Errorf("quiet_hours end: %w", err)
	}
	if s == e {
		return nil, fmt.Errorf("quiet_hours: start equals end %q: %w", q.Start, ErrConfig)
	}
	loc := def
	if q.Timezone != "" {
		if loc, err = time.LoadLocation(q.Timezone); err != nil {
			return nil, fmt.Errorf("quiet_hours timezone: %w", err)
		}
	}
	return &quietWindow{startMin: s, endMin: e, loc: loc}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("time of day %q, want HH:MM: %w", s, ErrConfig)
	}
	return hh*60 + mm, nil
}

// end returns the end of the quiet window containing t, and whether t is inside one. Window
// bounds are built with time.Date in loc for each candidate day, so they stay at the same wall
// time across DST changes (a 21:00–08:00 window lasts 10 h, 11 h or 9 h of real time).
func (q *quietWindow) end(t time.Time) (time.Time, bool) {
	if q == nil {
		return time.Time{}, false
	}
	local := t.In(q.loc)
	y, m, d := local.Date()
	crosses := 0
	if q.endMin <= q.startMin {
		crosses = 1
	}
	for _, off := range []int{-1, 0} {
		start := time.Date(y, m, d+off, 0, q.startMin, 0, 0, q.loc)
		end := time.Date(y, m, d+off+crosses, 0, q.endMin, 0, 0, q.loc)
		if !t.Before(start) && t.Before(end) {
			return end, true
		}
	}
	return time.Time{}, false
}

// backoff returns the delay before retry number attempt (1 = the first retry):
// initial·2^(attempt-1) capped at max, with ±20% jitter.
func backoff(b Backoff, attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	j := time.Duration(float64(d) * 0.4 * (rand.Float64() - 0.5))
	return d + j
}
