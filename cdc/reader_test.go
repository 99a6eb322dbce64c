package cdc_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"notifier/cdc"
)

func TestRowChangesArriveAsOrderedTransactions(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY, name VARCHAR(20), n BIGINT)")
	from := current(t)
	s := startStream(t, readerOpts(db+".*"), from)

	primaryTxn(t,
		"INSERT INTO "+db+".t VALUES (1, 'one', 10), (2, 'two', 20)",
		"UPDATE "+db+".t SET name = 'uno' WHERE id = 1",
	)
	primary(t, "DELETE FROM "+db+".t WHERE id = 2")
	txns := s.next(2)

	want := [][]cdc.Change{
		{
			{Schema: db, Table: "t", Op: cdc.OpInsert, After: cdc.Row{"id": int64(1), "name": "one", "n": int64(10)}, Index: 0},
			{Schema: db, Table: "t", Op: cdc.OpInsert, After: cdc.Row{"id": int64(2), "name": "two", "n": int64(20)}, Index: 1},
			{Schema: db, Table: "t", Op: cdc.OpUpdate, Before: cdc.Row{"id": int64(1), "name": "one", "n": int64(10)},
				After: cdc.Row{"id": int64(1), "name": "uno", "n": int64(10)}, Index: 1 << 32},
		},
		{
			{Schema: db, Table: "t", Op: cdc.OpDelete, Before: cdc.Row{"id": int64(2), "name": "two", "n": int64(20)}, Index: 0},
		},
	}
	for i, txn := range txns {
		if !reflect.DeepEqual(txn.Changes, want[i]) {
			t.Errorf("txn %d changes:\n got %+v\nwant %+v", i, txn.Changes, want[i])
		}
		if txn.Position.GTID == "" || txn.Position.File == "" || txn.Position.Pos == 0 {
			t.Errorf("txn %d position %q: want gtid and file:pos", i, txn.Position)
		}
		if txn.CommitTime.IsZero() || txn.CommitTime.Location() != time.UTC {
			t.Errorf("txn %d commit time %v: want a UTC time", i, txn.CommitTime)
		}
	}
	if txns[0].Position.GTID == txns[1].Position.GTID || txns[1].Position.Pos <= txns[0].Position.Pos {
		t.Errorf("positions do not advance: %s then %s", txns[0].Position, txns[1].Position)
	}
	end := current(t)
	if txns[1].Position.GTID != end.GTID {
		t.Errorf("last txn position %s, replica now at %s", txns[1].Position, end)
	}
	s.quiet()
}

func TestResumeFromTxnPositionYieldsExactlyTheFollowingTransactions(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY, v VARCHAR(10))")
	from := current(t)
	for i := 1; i <= 5; i++ {
		primary(t, fmt.Sprintf("INSERT INTO %s.t VALUES (%d, 'v%d')", db, i, i))
	}
	all := startStream(t, readerOpts(db+".*"), from).next(5)

	for _, k := range []int{0, 2, 3} {
		p := all[k].Position
		for name, resume := range map[string]cdc.Position{
			"gtid":     {GTID: p.GTID},
			"file:pos": {File: p.File, Pos: p.Pos},
		} {
			t.Run(fmt.Sprintf("after txn %d by %s", k, name), func(t *testing.T) {
				s := startStream(t, readerOpts(db+".*"), resume)
				got := s.next(len(all) - k - 1)
				for i, txn := range got {
					w := all[k+1+i]
					if !reflect.DeepEqual(txn.Changes, w.Changes) || txn.Position.GTID != w.Position.GTID ||
						txn.Position.File != w.Position.File || txn.Position.Pos != w.Position.Pos {
						t.Errorf("txn %d:\n got %s %+v\nwant %s %+v", i, txn.Position, txn.Changes, w.Position, w.Changes)
					}
				}
				s.quiet()
			})
		}
	}
}

