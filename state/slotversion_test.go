package state

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestSlotVersions: how the version of a reminder slot decides whether an effect is a replay
// (skipped) or news (applied), step by step on one slot.
func TestSlotVersions(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	sched := func(key string, h int, v uint64) Schedule {
		return Schedule{Slot: "pay/1", Message: reminder(key, at(h)), TxnVersion: v}
	}
	tick := func(key string, h int, tk time.Time) Schedule {
		return Schedule{Slot: "pay/1", Message: reminder(key, at(h)), Version: tk}
	}
	// commit: a checkpoint whose commit time is sec seconds after t0 (it plays no part).
	commit := func(sec int) *Checkpoint {
		return &Checkpoint{Position: "p", CommitTime: t0.Add(time.Duration(sec) * time.Second)}
	}
	type step struct {
		batch   Batch
		want    ApplyResult
		wantDue []string
	}
	tests := []struct {
		name   string
		legacy time.Time // if set, the slot starts with this commit-time version (the old format), pointing at "old"
		steps  []step
	}{
		{"tie: a replay of an older transaction with the same commit time changes nothing", time.Time{}, []step{
			{Batch{Checkpoint: commit(0), Schedules: []Schedule{sched("1@1", 1, 10)}}, ApplyResult{Scheduled: 1}, []string{"1@1@1h0m0s"}},
			{Batch{Checkpoint: commit(0), Schedules: []Schedule{sched("1@24", 24, 12)}}, ApplyResult{Rescheduled: 1}, []string{"1@24@24h0m0s"}},
			{Batch{Checkpoint: commit(0), Schedules: []Schedule{sched("1@1", 1, 10)}}, ApplyResult{Existing: 1}, []string{"1@24@24h0m0s"}},
			{Batch{Checkpoint: commit(0), Schedules: []Schedule{sched("1@24", 24, 12)}}, ApplyResult{Existing: 1}, []string{"1@24@24h0m0s"}},
		}},
		{"backwards commit time: a newer transaction is applied", time.Time{}, []step{
			{Batch{Checkpoint: commit(5), Schedules: []Schedule{sched("1@1", 1, 10)}}, ApplyResult{Scheduled: 1}, []string{"1@1@1h0m0s"}},
			{Batch{Checkpoint: commit(4), Schedules: []Schedule{sched("1@2", 2, 11)}}, ApplyResult{Rescheduled: 1}, []string{"1@2@2h0m0s"}},
			{Batch{Checkpoint: commit(3), Cancels: []string{"pay/1"}, CancelVersions: []uint64{12}}, ApplyResult{Cancelled: 1}, nil},
			{Batch{Checkpoint: commit(5), Schedules: []Schedule{sched("1@2", 2, 11)}}, ApplyResult{Existing: 1}, nil},
		}},
		{"a transaction that touches a slot twice applies both, once", time.Time{}, []step{
			{Batch{Schedules: []Schedule{sched("1@1", 1, 7), sched("1@3", 3, 7)}}, ApplyResult{Scheduled: 1, Rescheduled: 1}, []string{"1@3@3h0m0s"}},
			{Batch{Schedules: []Schedule{sched("1@1", 1, 7), sched("1@3", 3, 7)}}, ApplyResult{Existing: 2}, []string{"1@3@3h0m0s"}},
			{Batch{Schedules: []Schedule{sched("1@5", 5, 8)}, Cancels: []string{"pay/1"}, CancelVersions: []uint64{8}}, ApplyResult{Rescheduled: 1, Cancelled: 1}, nil},
			{Batch{Schedules: []Schedule{sched("1@5", 5, 8)}, Cancels: []string{"pay/1"}, CancelVersions: []uint64{8}}, ApplyResult{Existing: 2}, nil},
		}},
		{"an older cancel after a newer schedule is a replay", time.Time{}, []step{
			{Batch{Schedules: []Schedule{sched("1@1", 1, 7)}}, ApplyResult{Scheduled: 1}, []string{"1@1@1h0m0s"}},
			{Batch{Cancels: []string{"pay/1"}, CancelVersions: []uint64{6}}, ApplyResult{Existing: 1}, []string{"1@1@1h0m0s"}},
		}},
		{"an unversioned effect (snapshot row) is applied and keeps the slot's version", time.Time{}, []step{
			{Batch{Schedules: []Schedule{sched("1@1", 1, 7)}}, ApplyResult{Scheduled: 1}, []string{"1@1@1h0m0s"}},
			{Batch{Schedules: []Schedule{sched("1@2", 2, 0)}}, ApplyResult{Rescheduled: 1}, []string{"1@2@2h0m0s"}},
			{Batch{Schedules: []Schedule{sched("1@1", 1, 7)}}, ApplyResult{Existing: 1}, []string{"1@2@2h0m0s"}},
			{Batch{Schedules: []Schedule{sched("1@3", 3, 8)}}, ApplyResult{Rescheduled: 1}, []string{"1@3@3h0m0s"}},
		}},
		{"sweep ticks: an older tick is skipped, the same tick applied", time.Time{}, []step{
			{Batch{Schedules: []Schedule{tick("1@2", 2, at(1))}}, ApplyResult{Scheduled: 1}, []string{"1@2@2h0m0s"}},
			{Batch{Schedules: []Schedule{tick("1@1", 1, at(0))}}, ApplyResult{Existing: 1}, []string{"1@2@2h0m0s"}},
			{Batch{Schedules: []Schedule{tick("1@3", 3, at(1))}}, ApplyResult{Rescheduled: 1}, []string{"1@3@3h0m0s"}},
		}},
		{"upgrade: a slot with a commit-time version takes the first transaction version", t0.Add(time.Hour), []step{
			{Batch{Schedules: []Schedule{sched("1@2", 2, 3)}}, ApplyResult{Rescheduled: 1}, []string{"1@2@2h0m0s"}},
			{Batch{Schedules: []Schedule{sched("1@2", 2, 3)}}, ApplyResult{Existing: 1}, []string{"1@2@2h0m0s"}},
			{Batch{Schedules: []Schedule{sched("1@3", 3, 2)}}, ApplyResult{Existing: 1}, []string{"1@2@2h0m0s"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			if !tt.legacy.IsZero() {
				mustApply(t, s, &Batch{Schedules: []Schedule{{Slot: "pay/1", Message: reminder("old", at(1))}}})
				if err := s.db.Update(func(txn *badger.Txn) error {
					return txn.Set(slotKey("pay/1"), encodeSlot(unixMs(tt.legacy), "old"))
				}); err != nil {
					t.Fatal(err)
				}
			}
			for i, st := range tt.steps {
				if got := mustApply(t, s, &st.batch); got != st.want {
					t.Fatalf("step %d: result %+v, want %+v", i, got, st.want)
				}
				if got := dueEntries(t, s); !slices.Equal(got, st.wantDue) {
					t.Fatalf("step %d: due index %v, want %v", i, got, st.wantDue)
				}
			}
		})
	}
}

func TestApplyRejectsBadTransactionVersions(t *testing.T) {
	s, _ := openTestStore(t)
	for name, b := range map[string]*Batch{
		"schedule version over the limit":   {Schedules: []Schedule{{Slot: "r/1", Message: reminder("k", t0), TxnVersion: MaxTxnVersion + 1}}},
		"cancel version over the limit":     {Cancels: []string{"r/1"}, CancelVersions: []uint64{MaxTxnVersion + 1}},
		"more cancel versions than cancels": {Cancels: []string{"r/1"}, CancelVersions: []uint64{1, 2}},
	} {
		if _, err := s.Apply(context.Background(), b); err == nil {
			t.Errorf("%s: Apply succeeded", name)
		}
	}
}
