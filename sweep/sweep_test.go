package sweep_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/sweep"
)

func TestHolidaySweepSendsEachUserOnceAlsoWhenRunTwiceTheSameDay(t *testing.T) {
	db := database(t)
	const n = 50_000
	loadUsers(t, db, n)
	st := openStore(t, t.TempDir())
	defer st.Close()
	s := newScheduler(t, st, parseRules(t, holidaySource(db)), nil)

	first, err := s.RunOnce(ctxT(t, 2*time.Minute), "holiday", berlin(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	if !first.Done || first.Rows != int64(activeUsers(n)) || first.Messages != int64(activeUsers(n)) || first.Resumed {
		t.Fatalf("first run %+v", first)
	}
	t.Logf("09:00 run: %d rows in %s (%.0f rows/s)", first.Rows, first.Took.Round(time.Millisecond), float64(first.Rows)/first.Took.Seconds())

	again, err := s.RunOnce(ctxT(t, time.Minute), "holiday", berlin(t, 9))
	if err != nil || !again.Already {
		t.Fatalf("the same tick again: %+v %v, want nothing done", again, err)
	}
	second, err := s.RunOnce(ctxT(t, 2*time.Minute), "holiday", berlin(t, 15))
	if err != nil {
		t.Fatal(err)
	}
	if !second.Done || second.Rows != int64(activeUsers(n)) {
		t.Fatalf("15:00 run %+v", second)
	}
	checkHoliday(t, st, n)

	c, ok, err := sweep.LoadCursor(st, "holiday")
	if err != nil || !ok || !c.Done || !c.Tick.Equal(berlin(t, 15)) || c.Rows != int64(activeUsers(n)) {
		t.Fatalf("cursor %+v %v %v", c, ok, err)
	}
	statuses, err := s.Status()
	if err != nil || len(statuses) != 1 || !statuses[0].HasRun || statuses[0].Last.Rows != c.Rows {
		t.Fatalf("status %+v %v", statuses, err)
	}
}

func TestSweepStillRunningIsNotStartedTwice(t *testing.T) {
	db := database(t)
	const n = 4000
	loadUsers(t, db, n)
	st := openStore(t, t.TempDir())
	defer st.Close()

	// A clock the test moves: the scheduler sees 09:00 on December 24th, then 15:00 while the
	// 09:00 run (throttled to ~1.5 s) is still going.
	var clock atomic.Pointer[time.Time]
	setClock := func(t time.Time) { clock.Store(&t) }
	setClock(berlin(t, 9).Add(-time.Second))
	var reads atomic.Int64 // clock reads: the scheduler has looked at 08:59:59 once reads > 1
	var mu sync.Mutex
	var runs []time.Time // the ticks of the runs, in the order they made progress
	progress := func(p sweep.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if len(runs) == 0 || !runs[len(runs)-1].Equal(p.Tick) {
			runs = append(runs, p.Tick)
		}
	}
	s := newScheduler(t, st, parseRules(t, holidaySource(db)), func(o *sweep.Options) {
		o.Now = func() time.Time { reads.Add(1); return *clock.Load() }
		o.Poll = 10 * time.Millisecond
		o.PageSize = 200
		o.RowsPerSecond = 2000
		o.OnProgress = progress
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	waitFor(t, func() bool { return reads.Load() > 1 })
	setClock(berlin(t, 9))
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(runs) == 1 })
	if _, err := s.RunOnce(ctx, "holiday", berlin(t, 9)); !errors.Is(err, sweep.ErrRunning) {
		t.Fatalf("RunOnce while running: %v, want ErrRunning", err)
	}
	setClock(berlin(t, 15).Add(time.Minute)) // the 15:00 tick comes while 09:00 still runs
	waitFor(t, func() bool {
		c, _, _ := sweep.LoadCursor(st, "holiday")
		return c.Done
	})
	time.Sleep(100 * time.Millisecond) // give a wrongly started second run the chance to show
	mu.Lock()
	got := append([]time.Time(nil), runs...)
	mu.Unlock()
	if len(got) != 1 || !got[0].Equal(berlin(t, 9).UTC()) {
		t.Fatalf("runs %v, want only the 09:00 run (15:00 came while it was running)", got)
	}
	if skipped := metrics.GetOrCreateCounter(`notifier_sweep_skipped_total{sweep="holiday"}`).Get(); skipped != 1 {
		t.Errorf("notifier_sweep_skipped_total = %d, want 1 (the 15:00 tick)", skipped)
	}
	statuses, err := s.Status()
	if err != nil || statuses[0].Next.Before(berlin(t, 15)) {
		t.Fatalf("status %+v %v", statuses, err)
	}
	checkHoliday(t, st, n)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
