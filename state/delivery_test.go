package state

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestClaimHandsOverDueMessagesInDueOrderAndMarksThemSending(t *testing.T) {
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{
		reminder("c", t0.Add(3*time.Second)), reminder("a", t0.Add(time.Second)),
		reminder("later", t0.Add(time.Hour)), reminder("b", t0.Add(2*time.Second)),
	}})
	now := t0.Add(10 * time.Second)
	if got := keysOf(mustClaim(t, s, now, 2)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("first claim = %v, want [a b]", got)
	}
	got := mustClaim(t, s, now, 10)
	if !slices.Equal(keysOf(got), []string{"c"}) {
		t.Fatalf("second claim = %v, want [c]", keysOf(got))
	}
	if m := got[0]; m.Status != StatusSending || m.Attempts != 1 || !m.UpdatedAt.Equal(now) || m.Text != "hello c" {
		t.Fatalf("claimed message = %+v, want sending, attempt 1, updated now, text intact", m)
	}
	if m := mustGet(t, s, "c"); m.Status != StatusSending || m.Attempts != 1 {
		t.Fatalf("stored claimed message = %+v", m)
	}
	if got := mustClaim(t, s, now, 10); len(got) != 0 {
		t.Fatalf("third claim = %v, want nothing before 'later' is due", keysOf(got))
	}
	if next, ok, err := s.NextDue(); err != nil || !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("NextDue = %v %v %v, want t0+1h", next, ok, err)
	}
	if size, oldest, err := s.DueStats(); err != nil || size != 1 || !oldest.Equal(t0.Add(time.Hour)) {
		t.Fatalf("DueStats = %d %v %v", size, oldest, err)
	}
}

func TestCompleteMovesEachOutcomeThroughTheStateMachine(t *testing.T) {
	retryAt := t0.Add(time.Minute)
	tests := []struct {
		name        string
		out         Outcome
		wantStatus  Status
		wantDue     []string
		wantAttempt int
		check       func(t *testing.T, m *Message)
	}{
		{"sent keeps the provider id", Outcome{Result: ResultSent, ProviderID: "SM123"}, StatusSent, nil, 1,
			func(t *testing.T, m *Message) {
				if m.ProviderID != "SM123" {
					t.Errorf("ProviderID = %q", m.ProviderID)
				}
			}},
		{"retry is due again at RetryAt", Outcome{Result: ResultRetry, RetryAt: retryAt, Error: "503 busy"}, StatusRetry, []string{"k@1m0s"}, 1,
			func(t *testing.T, m *Message) {
				if m.LastError != "503 busy" || !m.DueAt.Equal(retryAt) {
					t.Errorf("LastError %q DueAt %v", m.LastError, m.DueAt)
				}
			}},
		{"dead keeps error and reason", Outcome{Result: ResultDead, Error: "400 invalid number", Reason: "client_error"}, StatusDead, nil, 1,
			func(t *testing.T, m *Message) {
				if m.LastError != "400 invalid number" || m.Reason != "client_error" {
					t.Errorf("LastError %q Reason %q", m.LastError, m.Reason)
				}
			}},
		{"uncertain is never due", Outcome{Result: ResultUncertain, Reason: "timeout"}, StatusUncertain, nil, 1, nil},
		{"defer goes back to scheduled without counting the attempt", Outcome{Result: ResultDefer, RetryAt: retryAt, Reason: "quiet hours"},
			StatusScheduled, []string{"k@1m0s"}, 0, nil},
		{"skipped keeps the reason", Outcome{Result: ResultSkipped, Reason: "skip_older_than"}, StatusSkipped, nil, 1,
			func(t *testing.T, m *Message) {
				if m.Reason != "skip_older_than" {
					t.Errorf("Reason %q", m.Reason)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			mustApply(t, s, &Batch{Messages: []*Message{sms("k")}})
			mustClaim(t, s, t0, 1)
			out := tt.out
			out.Key, out.At = "k", t0.Add(time.Second)
			if err := s.Complete(context.Background(), []Outcome{out}); err != nil {
				t.Fatal(err)
			}
			m := mustGet(t, s, "k")
			if m.Status != tt.wantStatus || m.Attempts != tt.wantAttempt || !m.UpdatedAt.Equal(out.At) {
				t.Fatalf("after %s: %s attempts %d updated %v, want %s attempts %d", out.Result, m.Status, m.Attempts, m.UpdatedAt, tt.wantStatus, tt.wantAttempt)
			}
			if h := m.History; len(h) != 1 || h[0].Status != tt.wantStatus {
				t.Fatalf("history = %+v", h)
			}
			if got := dueEntries(t, s); !slices.Equal(got, tt.wantDue) {
				t.Fatalf("due index = %v, want %v", got, tt.wantDue)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			if got := counts(t, s); got[tt.wantStatus] != 1 || len(got) != 1 {
				t.Fatalf("counts = %v", got)
			}
			// A second outcome for the same claim is refused: the message is no longer sending.
			if err := s.Complete(context.Background(), []Outcome{out}); !errors.Is(err, ErrWrongState) {
				t.Fatalf("second complete: err = %v, want ErrWrongState", err)
			}
		})
	}
}

func TestRetriesKeepTheLastTenHistoryEntries(t *testing.T) {
	s, clk := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{sms("k")}})
	now := t0
	for i := range 12 {
		claimed := mustClaim(t, s, now, 1)
		if len(claimed) != 1 || claimed[0].Attempts != i+1 {
			t.Fatalf("attempt %d: claimed %+v", i+1, claimed)
		}
		now = now.Add(time.Second)
		clk.Set(now)
		if err := s.Complete(context.Background(), []Outcome{{Key: "k", Result: ResultRetry, RetryAt: now, Error: fmt.Sprint("fail ", i+1)}}); err != nil {
			t.Fatal(err)
		}
	}
	m := mustGet(t, s, "k")
	if len(m.History) != 10 || m.History[0].Error != "fail 3" || m.History[9].Error != "fail 12" || m.Attempts != 12 {
		t.Fatalf("history %d entries, first %q, last %q, attempts %d", len(m.History), m.History[0].Error, m.History[9].Error, m.Attempts)
	}
}

