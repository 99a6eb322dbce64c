package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"notifier/state"
)

// pendingSlots returns the slots of the scheduled messages in st.
func pendingSlots(t testing.TB, st *state.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	after := ""
	for {
		page, err := st.List(context.Background(), state.Filter{Status: state.StatusScheduled, Limit: 500, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if prev, dup := out[m.Slot]; dup {
				t.Fatalf("slot %s has two pending reminders: %s and %s", m.Slot, prev, m.Key)
			}
			out[m.Slot] = m.Key
		}
		if len(page) < 500 {
			return out
		}
		after = page[len(page)-1].Key
	}
}

// Issue: state.Apply applies a batch's Schedules before its Cancels, so "cancel, then schedule
// the same slot" within one group commit ended cancelled. The rows here flip between active
// and inactive several times each, one autocommit UPDATE at a time, and are read back in a
// burst so that many binlog transactions share each Apply; the pending reminders must be
// exactly those of the rows a direct query finds active.
func TestRowsFlippedWithinOneGroupCommitEndWithTheirLastSchedule(t *testing.T) {
	db, from := binlogDatabase(t, "flip (id INT PRIMARY KEY, active TINYINT NOT NULL, due DATETIME NOT NULL)")
	set := loadRules(t, fmt.Sprintf(`
rules:
  - name: due
    table: %s.flip
    on: [insert, update]
    when: new.active == 1
    entity: string(new.id)
    at: new.due
    to: '"+4915112345678"'
    channel: sms
    template: "Reminder {{ .new.id }}"
`, db))
	const rows = 300
	var stmts []string
	var ins strings.Builder
	ins.WriteString("INSERT INTO " + db + ".flip VALUES ")
	for id := 1; id <= rows; id++ {
		if id > 1 {
			ins.WriteByte(',')
		}
		fmt.Fprintf(&ins, "(%d, 1, '2030-01-02 09:00:00')", id)
	}
	stmts = append(stmts, ins.String())
	// Each row flips 1 to 6 times (0, 1, 0, ...): it ends inactive after an odd number of
	// flips, active (cancel, then schedule again) after an even one.
	for id := 1; id <= rows; id++ {
		for f := 1; f <= 1+id%6; f++ {
			stmts = append(stmts, fmt.Sprintf("UPDATE %s.flip SET active = %d WHERE id = %d", db, f%2^1, id))
		}
	}
	primary(t, stmts...)

	st := openStore(t)
	// Batches of at most 400 operations: several group commits, each of many transactions.
	commits, _ := ingestReplica(t, db, from, Options{Store: st, Rules: set, FlushInterval: 200 * time.Millisecond, MaxBatch: 400})
	maxTxns := 0
	for _, cm := range commits {
		maxTxns = max(maxTxns, cm.Transactions)
	}
	if maxTxns < 10 {
		t.Fatalf("at most %d binlog transactions per commit: the test needs group commits", maxTxns)
	}

	want := map[string]bool{}
	sdb, err := cluster.Replica().DB()
	if err != nil {
		t.Fatal(err)
	}
	q, err := sdb.QueryContext(ctxT(t, time.Minute), "SELECT id FROM "+db+".flip WHERE active = 1")
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var id int
		if err := q.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("due/%d", id)] = true
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || len(want) == rows {
		t.Fatalf("%d of %d rows active: the flips should leave both kinds", len(want), rows)
	}
	got := pendingSlots(t, st)
	var missing, extra []string
	for slot := range want {
		if _, ok := got[slot]; !ok {
			missing = append(missing, slot)
		}
	}
	for slot, key := range got {
		if !want[slot] {
			extra = append(extra, key)
		}
		if prefix := "due:" + strings.TrimPrefix(slot, "due/") + "@2030-01-02T"; !strings.HasPrefix(key, prefix) {
			t.Errorf("slot %s holds %s, want %s…", slot, key, prefix)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(extra)
		t.Fatalf("%d commits (up to %d txns each): %d active rows without a pending reminder (%v), %d pending reminders of inactive rows (%v)",
			len(commits), maxTxns, len(missing), missing[:min(5, len(missing))], len(extra), extra[:min(5, len(extra))])
	}
}
