package state

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestApplyIsInsertIfAbsentSoAReplayCreatesNothingTwice(t *testing.T) {
	s, clk := openTestStore(t)
	batch := &Batch{
		Checkpoint: &Checkpoint{Flavor: "mariadb", Position: "0-1-10", CommitTime: t0},
		Messages:   []*Message{sms("a"), sms("b"), sms("a")}, // "a" twice in one batch too
	}
	if got, want := mustApply(t, s, batch), (ApplyResult{Inserted: 2, Existing: 1}); got != want {
		t.Fatalf("first apply = %+v, want %+v", got, want)
	}
	first := mustGet(t, s, "a")

	clk.Set(t0.Add(time.Hour))
	changed := *batch
	changed.Messages = []*Message{{Key: "a", Text: "replayed text"}, sms("b")}
	if got, want := mustApply(t, s, &changed), (ApplyResult{Existing: 2}); got != want {
		t.Fatalf("replay = %+v, want %+v", got, want)
	}
	if again := mustGet(t, s, "a"); !reflect.DeepEqual(again, first) {
		t.Fatalf("replay changed the record:\n got %+v\nwant %+v", again, first)
	}
	if got := dueEntries(t, s); !slices.Equal(got, []string{"a@0s", "b@0s"}) {
		t.Fatalf("due index = %v, want one entry per message at creation time", got)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusReady: 2}) {
		t.Fatalf("counts = %v", got)
	}
}

func TestApplyStoresMessagesByStatus(t *testing.T) {
	s, _ := openTestStore(t)
	held, dead, sched := sms("held"), sms("dead"), reminder("sched", t0.Add(time.Minute))
	held.Status, dead.Status, dead.LastError = StatusHeld, StatusDead, "template: missing field name"
	mustApply(t, s, &Batch{Messages: []*Message{held, dead, sched, sms("now")}})
	if got, want := dueEntries(t, s), []string{"now@0s", "sched@1m0s"}; !slices.Equal(got, want) {
		t.Fatalf("due index = %v, want %v (held and dead are not due)", got, want)
	}
	m := mustGet(t, s, "now")
	if m.Status != StatusReady || !m.DueAt.Equal(t0) || !m.CreatedAt.Equal(t0) || !m.UpdatedAt.Equal(t0) {
		t.Fatalf("send-now message = %+v, want ready, due and created at t0", m)
	}
	if got := mustGet(t, s, "dead"); got.Status != StatusDead || got.LastError != dead.LastError {
		t.Fatalf("dead message = %+v", got)
	}
}

