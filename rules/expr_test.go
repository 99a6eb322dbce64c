package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/shopspring/decimal"

	"notifier/cdc"
)

var berlin = mustLoc("Europe/Berlin")

func mustLoc(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// evalExpr compiles src as a rule in Europe/Berlin with region DE and evaluates it on old/new.
func evalExpr(src string, old, new cdc.Row) (any, error) {
	vars := map[string]any{"limit": 1000}
	p, err := compileExpr(src, vars, berlin, "DE", false)
	if err != nil {
		return nil, err
	}
	env := compileEnv(vars)
	env["new"], env["old"], env["commit_time"], env["op"] = map[string]any(new), map[string]any(old), commit, "update"
	var m vm.VM
	v, err := m.Run(p, env)
	if err != nil {
		return nil, compact(err)
	}
	return v, nil
}

func TestExpressions(t *testing.T) {
	due := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC) // a DATE
	ts := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)  // commit is 10:30 UTC
	newRow := cdc.Row{"id": int64(7), "uid": uint64(18446744073709551615), "amount": decimal.RequireFromString("1500.50"),
		"rate": 0.5, "due": due, "ts": ts, "name": "Ann", "note": nil, "blob": []byte("hi"), "phone": "0170 1234567"}
	oldRow := cdc.Row{"id": int64(7), "name": "Bob", "note": nil}
	tests := []struct {
		src  string
		want any    // compared with equal(): numbers by value across types, times by instant
		err  string // substring of the error, when one is expected
		is   error  // and the sentinel it wraps
	}{
		// DECIMAL, integers and floats compare and combine exactly.
		{src: `new.amount > 1000`, want: true},
		{src: `new.amount == 1500.5`, want: true},
		{src: `new.amount > 1500.50`, want: false},
		{src: `new.amount + 0.5 == 1501`, want: true},
		{src: `new.amount * 2`, want: decimal.RequireFromString("3001")},
		{src: `-new.amount`, want: decimal.RequireFromString("-1500.5")},
		{src: `vars.limit < new.amount`, want: true},
		{src: `new.uid > new.id`, want: true},
		{src: `new.uid + new.id`, want: decimal.RequireFromString("18446744073709551622")},
		{src: `new.id + 1`, want: int64(8)},
		{src: `new.id / 2`, want: 3.5},
		{src: `new.rate * new.id`, want: 3.5},
		{src: `new.id % 0`, err: "division by zero"},
		{src: `new.amount > 1000 ? "big" : "small"`, want: "big"},
		// Times: columns, commit_time, date strings, durations.
		{src: `new.due < commit_time`, want: false},
		{src: `new.due > "2026-03-30"`, want: true},
		{src: `new.due == "2026-03-31"`, want: true},
		{src: `new.ts + duration("1h")`, want: ts.Add(time.Hour)},
		{src: `commit_time - new.ts`, want: 30 * time.Minute},
		{src: `commit_time - new.ts > duration("15m")`, want: true},
		{src: `now() == commit_time`, want: true},
		{src: `date("2026-03-31") == new.due`, want: true},
		{src: `date("2026-03-31").Day()`, want: 31},
		{src: `date("2026-03-31 09:00")`, want: time.Date(2026, 3, 31, 7, 0, 0, 0, time.UTC)},
		{src: `date("31.03.2026 09:00", "02.01.2006 15:04")`, want: time.Date(2026, 3, 31, 7, 0, 0, 0, time.UTC)},
		{src: `date("31.03.2026", "02.01.2006", "UTC") == new.due`, want: true},
		{src: `date("tomorrow")`, err: `date: "tomorrow" is not a date or time`, is: ErrType},
		{src: `new.due.Year() == 2026 && new.due.Weekday().String() == "Tuesday"`, want: true},
		{src: `days(commit_time, new.due)`, want: 30},
		{src: `addDays(new.due, 1)`, want: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{src: `at_local(new.due, -3, "09:00")`, want: time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)},
		{src: `at_local(new.due, -3, "9am")`, err: `time of day "9am"`},
		{src: `at_local(new.note, 1, "09:00")`, err: "at_local: time: value is NULL", is: ErrNull},
		// NULL equals only NULL; ordering it is an error, as is comparing unlike types.
		{src: `new.note == nil`, want: true},
		{src: `new.missing == nil`, want: true},
		{src: `new.note != new.name`, want: true},
		{src: `new.note > 1`, err: "compare NULL with int: value is NULL (1:10)", is: ErrNull},
		{src: `new.name > 1`, err: "compare string with int: wrong type", is: ErrType},
		{src: `new.note + 1`, err: "NULL + int: value is NULL", is: ErrNull},
		// Strings: a string on one side of + concatenates.
		{src: `new.name + "!"`, want: "Ann!"},
		{src: `new.id + ":" + new.due`, want: "7:2026-03-31"},
		{src: `"x" + new.amount`, want: "x1500.5"},
		{src: `new.blob == "hi"`, want: true},
		{src: `lower(new.name) == "ann" && len(new.name) > 2`, want: true},
		{src: `new.name in ["Ann", "Bob"]`, want: true},
		// changed / became.
		{src: `changed("name")`, want: true},
		{src: `changed("id")`, want: false},
		{src: `changed("note")`, want: false},
		{src: `became("name", "Ann")`, want: true},
		{src: `became("name", "Bob")`, want: false},
		// Phones.
		{src: `e164(new.phone)`, want: "+491701234567"},
		{src: `e164("020 7946 0958", "GB")`, want: "+442079460958"},
		{src: `e164(new.name)`, err: "invalid phone number", is: ErrPhone},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := evalExpr(tt.src, oldRow, newRow)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tt.err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v does not wrap %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !equal(got, tt.want) {
				t.Errorf("got %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
}

func TestBecameOnInsertHasNoOldImage(t *testing.T) {
	got, err := evalExpr(`became("status", "active") && changed("status")`, nil, cdc.Row{"status": "active"})
	if err != nil || got != true {
		t.Errorf("got %v, %v; want true", got, err)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ src, err string }{
		{`changed(1)`, "cannot use int as argument (type string) to call changed"},
		{`nosuch(new.x)`, "unknown name nosuch"},
		{`neww.x`, "unknown name neww"},
		{strings.Repeat("new.a + ", 600) + "1", "exceeds maximum allowed nodes"},
	}
	for _, tt := range tests {
		_, err := compileExpr(tt.src, nil, time.UTC, "", true)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%.40s: got %v, want %q", tt.src, err, tt.err)
		}
	}
}