func TestIncludeAndExcludePatternsSelectTables(t *testing.T) {
	db := database(t)
	primary(t,
		"CREATE TABLE "+db+".orders (id INT PRIMARY KEY)",
		"CREATE TABLE "+db+".order_items (id INT PRIMARY KEY)",
		"CREATE TABLE "+db+".audit (id INT PRIMARY KEY)",
	)
	from := current(t)
	opts := readerOpts(db + ".order*")
	opts.Exclude = []string{db + ".*_items"}
	s := startStream(t, opts, from)
	primaryTxn(t,
		"INSERT INTO "+db+".audit VALUES (1)",
		"INSERT INTO "+db+".order_items VALUES (1)",
		"INSERT INTO "+db+".orders VALUES (1)",
	)
	primary(t, "INSERT INTO "+db+".audit VALUES (2)", "INSERT INTO "+db+".orders VALUES (2)")
	txns := s.next(2)
	var got []string
	for _, txn := range txns {
		for _, c := range txn.Changes {
			got = append(got, fmt.Sprintf("%s.%s:%v:%d", c.Schema, c.Table, c.After["id"], c.Index))
		}
	}
	// Index counts the rows events of unwatched tables too, so it does not depend on the filter.
	want := []string{db + ".orders:1:8589934592", db + ".orders:2:0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	s.quiet()
}

func TestUnwatchedTransactionsMoveThePositionWithProgressMarkers(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY)")
	from := current(t)
	var clock atomic.Int64 // seconds; the reader's pacing clock stands still until advanced
	clock.Store(1_000_000)
	opts := readerOpts("nothing_here.*")
	opts.Now = func() time.Time { return time.Unix(clock.Load(), 0) }
	s := startStream(t, opts, from)
	for i := 0; i < 20; i++ {
		primary(t, fmt.Sprintf("INSERT INTO %s.t VALUES (%d)", db, i))
	}
	end := current(t)
	// The first unwatched transaction is reported at once, the rest wait for the interval
	// (2 s by default); once the clock moves on, the next heartbeat reports the latest.
	first := <-s.ch
	if len(first.Changes) != 0 || first.Position.GTID == "" {
		t.Fatalf("first marker %+v: want a progress-only Txn with a position", first)
	}
	select {
	case txn := <-s.ch:
		if txn.Position.GTID != end.GTID {
			t.Fatalf("second marker at %s before the clock moved, want none", txn.Position)
		}
		// Only possible when the first marker already was the last transaction.
	case <-time.After(500 * time.Millisecond):
	}
	clock.Add(3)
	select {
	case txn := <-s.ch:
		if len(txn.Changes) != 0 || txn.Position.GTID != end.GTID {
			t.Fatalf("marker after the interval: %+v, want position %s", txn, end)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no progress marker reached %s", end)
	}
}

func TestAlterTableMidStreamUsesTheNewColumns(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY, a VARCHAR(5))")
	from := current(t)
	s := startStream(t, readerOpts(db+".*"), from)
	primary(t, "INSERT INTO "+db+".t VALUES (1, 'x')")
	first := s.next(1)[0] // read before the ALTER runs
	primary(t,
		"ALTER TABLE "+db+".t ADD COLUMN extra INT AFTER id",
		"INSERT INTO "+db+".t VALUES (2, 7, 'y')",
	)
	second := s.next(1)[0]
	if want := (cdc.Row{"id": int64(1), "a": "x"}); !reflect.DeepEqual(first.Changes[0].After, want) {
		t.Errorf("before ALTER: %v, want %v", first.Changes[0].After, want)
	}
	if want := (cdc.Row{"id": int64(2), "extra": int64(7), "a": "y"}); !reflect.DeepEqual(second.Changes[0].After, want) {
		t.Errorf("after ALTER: %v, want %v", second.Changes[0].After, want)
	}

	// Replaying the old row now that the table has three columns cannot attribute its values.
	replay := startStream(t, readerOpts(db+".*"), from)
	mustErrorIs(t, replay.fatal(), cdc.ErrSchemaMismatch, db+".t", "2 columns", "3", "re-snapshot")
}

