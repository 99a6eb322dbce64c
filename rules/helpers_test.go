package rules

import (
	"errors"
	"testing"
	"time"
)

func TestE164(t *testing.T) {
	tests := []struct{ in, region, want string }{
		{"+49 170 1234567", "", "+491701234567"},
		{"0170 1234567", "DE", "+491701234567"},
		{"0170/123 45-67", "de", "+491701234567"},
		{"+49 (0)170 1234567", "", "+491701234567"},
		{"0049 170 1234567", "FR", "+491701234567"},
		{"+49 0170 1234567", "", "+491701234567"},
		{"(212) 555-1234", "US", "+12125551234"},
		{"1 212 555 1234", "US", "+12125551234"},
		{"011 44 20 7946 0958", "US", "+442079460958"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"07911 123456", "GB", "+447911123456"},
		{"06 12 34 56 78", "FR", "+33612345678"},
		{"8 (912) 345-67-89", "RU", "+79123456789"},
		{"06 30 123 4567", "HU", "+36301234567"},
		{"06 1234 5678", "IT", "+390612345678"}, // Italy keeps its leading 0
		{"612 345 678", "ES", "+34612345678"},
		{"+86 139 1234 5678", "", "+8613912345678"},
		{"+999 1234 5678", "", "+99912345678"}, // unknown calling code: length checked only
	}
	for _, tt := range tests {
		got, err := E164(tt.in, tt.region)
		if err != nil || got != tt.want {
			t.Errorf("E164(%q, %q) = %q, %v; want %q", tt.in, tt.region, got, err, tt.want)
		}
	}
	bad := []struct{ in, region, err string }{
		{"0170 1234567", "", "national number and no region to read it in: invalid phone number"},
		{"call me", "DE", `unexpected character 'c': invalid phone number`},
		{"0170 12", "DE", "5 digits, want 6–13 for DE: invalid phone number"},
		{"+49 170", "", "5 digits, want 8–15 with the calling code: invalid phone number"},
		{"+1 212 555 12345", "", "11 digits after +1, want 10–10: invalid phone number"},
		{"+0123456789", "", "calling code cannot start with 0: invalid phone number"},
		{"+1234", "", "4 digits, want 8–15 with the calling code: invalid phone number"},
		{"0170 1234567", "ZZ", `unknown region "ZZ": invalid phone number`},
	}
	for _, tt := range bad {
		got, err := E164(tt.in, tt.region)
		if err == nil || err.Error() != tt.err || !errors.Is(err, ErrPhone) {
			t.Errorf("E164(%q, %q) = %q, %v; want error %q", tt.in, tt.region, got, err, tt.err)
		}
	}
}

func TestAtLocalIsDSTSafe(t *testing.T) {
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		t    time.Time
		days int
		hhmm string
		want time.Time
	}{
		{date(2026, 3, 31), -3, "09:00", time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)},   // CET
		{date(2026, 4, 1), -3, "09:00", time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC)},    // CEST, the switch day
		{date(2026, 3, 29), 0, "02:30", time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)},   // in the gap: moved on by an hour (03:30 CEST)
		{date(2026, 10, 25), 0, "02:30", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)}, // repeated hour: the first (CEST)
		// A DATETIME late in the UTC day is already the next day in Berlin.
		{time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC), 1, "09:00", time.Date(2026, 6, 3, 7, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := atLocal(tt.t, tt.days, tt.hhmm, berlin)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("atLocal(%s, %d, %s) = %s, %v; want %s", tt.t, tt.days, tt.hhmm, got.UTC(), err, tt.want)
		}
	}
	// days counts calendar days, not 24-hour periods, across the switch.
	if d := days(time.Date(2026, 3, 28, 12, 0, 0, 0, berlin), time.Date(2026, 3, 30, 1, 0, 0, 0, berlin), berlin); d != 2 {
		t.Errorf("days across DST = %d, want 2", d)
	}
	if got := addDays(time.Date(2026, 3, 28, 9, 0, 0, 0, berlin), 1, berlin); !got.Equal(time.Date(2026, 3, 29, 9, 0, 0, 0, berlin)) {
		t.Errorf("addDays across DST = %s, want 09:00 local", got)
	}
}

func TestQuietHours(t *testing.T) {
	night := &QuietHours{From: 21 * 60, To: 8 * 60, Location: berlin}
	day := &QuietHours{From: 12 * 60, To: 14 * 60, Location: berlin}
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, berlin) }
	tests := []struct {
		q        *QuietHours
		t, want  time.Time
		contains bool
	}{
		{night, at(10, 20, 59), at(10, 20, 59), false},
		{night, at(10, 21, 0), at(11, 8, 0), true},
		{night, at(11, 3, 0), at(11, 8, 0), true},
		{night, at(11, 8, 0), at(11, 8, 0), false},
		{day, at(10, 12, 30), at(10, 14, 0), true},
		{day, at(10, 14, 0), at(10, 14, 0), false},
		{nil, at(10, 3, 0), at(10, 3, 0), false},
	}
	for _, tt := range tests {
		if got := tt.q.Next(tt.t); !got.Equal(tt.want) {
			t.Errorf("Next(%s) = %s, want %s", tt.t, got, tt.want)
		}
		if tt.q != nil && tt.q.Contains(tt.t) != tt.contains {
			t.Errorf("Contains(%s) = %v", tt.t, !tt.contains)
		}
	}
	m := Misfire{SkipOlderThan: time.Hour}
	due := at(10, 9, 0)
	if m.Skip(due, due.Add(time.Hour)) || !m.Skip(due, due.Add(time.Hour+time.Second)) || (Misfire{}).Skip(due, due.Add(1000*time.Hour)) {
		t.Error("Misfire.Skip")
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{int64(-7), "-7"}, {uint64(18446744073709551615), "18446744073709551615"}, {2.5, "2.5"},
		{time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), "2026-03-31"},
		{time.Date(2026, 3, 31, 9, 0, 0, 0, berlin), "2026-03-31T07:00:00Z"},
		{[]byte("x"), "x"}, {nil, ""}, {true, "true"}, {int32(5), "5"},
	}
	for _, tt := range tests {
		if got := Format(tt.v); got != tt.want {
			t.Errorf("Format(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
