package state

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

func mustAcquire(t testing.TB, s *Store, now, until time.Time, limit int) []*Message {
	t.Helper()
	ms, err := s.Acquire(context.Background(), now, until, limit)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return ms
}

func mustFire(t testing.TB, s *Store, ms []*Message) []*Message {
	t.Helper()
	out, err := s.Fire(context.Background(), ms, t0)
	if err != nil {
		t.Fatalf("fire: %v", err)
	}
	return out
}

// reopen closes s without any outcome (a crash leaves the same on disk: every write is a
// synced transaction) and opens the directory again.
func reopen(t *testing.T, s *Store, dir string, clk *clock) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestAcquireClaimsAheadAndFireReturnsOnlyAcquiredMessagesOnce(t *testing.T) {
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{
		reminder("b", t0.Add(2*time.Second)), reminder("a", t0.Add(time.Second)), reminder("late", t0.Add(time.Hour)),
	}})
	acquired := mustAcquire(t, s, t0, t0.Add(5*time.Second), 10)
	if got := keysOf(acquired); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("acquired = %v, want [a b] (due within 5s, in due order)", got)
	}
	if m := mustGet(t, s, "a"); m.Status != StatusSending || m.Attempts != 1 {
		t.Fatalf("acquired message stored as %s attempt %d, want sending 1 (a reconcile leaves it alone)", m.Status, m.Attempts)
	}
	if got := dueEntries(t, s); !slices.Equal(got, []string{"late@1h0m0s"}) {
		t.Fatalf("due index = %v, want only late", got)
	}
	if got := keysOf(mustFire(t, s, acquired[:1])); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("fire a = %v", got)
	}
	if got := mustFire(t, s, acquired[:1]); len(got) != 0 {
		t.Fatalf("second fire of a = %v, want nothing", keysOf(got))
	}
	// An acquired message completed before its fire (a fire-time policy) is not fired.
	if err := s.Complete(context.Background(), []Outcome{{Key: "b", Result: ResultSkipped, Reason: "recheck"}}); err != nil {
		t.Fatal(err)
	}
	if got := mustFire(t, s, acquired[1:]); len(got) != 0 {
		t.Fatalf("fire of completed b = %v, want nothing", keysOf(got))
	}
	// A claimed (not acquired) message is never fired: Claim hands over at once.
	if got := mustFire(t, s, mustClaim(t, s, t0.Add(2*time.Hour), 10)); len(got) != 0 {
		t.Fatalf("fire of a claimed message = %v", keysOf(got))
	}
}

func TestUnacquirePutsAcquiredMessagesBackAsTheyWere(t *testing.T) {
	s, clk := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{reminder("a", t0.Add(time.Second)), reminder("b", t0.Add(2*time.Second))}})
	before := counts(t, s)
	acquired := mustAcquire(t, s, t0, t0.Add(5*time.Second), 10)
	mustFire(t, s, acquired[:1])
	clk.Set(t0.Add(100 * time.Millisecond))
	if err := s.Unacquire(context.Background(), acquired); err != nil {
		t.Fatal(err)
	}
	if m := mustGet(t, s, "b"); m.Status != StatusScheduled || m.Attempts != 0 || len(m.History) != 0 || !m.DueAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("b after Unacquire = %s attempts %d history %v due %v, want scheduled as before", m.Status, m.Attempts, m.History, m.DueAt)
	}
	if m := mustGet(t, s, "a"); m.Status != StatusSending {
		t.Fatalf("fired a after Unacquire = %s, want still sending (it was handed over)", m.Status)
	}
	if got := dueEntries(t, s); !slices.Equal(got, []string{"b@2s"}) {
		t.Fatalf("due index = %v, want b back at its time", got)
	}
	if got := counts(t, s); got[StatusScheduled] != before[StatusScheduled]-1 || got[StatusSending] != 1 {
		t.Fatalf("counts = %v (before acquire %v)", got, before)
	}
	if got := keysOf(mustClaim(t, s, t0.Add(2*time.Second), 10)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("claim at b's time = %v", got)
	}
}