func TestReplicaRestartMidStreamLosesAndDuplicatesNothing(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY)")
	from := current(t)
	s := startStream(t, readerOpts(db+".*"), from)
	const n = 60
	for i := 0; i < n; i++ {
		if i == 20 {
			if err := cluster.Replica().Stop(); err != nil {
				t.Fatal(err)
			}
		}
		if i == 40 {
			if err := cluster.Replica().Start(); err != nil {
				t.Fatal(err)
			}
		}
		primary(t, fmt.Sprintf("INSERT INTO %s.t VALUES (%d)", db, i))
	}
	txns := s.next(n)
	for i, txn := range txns {
		if len(txn.Changes) != 1 || txn.Changes[0].After["id"] != int64(i) {
			t.Fatalf("txn %d: %+v, want the insert of id %d", i, txn.Changes, i)
		}
	}
	s.quiet()
}

func TestPurgedPositionIsFatalAndNamesThePosition(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY)")
	from := current(t)
	primary(t, "INSERT INTO "+db+".t VALUES (1)")
	waitReplicated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cluster.Replica().PurgeBinlogs(ctx); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]cdc.Position{
		"gtid":     {GTID: from.GTID},
		"file:pos": {File: from.File, Pos: from.Pos},
	} {
		t.Run(name, func(t *testing.T) {
			s := startStream(t, readerOpts(db+".*"), p)
			mustErrorIs(t, s.fatal(), cdc.ErrPositionPurged, p.String(), "notifier snapshot --all")
		})
	}
}

func TestRunReturnsNilAfterClose(t *testing.T) {
	r, err := cdc.New(readerOpts())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background(), cdc.Position{}, make(chan *cdc.Txn)) }()
	time.Sleep(200 * time.Millisecond) // let it connect; Close must also work before that
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Close: %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := r.Run(context.Background(), cdc.Position{}, nil); err != cdc.ErrClosed {
		t.Fatalf("Run on a closed reader: %v, want ErrClosed", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts cdc.Options
		want string
	}{
		{cdc.Options{Addr: "127.0.0.1:3306", User: "u"}, "server id is 0"},
		{cdc.Options{Addr: "localhost", User: "u", ServerID: 5}, "addr"},
		{cdc.Options{Addr: "127.0.0.1:3306", User: "u", ServerID: 5, Flavor: "pg"}, "flavor"},
		{cdc.Options{Addr: "127.0.0.1:3306", User: "u", ServerID: 5, Include: []string{"nodot"}}, "schema.table"},
	} {
		_, err := cdc.New(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error mentioning %q", tc.opts, err, tc.want)
		}
	}
}

func TestCreateTableSelectAndNonTransactionalTablesAreWholeTransactions(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".src (id INT PRIMARY KEY)", "INSERT INTO "+db+".src VALUES (1), (2)")
	from := current(t)
	primary(t,
		"CREATE TABLE "+db+".copy SELECT * FROM "+db+".src",
		"CREATE TABLE "+db+".m (id INT) ENGINE=MyISAM",
		"INSERT INTO "+db+".m VALUES (7)",
	)
	describe := func(txns []*cdc.Txn) []string {
		var out []string
		for _, txn := range txns {
			var s []string
			for _, c := range txn.Changes {
				s = append(s, fmt.Sprintf("%s %s %v", c.Op, c.Table, c.After["id"]))
			}
			out = append(out, strings.Join(s, ", "))
		}
		return out
	}
	txns := startStream(t, readerOpts(db+".*"), from).next(2)
	want := []string{"insert copy 1, insert copy 2", "insert m 7"}
	if got := describe(txns); !reflect.DeepEqual(got, want) {
		t.Fatalf("transactions %q, want %q", got, want)
	}
	// Resuming after CREATE … SELECT neither repeats nor skips anything.
	s := startStream(t, readerOpts(db+".*"), cdc.Position{GTID: txns[0].Position.GTID})
	if got := describe(s.next(1)); !reflect.DeepEqual(got, want[1:]) {
		t.Fatalf("after resuming: %q, want %q", got, want[1:])
	}
	s.quiet()
}

