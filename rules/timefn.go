package rules

import (
	"fmt"
	"time"
)

// Calendar helpers for rules. A time's calendar date is taken in the rule's timezone, with one
// exception: a DATE column, which cdc delivers as midnight UTC, keeps its own calendar date
// (converting 2026-03-10 00:00 UTC to America/New_York would otherwise make it March 9th).
// isDate is that test.

// isDate reports whether t looks like a DATE value: midnight, UTC.
func isDate(t time.Time) bool {
	if t.Location() != time.UTC {
		return false
	}
	h, m, s := t.Clock()
	return h == 0 && m == 0 && s == 0 && t.Nanosecond() == 0
}

// localDate is the calendar date of t for a rule in loc.
func localDate(t time.Time, loc *time.Location) (int, time.Month, int) {
	if isDate(t) {
		return t.Date()
	}
	return t.In(loc).Date()
}

// days returns the number of calendar days from t1's date to t2's date (negative if t2 is
// earlier), in loc; DST changes do not make a day shorter or longer.
func days(t1, t2 time.Time, loc *time.Location) int {
	y1, m1, d1 := localDate(t1, loc)
	y2, m2, d2 := localDate(t2, loc)
	a := time.Date(y1, m1, d1, 0, 0, 0, 0, time.UTC)
	b := time.Date(y2, m2, d2, 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a) / (24 * time.Hour))
}

// addDays adds n calendar days to t keeping its wall-clock time in loc (a DATE stays a DATE).
func addDays(t time.Time, n int, loc *time.Location) time.Time {
	if isDate(t) {
		return t.AddDate(0, 0, n)
	}
	return t.In(loc).AddDate(0, 0, n)
}

// atLocal returns the instant at wall-clock hhmm ("09:00") in loc on the calendar date of t plus
// n days. On a DST gap the time is moved forward by the gap (time.Date's normalisation); on a
// repeated hour the first occurrence is used.
func atLocal(t time.Time, n int, hhmm string, loc *time.Location) (time.Time, error) {
	mins, err := parseClock(hhmm)
	if err != nil {
		return time.Time{}, err
	}
	y, m, d := localDate(t, loc)
	at := time.Date(y, m, d+n, mins/60, mins%60, 0, 0, loc)
	// time.Date does not say which of a repeated hour's two instants it returns: take the first.
	if earlier := at.Add(-time.Hour); earlier.Hour() == at.Hour() && earlier.Minute() == at.Minute() {
		return earlier, nil
	}
	return at, nil
}

// parseClock reads "HH:MM" (24-hour) into minutes after midnight.
func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("time of day %q: want HH:MM (24-hour)", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Misfire says what to do with a scheduled message whose fire time has passed by the time it
// can be sent (the service was down, the binlog was behind). The zero value fires it.
type Misfire struct {
	// SkipOlderThan, if positive, skips (status skipped) a message more than this late.
	SkipOlderThan time.Duration
}

// Skip reports whether a message due at due should be skipped when it can first go out at now.
func (m Misfire) Skip(due, now time.Time) bool {
	return m.SkipOlderThan > 0 && now.Sub(due) > m.SkipOlderThan
}

// QuietHours is a daily wall-clock window in which a rule's messages are not sent; From may be
// after To (a window over midnight, e.g. 21:00–08:00).
type QuietHours struct {
	From, To int // minutes after midnight
	Location *time.Location
}

// Next returns t if t is outside the window, else the end of the window (the first instant
// messages may go out again).
func (q *QuietHours) Next(t time.Time) time.Time {
	if q == nil || q.From == q.To {
		return t
	}
	lt := t.In(q.Location)
	mins := lt.Hour()*60 + lt.Minute()
	y, m, d := lt.Date()
	end := func(dayOffset int) time.Time {
		return time.Date(y, m, d+dayOffset, q.To/60, q.To%60, 0, 0, q.Location)
	}
	if q.From < q.To { // same-day window
		if mins >= q.From && mins < q.To {
			return end(0)
		}
		return t
	}
	switch { // window over midnight
	case mins >= q.From:
		return end(1)
	case mins < q.To:
		return end(0)
	}
	return t
}

// Contains reports whether t falls in the window.
func (q *QuietHours) Contains(t time.Time) bool { return !q.Next(t).Equal(t) }