// A crash with acquired messages: those covered by their claim's fire horizon may have been
// handed over and settle like any message in sending; the others were never handed over and go
// back to what they were, to fire at their own time.
func TestSettleAfterCrashPutsBackAcquiredMessagesNeverFired(t *testing.T) {
	dir := t.TempDir()
	s, clk := openTestStore(t, func(o *Options) { o.Dir = dir })
	at := t0.Add(time.Second)
	retry := sms("r")
	mustApply(t, s, &Batch{Messages: []*Message{reminder("a", at), reminder("b", at), reminder("c", at),
		reminder("d", t0.Add(2*time.Second)), retry}})
	// r becomes a retry due at t0+3s.
	mustClaim(t, s, t0, 1)
	if err := s.Complete(context.Background(), []Outcome{{Key: "r", Result: ResultRetry, RetryAt: t0.Add(3 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	first := mustAcquire(t, s, t0, t0.Add(5*time.Second), 2)   // a, b
	second := mustAcquire(t, s, t0, t0.Add(5*time.Second), 10) // c, d, r
	if got := append(keysOf(first), keysOf(second)...); !slices.Equal(got, []string{"a", "b", "c", "d", "r"}) {
		t.Fatalf("acquired = %v", got)
	}
	// Released: a (first claim), c (second claim). b, d and r never were.
	mustFire(t, s, first[:1])
	mustFire(t, s, second[:1])
	clk.Set(t0.Add(time.Minute))
	s = reopen(t, s, dir, clk)
	if got := counts(t, s); got[StatusSending] != 5 {
		t.Fatalf("counts after crash = %v, want 5 sending", got)
	}
	ready, uncertain, err := s.Settle(context.Background(), func(string) bool { return false })
	if err != nil || ready != 0 || uncertain != 2 {
		t.Fatalf("Settle = %d ready %d uncertain %v, want 0, 2 (a and c)", ready, uncertain, err)
	}
	want := map[string]Status{"a": StatusUncertain, "c": StatusUncertain, "b": StatusScheduled, "d": StatusScheduled, "r": StatusRetry}
	for k, st := range want {
		m := mustGet(t, s, k)
		if m.Status != st {
			t.Errorf("%s = %s, want %s", k, m.Status, st)
		}
		if st != StatusUncertain && (m.Attempts != map[string]int{"r": 1}[k] || len(m.History) != map[string]int{"r": 1}[k]) {
			t.Errorf("%s put back with attempts %d history %v: the acquire must leave no trace", k, m.Attempts, m.History)
		}
	}
	if got := dueEntries(t, s); !slices.Equal(got, []string{"b@1s", "d@2s", "r@3s"}) {
		t.Fatalf("due index after settle = %v", got)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusUncertain: 2, StatusScheduled: 2, StatusRetry: 1}) {
		t.Fatalf("counts after settle = %v", got)
	}
	if c, h, r := countPrefix(t, s, prefixClaim), countPrefix(t, s, prefixAcquired), countPrefix(t, s, prefixFired); c+h+r != 0 {
		t.Fatalf("journal records left after settle: %d claims, %d acquired, %d horizons", c, h, r)
	}
	if got := keysOf(mustClaim(t, s, t0.Add(time.Hour), 10)); !slices.Equal(got, []string{"b", "d", "r"}) {
		t.Fatalf("claim after settle = %v, want the acquired ones again", got)
	}
}

// The journal records of an Acquire are deleted with its journal entry once all its messages are
// completed.
func TestAcquireRecordsGoWithTheirJournalEntry(t *testing.T) {
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{reminder("a", t0.Add(time.Second)), reminder("b", t0.Add(time.Second))}})
	acquired := mustAcquire(t, s, t0, t0.Add(time.Minute), 10)
	mustFire(t, s, acquired)
	if n := countPrefix(t, s, prefixAcquired) + countPrefix(t, s, prefixFired); n != 2 {
		t.Fatalf("acquire records while in flight = %d, want 2", n)
	}
	if err := s.Complete(context.Background(), []Outcome{{Key: "a", Result: ResultSent}, {Key: "b", Result: ResultSent}}); err != nil {
		t.Fatal(err)
	}
	// The delete rides on the next write transaction.
	mustApply(t, s, &Batch{Messages: []*Message{sms("c")}})
	mustClaim(t, s, t0, 10)
	if n := countPrefix(t, s, prefixClaim) + countPrefix(t, s, prefixAcquired) + countPrefix(t, s, prefixFired); n != 1 {
		t.Fatalf("journal records = %d, want only c's claim", n)
	}
}

// A change of an acquired reminder's row before it is fired cancels or reschedules it as if it had
// never been acquired (and the Fire then leaves it out); once fired it is the sender's.
func TestReconcileWithdrawsAcquiredRemindersUntilFired(t *testing.T) {
	dir := t.TempDir()
	s, clk := openTestStore(t, func(o *Options) { o.Dir = dir })
	at := t0.Add(time.Second)
	sched := func(slot, key string, due time.Time) *Batch {
		return &Batch{Schedules: []Schedule{{Slot: slot, Message: reminder(key, due)}}}
	}
	mustApply(t, s, sched("pay/1", "k1", at))
	mustApply(t, s, sched("pay/2", "k2", at))
	mustApply(t, s, sched("pay/3", "k3", at))
	mustApply(t, s, sched("pay/4", "k4", at.Add(-time.Millisecond)))
	acquired := mustAcquire(t, s, t0, t0.Add(5*time.Second), 10)
	if !slices.Equal(keysOf(acquired), []string{"k4", "k1", "k2", "k3"}) {
		t.Fatalf("acquired %v", keysOf(acquired))
	}
	mustFire(t, s, acquired[:1]) // k4 is handed over (firing goes in due order)
	acquired = acquired[1:]
	// k1: the row moved the fire time (same key: the key names the slot, not the time).
	if res := mustApply(t, s, sched("pay/1", "k1", t0.Add(time.Hour))); res.Rescheduled != 1 {
		t.Fatalf("reschedule of acquired k1 = %+v", res)
	}
	// k2: the row no longer matches; k4: too late, it was fired.
	if res := mustApply(t, s, &Batch{Cancels: []string{"pay/2", "pay/4"}}); res.Cancelled != 1 || res.Existing != 1 {
		t.Fatalf("cancel of acquired k2 and fired k4 = %+v", res)
	}
	// k3: the same fire time again changes nothing: it stays acquired.
	mustApply(t, s, sched("pay/3", "k3", at))
	if m := mustGet(t, s, "k1"); m.Status != StatusScheduled || m.Attempts != 0 || !m.DueAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("k1 = %s attempts %d due %v, want scheduled at the new time", m.Status, m.Attempts, m.DueAt)
	}
	want := map[string]Status{"k2": StatusCancelled, "k3": StatusSending, "k4": StatusSending}
	for k, st := range want {
		if got := statusOf(t, s, k); got != st {
			t.Fatalf("%s = %s, want %s", k, got, st)
		}
	}
	if got := keysOf(mustFire(t, s, acquired[:3])); !slices.Equal(got, []string{"k3"}) {
		t.Fatalf("fire = %v, want only k3 (k1 and k2 were withdrawn)", got)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusScheduled: 1, StatusCancelled: 1, StatusSending: 2}) {
		t.Fatalf("counts = %v", got)
	}
	// k1 acquired again by a later Acquire is that Acquire's: a crash settles it by that one only.
	again := mustAcquire(t, s, t0, t0.Add(2*time.Hour), 10)
	if !slices.Equal(keysOf(again), []string{"k1"}) {
		t.Fatalf("second acquire = %v", keysOf(again))
	}
	if got := mustFire(t, s, acquired[:1]); len(got) != 0 {
		t.Fatalf("firing k1's first acquire = %v, want nothing (it was withdrawn)", keysOf(got))
	}
	clk.Set(t0.Add(time.Minute))
	s = reopen(t, s, dir, clk)
	if _, u, err := s.Settle(context.Background(), nil); err != nil || u != 2 {
		t.Fatalf("settle: %d uncertain, %v; want 2 (k3 and k4, fired)", u, err)
	}
	if m := mustGet(t, s, "k1"); m.Status != StatusScheduled || m.Attempts != 0 {
		t.Fatalf("k1 after settle = %s attempts %d, want scheduled again (its second acquire was never fired)", m.Status, m.Attempts)
	}
	if got := statusOf(t, s, "k2"); got != StatusCancelled {
		t.Fatalf("k2 after settle = %s", got)
	}
}

