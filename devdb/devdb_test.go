package devdb_test

import (
	"context"
	"testing"
	"time"

	"notifier/devdb"
)

func TestClusterReplicatesPrimaryWritesToReplica(t *testing.T) {
	c := devdb.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := c.Primary()
	if err := p.Exec(ctx,
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO app.t VALUES (1, 'one')",
	); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	row, err := c.Replica().QueryRow(ctx, "SELECT id, name FROM app.t WHERE id = ?", 1)
	if err != nil {
		t.Fatal(err)
	}
	if row["name"] != "one" {
		t.Fatalf("replica row = %v, want name=one", row)
	}

	// The replica's own binlog carries the primary's GTIDs (log_slave_updates).
	pp, err := p.GTIDBinlogPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := c.Replica().GTIDBinlogPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pp == "" || pp != rp {
		t.Fatalf("gtid_binlog_pos primary %q, replica %q: want equal and non-empty", pp, rp)
	}
	vars, err := c.Replica().QueryRow(ctx, "SELECT @@binlog_format AS f, @@binlog_row_image AS i, @@log_slave_updates AS u, @@server_id AS id")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"f": "ROW", "i": "FULL", "u": "1", "id": "2"}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("replica %s = %q, want %q", k, vars[k], v)
		}
	}
}

func TestReplicaRestartResumesReplication(t *testing.T) {
	c := devdb.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, r := c.Primary(), c.Replica()
	port := r.Port
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "INSERT INTO app.t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if r.Port != port {
		t.Fatalf("replica port changed from %d to %d across restart", port, r.Port)
	}
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	row, err := r.QueryRow(ctx, "SELECT COUNT(*) AS n FROM app.t")
	if err != nil {
		t.Fatal(err)
	}
	if row["n"] != "2" {
		t.Fatalf("replica has %s rows after restart, want 2", row["n"])
	}
}

func TestPurgeBinlogsRemovesOldFiles(t *testing.T) {
	c := devdb.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := c.Replica()
	first, _, err := r.MasterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PurgeBinlogs(ctx); err != nil {
		t.Fatal(err)
	}
	row, err := r.QueryRow(ctx, "SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	if row["Log_name"] == first {
		t.Fatalf("first binlog %s still present after purge", first)
	}
}