func TestApplyRejectsInvalidEffects(t *testing.T) {
	s, _ := openTestStore(t)
	for name, b := range map[string]*Batch{
		"empty key":             {Messages: []*Message{{Text: "x"}}},
		"sending on insert":     {Messages: []*Message{{Key: "k", Status: StatusSending}}},
		"schedule without time": {Schedules: []Schedule{{Slot: "r/1", Message: sms("k")}}},
		"schedule without slot": {Schedules: []Schedule{{Message: reminder("k", t0)}}},
		"digest without window": {Digest: []DigestItem{{Rule: "r", Item: "i"}}},
	} {
		if _, err := s.Apply(context.Background(), b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCheckpointIsWrittenWithTheEffectsOrNotAtAll(t *testing.T) {
	s, _ := openTestStore(t, func(o *Options) { o.MemTableSize = 1 << 20 })
	if _, ok, err := s.Checkpoint(); err != nil || ok {
		t.Fatalf("fresh store checkpoint: ok=%v err=%v, want none", ok, err)
	}
	cp1 := Checkpoint{Flavor: "mariadb", Position: "0-1-5", CommitTime: t0}
	mustApply(t, s, &Batch{Checkpoint: &cp1, Messages: []*Message{sms("m1")},
		Cursors: map[string][]byte{"sweep": []byte("id>42")}})
	if got, ok, err := s.Checkpoint(); err != nil || !ok || got != cp1 {
		t.Fatalf("checkpoint = %+v ok=%v err=%v, want %+v", got, ok, err, cp1)
	}
	if c, err := s.Cursor("sweep"); err != nil || string(c) != "id>42" {
		t.Fatalf("cursor = %q, %v", c, err)
	}

	// A batch too big for one transaction fails as a whole: no message, no checkpoint.
	big := &Batch{Checkpoint: &Checkpoint{Flavor: "mariadb", Position: "0-1-9"}}
	for i := range 2 * s.MaxBatchCount() {
		m := sms("big" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
		m.Text = strings.Repeat("t", 2000)
		big.Messages = append(big.Messages, m)
	}
	if _, err := s.Apply(context.Background(), big); !errors.Is(err, ErrBatchTooBig) {
		t.Fatalf("apply of %d messages: err = %v, want ErrBatchTooBig", len(big.Messages), err)
	}
	if got, _, _ := s.Checkpoint(); got != cp1 {
		t.Fatalf("checkpoint after failed apply = %+v, want unchanged %+v", got, cp1)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusReady: 1}) {
		t.Fatalf("counts after failed apply = %v, want only m1", got)
	}

	// MaxBatchCount messages of about 1 KiB fit.
	fit := &Batch{Checkpoint: &Checkpoint{Flavor: "mariadb", Position: "0-1-11"}}
	for i := range s.MaxBatchCount() {
		m := sms("fit" + time.Duration(i).String())
		m.Text, m.Data = strings.Repeat("t", 300), []byte(strings.Repeat("d", 600))
		fit.Messages = append(fit.Messages, m)
	}
	if res := mustApply(t, s, fit); res.Inserted != s.MaxBatchCount() {
		t.Fatalf("inserted %d of MaxBatchCount %d", res.Inserted, s.MaxBatchCount())
	}
}

func TestReminderReconcileThroughItsSlot(t *testing.T) {
	at1, at2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	type step struct {
		batch      Batch
		want       ApplyResult
		wantStatus map[string]Status
		wantDue    []string
	}
	sched := func(key string, at time.Time) Batch {
		return Batch{Schedules: []Schedule{{Slot: "pay/42", Message: reminder(key, at)}}}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"same key and time again changes nothing", []step{
			{sched("42@1", at1), ApplyResult{Scheduled: 1}, map[string]Status{"42@1": StatusScheduled}, []string{"42@1@1h0m0s"}},
			{sched("42@1", at1), ApplyResult{Existing: 1}, map[string]Status{"42@1": StatusScheduled}, []string{"42@1@1h0m0s"}},
		}},
		{"a new time under a new key cancels the old and schedules the new", []step{
			{sched("42@1", at1), ApplyResult{Scheduled: 1}, nil, []string{"42@1@1h0m0s"}},
			{sched("42@2", at2), ApplyResult{Rescheduled: 1},
				map[string]Status{"42@1": StatusCancelled, "42@2": StatusScheduled}, []string{"42@2@2h0m0s"}},
		}},
		{"a new time under the same key moves the reminder", []step{
			{sched("42", at1), ApplyResult{Scheduled: 1}, nil, []string{"42@1h0m0s"}},
			{sched("42", at2), ApplyResult{Rescheduled: 1}, map[string]Status{"42": StatusScheduled}, []string{"42@2h0m0s"}},
		}},
		{"cancel cancels the pending reminder", []step{
			{sched("42@1", at1), ApplyResult{Scheduled: 1}, nil, []string{"42@1@1h0m0s"}},
			{Batch{Cancels: []string{"pay/42"}}, ApplyResult{Cancelled: 1}, map[string]Status{"42@1": StatusCancelled}, nil},
			{Batch{Cancels: []string{"pay/42", "pay/unknown"}}, ApplyResult{Existing: 1}, map[string]Status{"42@1": StatusCancelled}, nil},
		}},
		{"a schedule after a rule cancel revives the reminder", []step{
			{sched("42@1", at1), ApplyResult{Scheduled: 1}, nil, nil},
			{Batch{Cancels: []string{"pay/42"}}, ApplyResult{Cancelled: 1}, nil, nil},
			{sched("42@1", at1), ApplyResult{Scheduled: 1}, map[string]Status{"42@1": StatusScheduled}, []string{"42@1@1h0m0s"}},
		}},
		{"moving back to an earlier key revives it", []step{
			{sched("42@1", at1), ApplyResult{Scheduled: 1}, nil, nil},
			{sched("42@2", at2), ApplyResult{Rescheduled: 1}, nil, nil},
			{sched("42@1", at1), ApplyResult{Rescheduled: 1},
				map[string]Status{"42@1": StatusScheduled, "42@2": StatusCancelled}, []string{"42@1@1h0m0s"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			for i, st := range tt.steps {
				if got := mustApply(t, s, &st.batch); got != st.want {
					t.Fatalf("step %d: result %+v, want %+v", i, got, st.want)
				}
				for key, want := range st.wantStatus {
					if got := statusOf(t, s, key); got != want {
						t.Fatalf("step %d: %s is %s, want %s", i, key, got, want)
					}
				}
				if st.wantDue != nil || st.wantStatus != nil {
					if got := dueEntries(t, s); !slices.Equal(got, st.wantDue) {
						t.Fatalf("step %d: due index %v, want %v", i, got, st.wantDue)
					}
				}
			}
		})
	}
}

func TestASentReminderIsNotResentAndANewTimeGetsANewMessage(t *testing.T) {
	s, clk := openTestStore(t)
	at1 := t0.Add(time.Minute)
	mustApply(t, s, &Batch{Schedules: []Schedule{{Slot: "pay/42", Message: reminder("42@1", at1)}}})
	clk.Set(at1)
	claimed := mustClaim(t, s, at1, 10)
	if err := s.Complete(context.Background(), []Outcome{{Key: claimed[0].Key, Result: ResultSent}}); err != nil {
		t.Fatal(err)
	}
	if res := mustApply(t, s, &Batch{Schedules: []Schedule{{Slot: "pay/42", Message: reminder("42@1", at1)}}}); res != (ApplyResult{Existing: 1}) {
		t.Fatalf("schedule of the sent key again = %+v, want Existing", res)
	}
	at2 := t0.Add(time.Hour)
	if res := mustApply(t, s, &Batch{Schedules: []Schedule{{Slot: "pay/42", Message: reminder("42@2", at2)}}}); res != (ApplyResult{Scheduled: 1}) {
		t.Fatalf("next reminder after a sent one = %+v, want Scheduled", res)
	}
	if st := statusOf(t, s, "42@1"); st != StatusSent {
		t.Fatalf("sent reminder is now %s", st)
	}
}

func TestReplayOfOlderBatchesConvergesToTheSameSchedule(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	// Every transaction committed in the same second (MariaDB's commit time resolution):
	// only the transaction versions order them.
	cp := func(v int) *Checkpoint { return &Checkpoint{Position: fmt.Sprint("0-1-", v), CommitTime: t0} }
	history := []*Batch{
		{Checkpoint: cp(1), Schedules: []Schedule{{Slot: "pay/1", Message: reminder("1@1", at(1)), TxnVersion: 1}, {Slot: "pay/2", Message: reminder("2@1", at(1)), TxnVersion: 1}}},
		{Checkpoint: cp(2), Schedules: []Schedule{{Slot: "pay/1", Message: reminder("1@2", at(2)), TxnVersion: 2}}},
		{Checkpoint: cp(3), Cancels: []string{"pay/2"}, CancelVersions: []uint64{3}},
		{Checkpoint: cp(4), Schedules: []Schedule{{Slot: "pay/1", Message: reminder("1@3", at(3)), TxnVersion: 4}}},
	}
	s, _ := openTestStore(t)
	for _, b := range history {
		mustApply(t, s, b)
	}
	snapshot := func() (map[string]Status, []string) {
		all, err := s.List(context.Background(), Filter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		st := map[string]Status{}
		for _, m := range all {
			st[m.Key] = m.Status
		}
		return st, dueEntries(t, s)
	}
	wantStatus, wantDue := snapshot()
	if !slices.Equal(wantDue, []string{"1@3@3h0m0s"}) {
		t.Fatalf("schedule after history = %v", wantDue)
	}
	// Replaying from any older position, batch by batch, never fires an outdated reminder
	// and ends where it was.
	for from := range history {
		for _, b := range history[from:] {
			mustApply(t, s, b)
			if _, due := snapshot(); !slices.Equal(due, wantDue) {
				t.Fatalf("replay from batch %d: due index %v mid-replay, want %v", from, due, wantDue)
			}
		}
		if gotStatus, _ := snapshot(); !reflect.DeepEqual(gotStatus, wantStatus) {
			t.Fatalf("replay from batch %d: statuses %v, want %v", from, gotStatus, wantStatus)
		}
	}
}