// Fires racing reconciles of the same acquired reminders: each one is either handed over (and
// stays `sending`) or rescheduled, never both and never neither.
func TestReleaseRacingReconcileHandsOverOrReschedulesEachOnce(t *testing.T) {
	s, _ := openTestStore(t, func(o *Options) { o.NoSync = true })
	const n = 300
	at := t0.Add(time.Second)
	var b Batch
	for i := range n {
		b.Schedules = append(b.Schedules, Schedule{Slot: fmt.Sprintf("pay/%03d", i), Message: reminder(fmt.Sprintf("k%03d", i), at)})
	}
	mustApply(t, s, &b)
	acquired := mustAcquire(t, s, t0, t0.Add(5*time.Second), n)
	if len(acquired) != n {
		t.Fatalf("acquired %d", len(acquired))
	}
	fired := map[string]bool{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i += 3 {
			out, err := s.Fire(context.Background(), acquired[i:min(i+3, n)], t0)
			if err != nil {
				t.Error(err)
				return
			}
			for _, m := range out {
				fired[m.Key] = true
			}
		}
	}()
	rescheduled := 0
	go func() {
		defer wg.Done()
		for i := n - 1; i >= 0; i-- { // from the other end: they meet in the middle
			res, err := s.Apply(context.Background(), &Batch{Schedules: []Schedule{{Slot: fmt.Sprintf("pay/%03d", i),
				Message: reminder(fmt.Sprintf("k%03d", i), t0.Add(time.Hour))}}})
			if err != nil {
				t.Error(err)
				return
			}
			rescheduled += res.Rescheduled
		}
	}()
	wg.Wait()
	if len(fired)+rescheduled != n || len(fired) == 0 || rescheduled == 0 {
		t.Fatalf("fired %d + rescheduled %d, want %d, both > 0", len(fired), rescheduled, n)
	}
	for _, m := range acquired {
		got := mustGet(t, s, m.Key)
		if fired[m.Key] != (got.Status == StatusSending) || (got.Status == StatusScheduled) != !got.DueAt.Equal(at) {
			t.Fatalf("%s: fired %v, stored %s due %v", m.Key, fired[m.Key], got.Status, got.DueAt)
		}
	}
}