func TestSettleMakesSendingReadyOnIdempotentChannelsAndUncertainOnOthers(t *testing.T) {
	s, clk := openTestStore(t)
	webhook := sms("w")
	webhook.Channel = "webhook"
	mustApply(t, s, &Batch{Messages: []*Message{sms("s1"), sms("s2"), webhook, reminder("idle", t0.Add(time.Second))}})
	claimed := mustClaim(t, s, t0, 10)
	if len(claimed) != 3 {
		t.Fatalf("claimed %v", keysOf(claimed))
	}
	// crash: no outcome. On restart:
	clk.Set(t0.Add(time.Minute))
	ready, uncertain, err := s.Settle(context.Background(), func(ch string) bool { return ch == "webhook" })
	if err != nil || ready != 1 || uncertain != 2 {
		t.Fatalf("Settle = %d ready, %d uncertain, %v; want 1, 2", ready, uncertain, err)
	}
	if m := mustGet(t, s, "w"); m.Status != StatusReady || !m.DueAt.Equal(t0.Add(time.Minute)) || m.Attempts != 1 {
		t.Fatalf("idempotent message = %+v, want ready due now", m)
	}
	for _, k := range []string{"s1", "s2"} {
		if m := mustGet(t, s, k); m.Status != StatusUncertain || m.Reason != ReasonCrashDuringSend {
			t.Fatalf("%s = %s %q, want uncertain %q", k, m.Status, m.Reason, ReasonCrashDuringSend)
		}
	}
	// uncertain is never claimed again by itself; the idempotent one and the idle one are.
	if got := keysOf(mustClaim(t, s, t0.Add(time.Hour), 10)); !slices.Equal(got, []string{"idle", "w"}) {
		t.Fatalf("claim after settle = %v, want [idle w]", got)
	}
	if r, u, err := s.Settle(context.Background(), nil); err != nil || r != 0 || u != 2 {
		t.Fatalf("second Settle (nil = nothing idempotent) = %d %d %v", r, u, err)
	}
}

