package snapshot_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"notifier/cdc"
	"notifier/snapshot"
	"notifier/state"
)

func TestSnapshotKilledMidwayResumesWithoutDuplicates(t *testing.T) {
	db := database(t)
	const n = 30_000
	loadLoans(t, db, n)
	dir := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "SNAPSHOT_ADDR="+cluster.Replica().Addr, "SNAPSHOT_STORE="+dir,
		"SNAPSHOT_TABLE="+db+".loans", "SNAPSHOT_RULES="+loanRulesSource(db), "SNAPSHOT_RATE=10000")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var committed int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "finished" {
			t.Fatal("the child finished before it was killed")
		}
		if v, ok := strings.CutPrefix(line, "committed "); ok {
			committed, _ = strconv.ParseInt(v, 10, 64)
			if committed >= 8000 {
				_ = cmd.Process.Kill() // SIGKILL
				break
			}
		}
	}
	_ = cmd.Wait()
	t.Logf("child SIGKILLed after committing %d of %d rows", committed, n)

	st := openStore(t, dir)
	defer st.Close()
	pending, tables, err := snapshot.Pending(st)
	if err != nil || !pending || len(tables) != 1 {
		t.Fatalf("Pending = %v %v %v, want the interrupted run", pending, tables, err)
	}
	_, ts, _, err := snapshot.Status(st)
	if err != nil || ts[db+".loans"].Rows < committed || ts[db+".loans"].Done {
		t.Fatalf("stored cursor %+v (%v), want at least %d rows, not done", ts, err, committed)
	}
	set := loanRules(t, db)
	res := runSnapshot(t, snapshot.Options{Source: newReader(t, 0), Store: st, Rules: set})
	if !res.Resumed || res.Tables[0].Rows != n {
		t.Fatalf("resumed run: %+v, want resumed with %d rows", res, n)
	}
	checkLoanMessages(t, st, db, n)
}

func TestPurgedBinlogStopsWithRecoveryHintAndReSnapshotSendsNothingTwice(t *testing.T) {
	db := database(t)
	const n = 3000
	loadLoans(t, db, n)
	set := loanRules(t, db)
	st := openStore(t, t.TempDir())
	defer st.Close()
	opts := snapshot.Options{Source: newReader(t, 0), Store: st, Rules: set, Tables: []string{db + ".loans"}, MoveCheckpoint: true}
	first := runSnapshot(t, opts)

	// Deliver everything that exists so far, reminders included (claimed as if it were 2028).
	sent := map[string]bool{}
	for {
		ms, err := st.Claim(context.Background(), time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		outs := make([]state.Outcome, len(ms))
		for i, m := range ms {
			outs[i] = state.Outcome{Key: m.Key, Result: state.ResultSent, At: time.Now()}
			sent[m.Key] = true
		}
		if err := st.Complete(context.Background(), outs); err != nil {
			t.Fatal(err)
		}
	}
	// Changes after the checkpoint, then the replica's binlog is purged.
	primary(t, "UPDATE "+db+".loans SET due_date = DATE_ADD(due_date, INTERVAL 7 DAY) WHERE id <= 10")
	waitReplicated(t)
	if err := cluster.Replica().PurgeBinlogs(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}

	// The service's reader stops with a clear error naming the recovery.
	r, err := cdc.New(readerOpts(cluster.Replica().Addr, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctxT(t, time.Minute), first.Position, make(chan *cdc.Txn, 16)) }()
	select {
	case err = <-runErr:
	case <-time.After(time.Minute):
		t.Fatal("the reader did not stop on a purged position")
	}
	if !errors.Is(err, cdc.ErrPositionPurged) || !strings.Contains(err.Error(), "notifier snapshot --all") {
		t.Fatalf("reader error %v, want ErrPositionPurged with the recovery command", err)
	}
	t.Logf("reader stopped: %v", err)

	// Recovery: re-snapshot every table; the checkpoint moves to the new snapshot's position.
	second := runSnapshot(t, opts)
	if second.Resumed || second.Position == first.Position {
		t.Fatalf("re-snapshot %+v, want a new run at a new position", second)
	}
	cp, _, err := st.Checkpoint()
	if err != nil || cp.Position != second.Position.String() {
		t.Fatalf("checkpoint %q (%v), want %s", cp.Position, err, second.Position)
	}
	for _, m := range allMessages(t, st) {
		if sent[m.Key] && m.Status != state.StatusSent {
			t.Errorf("message %s was sent, now %s", m.Key, m.Status)
		}
		if !sent[m.Key] && m.Status != state.StatusCancelled {
			// Only the 10 moved reminders are new (their fire time changed).
			id, _ := strconv.Atoi(strings.TrimPrefix(m.Slot, "due/"))
			if m.Rule != "due" || id < 1 || id > 10 {
				t.Errorf("re-snapshot created %s (%s, rule %s)", m.Key, m.Status, m.Rule)
			}
		}
	}
	catchUp(t, st, set) // streaming resumes from the new checkpoint
}