// Fires of one Acquire running at once never lower its fire horizon: a crash afterwards
// settles every fired message as possibly sent and puts none back.
func TestConcurrentFiresNeverLowerTheHorizon(t *testing.T) {
	dir := t.TempDir()
	s, clk := openTestStore(t, func(o *Options) { o.Dir = dir })
	const n = 240
	var b Batch
	for i := range n {
		b.Messages = append(b.Messages, reminder(fmt.Sprintf("k%03d", i), t0.Add(time.Second)))
	}
	mustApply(t, s, &b)
	acquired := mustAcquire(t, s, t0, t0.Add(5*time.Second), n)
	if len(acquired) != n {
		t.Fatalf("acquired %d", len(acquired))
	}
	var wg sync.WaitGroup
	for g := range 3 { // chunks 0, 3, 6, … / 1, 4, 7, … / 2, 5, 8, …: each goroutine in order
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := g; c*10 < n; c += 3 {
				if _, err := s.Fire(context.Background(), acquired[c*10:c*10+10], t0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	clk.Set(t0.Add(time.Minute))
	s = reopen(t, s, dir, clk)
	if _, u, err := s.Settle(context.Background(), nil); err != nil || u != n {
		t.Fatalf("settle: %d uncertain (%v), want all %d: a lowered horizon put fired messages back", u, err, n)
	}
}
