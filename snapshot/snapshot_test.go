package snapshot_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"notifier/snapshot"
	"notifier/state"
)

// startWriter changes db.loans on the primary (status flips, due dates moved, deletes,
// inserts of new ids from 1_000_001) until the returned stop is called. Each existing loan is
// changed at most once: state.Apply applies a batch's schedules before its cancels, so a
// cancel and a re-schedule of one slot committed in the same batch end cancelled whatever
// their order (a state/ingest issue reported to the lead, not one of the snapshot).
func startWriter(t testing.TB, db string, maxID int) (stop func() int) {
	t.Helper()
	conn, err := cluster.Primary().DB()
	if err != nil {
		t.Fatal(err)
	}
	// A flag, not a cancelled context, stops the writer: go-mysql's driver closes the
	// connection from another goroutine when an Exec's context is cancelled (a data race).
	var stopped atomic.Bool
	var wg sync.WaitGroup
	var n int
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		next := 1_000_001
		perm := rng.Perm(maxID)
		for i := 0; !stopped.Load() && i < len(perm); i++ {
			id := 1 + perm[i]
			var q string
			switch rng.IntN(4) {
			case 0:
				q = fmt.Sprintf("UPDATE %s.loans SET status = IF(status = 'open', 'paid', 'open') WHERE id = %d", db, id)
			case 1:
				q = fmt.Sprintf("UPDATE %s.loans SET due_date = DATE_ADD(due_date, INTERVAL 1 DAY) WHERE id = %d", db, id)
			case 2:
				q = fmt.Sprintf("DELETE FROM %s.loans WHERE id = %d", db, id)
			default:
				q = fmt.Sprintf("INSERT INTO %s.loans VALUES %s", db, loanValues(next))
				next++
			}
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			n++
			time.Sleep(time.Millisecond) // spread the writes over the snapshot
		}
	}()
	return func() int { stopped.Store(true); wg.Wait(); return n }
}

// checkLoanMessages compares the store with the primary's rows: every open loan has exactly
// one scheduled reminder, at 09:00 UTC the day before its due date, and no other loan has a
// pending one; welcome messages exist only for loans inserted after the snapshot began;
// audit messages (default keys) exist once per snapshot row.
func checkLoanMessages(t *testing.T, st *state.Store, db string, snapshotRows int64) {
	t.Helper()
	conn, err := cluster.Primary().DB()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(context.Background(), "SELECT id, due_date FROM "+db+".loans WHERE status = 'open'")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{}
	for rows.Next() {
		var id int
		var due time.Time
		var raw sql.RawBytes
		if err := rows.Scan(&id, &raw); err != nil {
			t.Fatal(err)
		}
		if due, err = time.Parse("2006-01-02", string(raw)); err != nil {
			t.Fatal(err)
		}
		want["due/"+strconv.Itoa(id)] = due.AddDate(0, 0, -1).Add(9 * time.Hour)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	audit := map[string]int{}
	bySlot := map[string][]*state.Message{}
	for _, m := range allMessages(t, st) {
		bySlot[m.Slot] = append(bySlot[m.Slot], m)
		switch m.Rule {
		case "due":
			if m.Status != state.StatusScheduled {
				continue
			}
			if prev, dup := got[m.Slot]; dup {
				t.Errorf("slot %s has two pending reminders: %s and %s", m.Slot, prev, m.DueAt)
			}
			got[m.Slot] = m.DueAt.UTC()
		case "welcome":
			id, _ := strconv.Atoi(strings.TrimPrefix(m.Key, "welcome:"))
			if id < 1_000_001 {
				t.Errorf("welcome message %s for a loan that existed before the snapshot", m.Key)
			}
		case "audit":
			var d struct{ New struct{ ID json.Number } }
			if err := json.Unmarshal(m.Data, &d); err != nil {
				t.Fatal(err)
			}
			audit[d.New.ID.String()]++
			if !strings.HasPrefix(m.Origin, "snapshot:") {
				t.Errorf("audit message origin %q", m.Origin)
			}
		}
	}
	missing, wrong, extra := 0, 0, 0
	for slot, at := range want {
		g, ok := got[slot]
		switch {
		case !ok:
			missing++
			if missing < 5 {
				t.Errorf("open loan %s has no pending reminder (want %s)", slot, at)
				for _, m := range bySlot[slot] {
					t.Logf("  %s %s due %s origin %s reason %s history %+v", m.Key, m.Status, m.DueAt, m.Origin, m.Reason, m.History)
				}
			}
		case !g.Equal(at):
			wrong++
			if wrong < 5 {
				t.Errorf("reminder %s at %s, want %s", slot, g, at)
			}
		}
	}
	for slot := range got {
		if _, ok := want[slot]; !ok {
			extra++
			if extra < 5 {
				t.Errorf("pending reminder %s for a loan that is paid or gone", slot)
			}
		}
	}
	if missing+wrong+extra > 0 {
		t.Fatalf("%d open loans: %d reminders missing, %d at the wrong time, %d extra", len(want), missing, wrong, extra)
	}
	for id, n := range audit {
		if n != 1 {
			t.Errorf("row %s has %d audit messages, want 1", id, n)
		}
	}
	if int64(len(audit)) != snapshotRows {
		t.Errorf("%d audit messages, want one per snapshot row (%d)", len(audit), snapshotRows)
	}
	t.Logf("%d open loans, each with exactly its reminder; %d snapshot rows audited once", len(want), len(audit))
}

func TestSnapshotOf100kRowsWhileWritesContinue(t *testing.T) {
	db := database(t)
	const n = 100_000
	loadLoans(t, db, n)
	set := loanRules(t, db)
	st := openStore(t, t.TempDir())
	defer st.Close()

	stop := startWriter(t, db, n)
	begin := time.Now()
	res := runSnapshot(t, snapshot.Options{Source: newReader(t, 0), Store: st, Rules: set,
		Tables: []string{db + ".loans"}, MoveCheckpoint: true})
	took := time.Since(begin)
	writes := stop()
	if res.Resumed || len(res.Tables) != 1 || !res.Tables[0].Done || res.Position.GTID == "" {
		t.Fatalf("result %+v", res)
	}
	t.Logf("snapshot of %d rows in %s while %d writes ran on the primary", res.Tables[0].Rows, took.Round(time.Millisecond), writes)
	if writes == 0 {
		t.Fatal("no write ran during the snapshot")
	}
	cp, ok, err := st.Checkpoint()
	if err != nil || !ok || cp.Position != res.Position.String() {
		t.Fatalf("checkpoint %+v %v %v, want the snapshot position %s", cp, ok, err, res.Position)
	}
	pending, _, err := snapshot.Pending(st)
	if err != nil || pending {
		t.Fatalf("Pending = %v, %v after a finished run", pending, err)
	}

	catchUp(t, st, set)
	checkLoanMessages(t, st, db, res.Tables[0].Rows)
}