func TestConcurrentClaimersNeverReceiveTheSameMessage(t *testing.T) {
	s, _ := openTestStore(t, func(o *Options) { o.NoSync = true })
	const n = 3000
	var b Batch
	for i := range n {
		b.Messages = append(b.Messages, reminder(fmt.Sprintf("m%05d", i), t0.Add(time.Duration(i%50)*time.Millisecond)))
	}
	for chunk := range slices.Chunk(b.Messages, 500) {
		mustApply(t, s, &Batch{Messages: chunk})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for {
				ms, err := s.Claim(context.Background(), t0.Add(time.Second), 7+w)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.Key]++
				}
				mu.Unlock()
			}
		})
	}
	// Meanwhile the ingest side keeps adding due messages.
	wg.Go(func() {
		for i := range 100 {
			if _, err := s.Apply(context.Background(), &Batch{Messages: []*Message{sms(fmt.Sprintf("late%03d", i))}}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for _, m := range mustClaim(t, s, t0.Add(time.Second), 1000) { // late ones added after the claimers stopped
		seen[m.Key]++
	}
	if len(seen) != n+100 {
		t.Fatalf("claimed %d distinct messages, want %d", len(seen), n+100)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("%s claimed %d times", k, c)
		}
	}
	if got := counts(t, s); got[StatusSending] != n+100 || len(got) != 1 {
		t.Fatalf("counts = %v", got)
	}
}

func TestClaimFindsEntriesAddedBelowTheLowWaterMark(t *testing.T) {
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{
		reminder("a", t0.Add(10*time.Second)), reminder("b", t0.Add(20*time.Second)), reminder("z", t0.Add(time.Hour)),
	}})
	if got := keysOf(mustClaim(t, s, t0.Add(30*time.Second), 10)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("claim = %v", got)
	}
	// The mark is now at z (t0+1h). A retry, a send-now message and a reschedule land earlier.
	if err := s.Complete(context.Background(), []Outcome{{Key: "a", Result: ResultRetry, RetryAt: t0.Add(5 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, &Batch{Messages: []*Message{sms("now")}}) // due at t0
	if err := s.Complete(context.Background(), []Outcome{{Key: "b", Result: ResultDefer, RetryAt: t0.Add(40 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if next, _, _ := s.NextDue(); !next.Equal(t0) {
		t.Fatalf("NextDue = %v, want t0", next)
	}
	if got := keysOf(mustClaim(t, s, t0.Add(time.Minute), 10)); !slices.Equal(got, []string{"now", "a", "b"}) {
		t.Fatalf("claim after earlier inserts = %v, want [now a b]", got)
	}
	if got := keysOf(mustClaim(t, s, t0.Add(2*time.Hour), 10)); !slices.Equal(got, []string{"z"}) {
		t.Fatalf("final claim = %v, want [z]", got)
	}
}

func TestClaimRemovesStaleDueEntries(t *testing.T) {
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{sms("k")}})
	// A due entry whose record is gone or points elsewhere is dropped, not handed over.
	err := s.db.Update(func(txn *badgerTxn) error {
		if err := txn.Set(dueKey(unixMs(t0), "ghost"), nil); err != nil {
			return err
		}
		return txn.Set(dueKey(unixMs(t0)+1, "k"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(mustClaim(t, s, t0.Add(time.Second), 10)); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("claim = %v, want [k] once", got)
	}
	if got := dueEntries(t, s); len(got) != 0 {
		t.Fatalf("due index = %v, want empty", got)
	}
}

func TestTheClaimJournalListsSendingMessagesUntilTheyAreCompleted(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := context.Background()
	mustApply(t, s, &Batch{Messages: []*Message{sms("a"), sms("b"), sms("c"), reminder("d", t0.Add(time.Minute))}})
	mustClaim(t, s, t0, 2) // a, b
	mustClaim(t, s, t0, 2) // c
	if n := countPrefix(t, s, prefixClaim); n != 2 {
		t.Fatalf("%d journal entries, want one per Claim", n)
	}
	if ms, err := s.List(ctx, Filter{Status: StatusSending}); err != nil || !slices.Equal(keysOf(ms), []string{"a", "b", "c"}) {
		t.Fatalf("List sending = %v, %v", keysOf(ms), err)
	}
	if err := s.Complete(ctx, []Outcome{{Key: "a", Result: ResultSent}, {Key: "c", Result: ResultRetry, RetryAt: t0.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.List(ctx, Filter{Status: StatusSending}); !slices.Equal(keysOf(ms), []string{"b"}) {
		t.Fatalf("List sending after complete = %v", keysOf(ms))
	}
	if err := s.Complete(ctx, []Outcome{{Key: "b", Result: ResultSent}}); err != nil {
		t.Fatal(err)
	}
	// The emptied journal entries go with the next write of the delivery loop.
	mustClaim(t, s, t0.Add(time.Minute), 10) // d
	if n := countPrefix(t, s, prefixClaim); n != 1 {
		t.Fatalf("%d journal entries, want only d's", n)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusSent: 2, StatusRetry: 1, StatusSending: 1}) {
		t.Fatalf("counts = %v", got)
	}
	if r, u, err := s.Settle(ctx, nil); err != nil || r != 0 || u != 1 {
		t.Fatalf("Settle = %d %d %v", r, u, err)
	}
	if n := countPrefix(t, s, prefixClaim); n != 0 {
		t.Fatalf("%d journal entries after Settle", n)
	}
}

func TestRuleCancelsRacingClaimsLeaveEachReminderEitherClaimedOrCancelled(t *testing.T) {
	s, _ := openTestStore(t, func(o *Options) { o.NoSync = true })
	ctx := context.Background()
	const n = 400
	var b Batch
	for i := range n {
		b.Schedules = append(b.Schedules, Schedule{Slot: fmt.Sprint("r/", i), Message: reminder(fmt.Sprint("k", i), t0)})
	}
	mustApply(t, s, &b)
	claimed := map[string]bool{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			ms, err := s.Claim(ctx, t0, 9)
			if err != nil {
				t.Error(err)
				return
			}
			if len(ms) == 0 {
				return
			}
			for _, m := range ms {
				claimed[m.Key] = true
			}
		}
	})
	wg.Go(func() {
		for i := 0; i < n; i += 2 {
			if _, err := s.Apply(ctx, &Batch{Cancels: []string{fmt.Sprint("r/", i)}}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for i := range n {
		key := fmt.Sprint("k", i)
		st := statusOf(t, s, key)
		switch {
		case claimed[key] && st != StatusSending:
			t.Fatalf("%s was claimed but is %s", key, st)
		case !claimed[key] && (i%2 == 1 || st != StatusCancelled):
			t.Fatalf("%s neither claimed nor cancelled: %s", key, st)
		}
	}
	if got := counts(t, s); got[StatusSending] != len(claimed) || got[StatusSending]+got[StatusCancelled] != n {
		t.Fatalf("counts %v with %d claimed", got, len(claimed))
	}
}

// Complete uses the state record its Claim wrote instead of reading it back; a receipt
// recorded while the message was sending must still be kept, whether it committed before
// Complete began (a newer touch generation sends Complete to the stored record) or while
// Complete's transaction ran (the generation is in its read set: it conflicts and retries).
func TestCompleteKeepsAReceiptRecordedWhileSending(t *testing.T) {
	ctx := context.Background()
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{sms("before"), sms("during"), sms("plain")}})
	mustClaim(t, s, t0, 3)

	if err := s.RecordReceipt(ctx, "before", ReceiptDelivered, "P1", "early"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, []Outcome{{Key: "before", Result: ResultSent}, {Key: "plain", Result: ResultSent}}); err != nil {
		t.Fatal(err)
	}

	runs := 0
	err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
		runs++
		fx.settles = true
		if err := s.completeOne(txn, fx, &Outcome{Key: "during", Result: ResultSent}, false, touchGenOnce(txn)); err != nil {
			return err
		}
		if runs == 1 { // a receipt commits after this transaction read the message's state
			return s.RecordReceipt(ctx, "during", ReceiptDelivered, "P2", "racing")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Fatalf("the completing transaction ran %d times, want 2 (a conflict, then a retry)", runs)
	}
	for key, want := range map[string]string{"before": "receipt: delivered: early", "during": "receipt: delivered: racing"} {
		m := mustGet(t, s, key)
		var texts []string
		for _, h := range m.History {
			texts = append(texts, h.Error)
		}
		if m.Status != StatusSent || !slices.Contains(texts, want) {
			t.Errorf("%s: status %s, history %q: want sent with %q", key, m.Status, texts, want)
		}
	}
	if m := mustGet(t, s, "plain"); m.Status != StatusSent || len(m.History) != 1 || m.History[0].Status != StatusSent {
		t.Errorf("plain: %+v, want sent with one history entry", m)
	}
}

// A key twice in one Complete: the second outcome sees the first's write (wrong state), as
// it did when Complete read every record.
func TestCompleteTwiceInOneCallAppliesTheFirstOutcomeOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{sms("k")}})
	mustClaim(t, s, t0, 1)
	err := s.Complete(ctx, []Outcome{{Key: "k", Result: ResultSent, ProviderID: "P1"}, {Key: "k", Result: ResultDead}})
	if !errors.Is(err, ErrWrongState) {
		t.Fatalf("second outcome: %v, want ErrWrongState", err)
	}
	if m := mustGet(t, s, "k"); m.Status != StatusSent || m.ProviderID != "P1" {
		t.Fatalf("k = %+v, want sent by the first outcome", m)
	}
}

// The touch generation continues across a restart: a number written by the last process is
// never written again, or a Claim that read it would miss a change made while it was sending.
func TestTouchGenerationContinuesAfterReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *Store {
		s, err := Open(Options{Dir: dir, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	mustApply(t, s, &Batch{Messages: []*Message{sms("a"), sms("b")}})
	mustClaim(t, s, t0, 1)
	if err := s.RecordReceipt(ctx, "a", ReceiptDelivered, "P1", "first"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	mustClaim(t, s, t0, 1) // b, reading the generation the receipt for a wrote
	if err := s.RecordReceipt(ctx, "b", ReceiptDelivered, "P2", "second"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, []Outcome{{Key: "b", Result: ResultSent}}); err != nil {
		t.Fatal(err)
	}
	m := mustGet(t, s, "b")
	if m.Status != StatusSent || len(m.History) != 2 || m.History[0].Error != "receipt: delivered: second" {
		t.Fatalf("b = %+v, want sent with the receipt kept", m)
	}
}