func TestReplicaCrashDuringLargeTransactionsLosesAndDuplicatesNothing(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY, pad VARCHAR(200))")
	from := current(t)
	s := startStream(t, readerOpts(db+".*"), from)
	const txns, rows = 30, 300 // each transaction spans several rows events
	pad := strings.Repeat("x", 200)
	for i := 0; i < txns; i++ {
		var vals []string
		for j := 0; j < rows; j++ {
			vals = append(vals, fmt.Sprintf("(%d, '%s')", i*rows+j, pad))
		}
		primary(t, "INSERT INTO "+db+".t VALUES "+strings.Join(vals, ","))
		if i == 10 {
			if err := cluster.Replica().Kill(); err != nil {
				t.Fatal(err)
			}
			if err := cluster.Replica().Start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := s.next(txns)
	next := 0
	for i, txn := range got {
		if len(txn.Changes) != rows {
			t.Fatalf("txn %d has %d changes, want %d", i, len(txn.Changes), rows)
		}
		for _, c := range txn.Changes {
			if c.After["id"] != int64(next) {
				t.Fatalf("txn %d: id %v, want %d", i, c.After["id"], next)
			}
			next++
		}
	}
	s.quiet()
}

func TestChangedColumnTypeIsASchemaMismatch(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY, a INT)")
	from := current(t)
	primary(t, "INSERT INTO "+db+".t VALUES (1, 5)", "ALTER TABLE "+db+".t MODIFY a VARCHAR(10)")
	waitReplicated(t)
	// Same column count, different type: replaying the old row would misread it.
	s := startStream(t, readerOpts(db+".*"), from)
	mustErrorIs(t, s.fatal(), cdc.ErrSchemaMismatch, db+".t", "column 2 (a)", "re-snapshot")
}

func TestNonFullRowImageIsRefusedAtStart(t *testing.T) {
	set := func(v string) {
		if err := cluster.Replica().Exec(ctxT(t), "SET GLOBAL binlog_row_image = '"+v+"'"); err != nil {
			t.Fatal(err)
		}
	}
	set("MINIMAL")
	defer set("FULL")
	s := startStream(t, readerOpts(), cdc.Position{})
	mustErrorIs(t, s.fatal(), cdc.ErrRowImage, "binlog_row_image=MINIMAL", "FULL")
}

func TestKilledBinlogConnectionIsResumedFromTheLastTransaction(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".t (id INT PRIMARY KEY)")
	from := current(t)
	s := startStream(t, readerOpts(db+".*"), from)
	const n = 40
	kills := 0
	for i := 0; i < n; i++ {
		var vals []string
		for j := 0; j < 50; j++ {
			vals = append(vals, fmt.Sprintf("(%d)", i*50+j))
		}
		primary(t, "INSERT INTO "+db+".t VALUES "+strings.Join(vals, ","))
		if i%10 == 5 {
			kills += killDumpThreads(t)
		}
	}
	if kills == 0 {
		t.Fatal("no binlog dump connection found to kill")
	}
	next := 0
	for i, txn := range s.next(n) {
		for _, c := range txn.Changes {
			if c.After["id"] != int64(next) {
				t.Fatalf("txn %d: id %v, want %d", i, c.After["id"], next)
			}
			next++
		}
	}
	s.quiet()
}

// killDumpThreads kills the replica's binlog dump connections (our readers') and returns how
// many it killed.
func killDumpThreads(t *testing.T) int {
	t.Helper()
	rdb, err := cluster.Replica().DB()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := rdb.QueryContext(ctxT(t), "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		_, _ = rdb.ExecContext(ctxT(t), fmt.Sprintf("KILL %d", id))
	}
	return len(ids)
}
