package cdc_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"notifier/cdc"
)

func snapshotAll(t *testing.T, r *cdc.Reader, table string, after []any, pageSize int) (cdc.Position, []*cdc.Txn, [][]any) {
	t.Helper()
	var pages []*cdc.Txn
	var cursors [][]any
	pos, err := r.Snapshot(ctxT(t), table, after, pageSize, func(txn *cdc.Txn, cursor []any) error {
		pages = append(pages, txn)
		cursors = append(cursors, cursor)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pos, pages, cursors
}

func newReader(t *testing.T, opts cdc.Options) *cdc.Reader {
	t.Helper()
	r, err := cdc.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestSnapshotRowsEqualTheirBinlogInserts(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".types "+typesTable)
	from := current(t)
	primary(t, "INSERT INTO "+db+".types VALUES "+typesRow, "INSERT INTO "+db+".types (id) VALUES (2)")
	binlog := startStream(t, readerOpts(db+".*"), from).next(2)
	waitReplicated(t)

	_, pages, _ := snapshotAll(t, newReader(t, readerOpts()), db+".types", nil, 0)
	if len(pages) != 1 || len(pages[0].Changes) != 2 {
		t.Fatalf("snapshot pages %+v, want one page of 2 rows", pages)
	}
	for i, c := range pages[0].Changes {
		if c.Op != cdc.OpSnapshot || c.Before != nil || c.Schema != db || c.Table != "types" {
			t.Errorf("snapshot change %d: %+v", i, c)
		}
		if !reflect.DeepEqual(c.After, binlog[i].Changes[0].After) {
			t.Errorf("row %d: snapshot and binlog differ", i)
			compareRow(t, c.After, binlog[i].Changes[0].After)
		}
	}
}

func TestSnapshotPagesInKeyOrderIsConsistentAndResumes(t *testing.T) {
	db := database(t)
	// A composite key with a case-insensitive string: the cursor must follow the collation.
	primary(t, "CREATE TABLE "+db+".t (g INT, name VARCHAR(10), v INT, PRIMARY KEY (g, name)) COLLATE utf8mb4_general_ci")
	var want [][2]any
	for g := 1; g <= 3; g++ {
		for _, name := range []string{"b", "A", "c", "D", "e", "F", "g", "H"} {
			primary(t, fmt.Sprintf("INSERT INTO %s.t VALUES (%d, '%s', %d)", db, g, name, g*100))
		}
		for _, name := range []string{"A", "b", "c", "D", "e", "F", "g", "H"} {
			want = append(want, [2]any{int64(g), name})
		}
	}
	waitReplicated(t)
	r := newReader(t, readerOpts())

	var got [][2]any
	var cursors [][]any
	var pages []*cdc.Txn
	pos, err := r.Snapshot(ctxT(t), db+".t", nil, 10, func(txn *cdc.Txn, cursor []any) error {
		if len(pages) == 0 {
			// A write after the snapshot opened is not in it, but in the binlog after its position.
			primary(t, "INSERT INTO "+db+".t VALUES (0, 'late', 1)")
			waitReplicated(t)
		}
		pages = append(pages, txn)
		cursors = append(cursors, cursor)
		for _, c := range txn.Changes {
			got = append(got, [2]any{c.After["g"], c.After["name"]})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows in order %v, want %v", got, want)
	}
	if len(pages) != 3 || pages[0].Position != pos || pos.GTID == "" || pos.File == "" {
		t.Fatalf("%d pages at %v, snapshot position %v", len(pages), pages[0].Position, pos)
	}
	if want := []any{int64(2), "b"}; !reflect.DeepEqual(cursors[0], want) {
		t.Fatalf("first cursor %v, want %v", cursors[0], want)
	}
	late := startStream(t, readerOpts(db+".*"), pos).next(1)[0].Changes[0]
	if late.Op != cdc.OpInsert || late.After["name"] != "late" {
		t.Fatalf("first binlog change after the snapshot: %+v, want the late insert", late)
	}

	// Resuming after the first page yields exactly the rest (now also seeing the late row first
	// is impossible: it sorts before the cursor).
	_, rest, _ := snapshotAll(t, r, db+".t", cursors[0], 10)
	var resumed [][2]any
	for _, p := range rest {
		for _, c := range p.Changes {
			resumed = append(resumed, [2]any{c.After["g"], c.After["name"]})
		}
	}
	if !reflect.DeepEqual(resumed, want[10:]) {
		t.Fatalf("resumed rows %v, want %v", resumed, want[10:])
	}
}

func TestSnapshotStopsOnCallbackErrorAndRejectsTablesWithoutKey(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".nokey (v INT)", "CREATE TABLE "+db+".t (id INT PRIMARY KEY)",
		"INSERT INTO "+db+".t VALUES (1), (2), (3)")
	waitReplicated(t)
	r := newReader(t, readerOpts())
	if _, err := r.Snapshot(ctxT(t), db+".nokey", nil, 10, func(*cdc.Txn, []any) error { return nil }); err == nil {
		t.Error("snapshot of a table without primary key: no error")
	}
	stop := fmt.Errorf("enough")
	calls := 0
	_, err := r.Snapshot(context.Background(), db+".t", nil, 1, func(*cdc.Txn, []any) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("Snapshot returned %v after %d calls, want the callback's error after 1", err, calls)
	}
}
