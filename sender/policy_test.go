package sender

import (
	"slices"
	"testing"
	"time"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin: %v (tzdata missing?)", err)
	}
	return loc
}

func TestQuietHoursWindowAcrossDST(t *testing.T) {
	loc := berlin(t)
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	night, _ := newQuietWindow(&QuietHours{Start: "21:00", End: "08:00"}, loc)
	lunch, _ := newQuietWindow(&QuietHours{Start: "12:00", End: "13:30", Timezone: "Europe/Berlin"}, time.UTC)
	early, _ := newQuietWindow(&QuietHours{Start: "01:00", End: "02:30"}, loc) // ends inside the spring gap
	cases := []struct {
		name    string
		q       *quietWindow
		t       time.Time
		quiet   bool
		end     time.Time
		realDur time.Duration // end - t in real time, to show DST is honoured
	}{
		{"before window", night, at("2026-03-28 20:59"), false, time.Time{}, 0},
		{"window start is quiet", night, at("2026-03-28 21:00"), true, at("2026-03-29 08:00"), 10 * time.Hour},
		// 22:00 CET → 08:00 CEST across the spring-forward night: 9 real hours, not 10.
		{"spring forward", night, at("2026-03-28 22:00"), true, at("2026-03-29 08:00"), 9 * time.Hour},
		{"after midnight, spring day", night, at("2026-03-29 01:30"), true, at("2026-03-29 08:00"), 5*time.Hour + 30*time.Minute},
		{"at window end", night, at("2026-03-29 08:00"), false, time.Time{}, 0},
		// 23:00 CEST → 08:00 CET across the fall-back night: 10 real hours, not 9.
		{"fall back", night, at("2026-10-24 23:00"), true, at("2026-10-25 08:00"), 10 * time.Hour},
		{"in the repeated hour", night, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC) /* 02:30 CET, second pass */, true,
			at("2026-10-25 08:00"), 6*time.Hour + 30*time.Minute},
		{"day window in rule zone", lunch, time.Date(2026, 7, 1, 10, 15, 0, 0, time.UTC) /* 12:15 CEST */, true,
			time.Date(2026, 7, 1, 11, 30, 0, 0, time.UTC), 75 * time.Minute},
		{"day window outside", lunch, time.Date(2026, 7, 1, 11, 30, 0, 0, time.UTC), false, time.Time{}, 0},
		// 02:30 does not exist on 2026-03-29; the window ends at 03:30 CEST (01:30 UTC), after the gap.
		{"end in spring gap", early, at("2026-03-29 01:45"), true, time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC), 45 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			end, quiet := tc.q.end(tc.t)
			if quiet != tc.quiet || !end.Equal(tc.end) {
				t.Fatalf("end(%s) = %s, %v; want %s, %v", tc.t, end, quiet, tc.end, tc.quiet)
			}
			if quiet && end.Sub(tc.t) != tc.realDur {
				t.Errorf("deferred by %s, want %s", end.Sub(tc.t), tc.realDur)
			}
			if quiet {
				if _, again := tc.q.end(end); again {
					t.Errorf("window end %s is itself quiet", end)
				}
			}
		})
	}
}

func TestQuietHoursConfigErrors(t *testing.T) {
	for _, q := range []QuietHours{{Start: "21:00", End: "21:00"}, {Start: "25:00", End: "08:00"}, {Start: "9", End: "10:00"},
		{Start: "21:00", End: "08:00", Timezone: "Mars/Olympus"}} {
		if _, err := newQuietWindow(&q, time.UTC); err == nil {
			t.Errorf("%+v accepted", q)
		}
	}
}

func TestLimiterBooksWithinMaxWaitAndSpreadsTheRest(t *testing.T) {
	l := newLimiter(10, 2) // one token per 100ms, burst 2
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var booked, deferred []time.Duration
	for range 6 {
		at, ok := l.reserve(t0, 250*time.Millisecond)
		if ok {
			booked = append(booked, at.Sub(t0))
		} else {
			deferred = append(deferred, at.Sub(t0))
		}
	}
	// Burst 2 at once, then one per interval while within maxWait (250ms) ...
	if want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond}; !slices.Equal(booked, want) {
		t.Errorf("booked %v, want %v", booked, want)
	}
	// ... and the rest deferred one interval apart, without booking.
	if want := []time.Duration{300 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(deferred, want) {
		t.Errorf("deferred %v, want %v", deferred, want)
	}
	// A second later the bucket is full again.
	if at, ok := l.reserve(t0.Add(2*time.Second), 0); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("after idle: %v %v", at, ok)
	}
}

func TestDailyCapResetsAtLocalMidnight(t *testing.T) {
	loc := berlin(t)
	d := &dailyCap{limit: 2, loc: loc}
	t0 := time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC) // 23:00 CET
	for i := range 2 {
		if _, ok := d.take(t0); !ok {
			t.Fatalf("take %d refused", i)
		}
	}
	next, ok := d.take(t0)
	if ok || !next.Equal(time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC)) { // 00:00 CET on the 29th
		t.Fatalf("third take: %v %v", next, ok)
	}
	d.undo()
	if _, ok := d.take(t0); !ok {
		t.Fatal("undo did not give the slot back")
	}
	if _, ok := d.take(next); !ok {
		t.Fatal("new day still capped")
	}
}

func TestRecipientCapSlidingWindow(t *testing.T) {
	r := newRecipientCap(&PerRecipient{Max: 2, Per: time.Hour, Excess: ExcessHold})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.take("+491", t0)
	r.take("+491", t0.Add(10*time.Minute))
	if _, ok := r.take("+492", t0.Add(10*time.Minute)); !ok {
		t.Fatal("other recipient capped")
	}
	at, ok := r.take("+491", t0.Add(20*time.Minute))
	if ok || !at.Equal(t0.Add(time.Hour)) {
		t.Fatalf("third: %v %v, want held until %v", at, ok, t0.Add(time.Hour))
	}
	if _, ok := r.take("+491", t0.Add(time.Hour+time.Second)); !ok {
		t.Fatal("window did not slide")
	}
}

func TestBackoffDoublesWithJitterUpToMax(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 8 * time.Second}
	for attempt, base := range map[int]time.Duration{1: 1 * time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 9: 8 * time.Second} {
		for range 50 {
			d := backoff(b, attempt)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("backoff(attempt %d) = %s, want %s ±20%%", attempt, d, base)
			}
		}
	}
}
