package ingest

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"notifier/cdc"
	"notifier/devdb"
)

// cluster is the MariaDB primary+replica shared by every test and benchmark of the package:
// starting one costs seconds. Each works in its own database (binlogDatabase), so they do not
// see each other's rows. Without MariaDB the test binary fails (devdb.Main), it never skips.
var cluster *devdb.Cluster

func TestMain(m *testing.M) {
	os.Exit(devdb.Main(m, devdb.Options{NotifierPassword: notifierPassword}, func(c *devdb.Cluster) { cluster = c }))
}

const notifierPassword = "s3cret-notifier"

// serverIDs gives every binlog client its own replication server ID.
var serverIDs atomic.Uint32

func init() { serverIDs.Store(3000) }

func ctxT(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// primary runs statements on the primary, each in its own (autocommit) transaction.
func primary(tb testing.TB, stmts ...string) {
	tb.Helper()
	if err := cluster.Primary().Exec(ctxT(tb, 5*time.Minute), stmts...); err != nil {
		tb.Fatal(err)
	}
}

// replicaGTID waits until the replica has caught up with the primary and returns its GTID
// position.
func replicaGTID(tb testing.TB) string {
	tb.Helper()
	ctx := ctxT(tb, 2*time.Minute)
	if err := cluster.WaitReplicated(ctx); err != nil {
		tb.Fatal(err)
	}
	gtid, err := cluster.Replica().GTIDBinlogPos(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return gtid
}

// binlogDatabase creates a fresh database named after the test on the primary with the given
// tables, and returns its name and the replica's position before anything else is written.
func binlogDatabase(tb testing.TB, tables ...string) (string, cdc.Position) {
	tb.Helper()
	db := cluster.Database(tb)
	var stmts []string
	for _, tbl := range tables {
		stmts = append(stmts, "CREATE TABLE "+db+"."+tbl)
	}
	primary(tb, stmts...)
	return db, cdc.Position{GTID: replicaGTID(tb)}
}

// ingestReplica runs cdc.Reader (on the replica, tables of db) → Ingester → opts.Store from
// `from` until the committed checkpoint reaches the replica's current GTID position; it
// returns the commits and the time from the start of reading to the last commit.
// Everything to read must already be replicated, so the reader delivers it in a burst and
// FlushInterval groups many binlog transactions per Apply (group commit).
func ingestReplica(tb testing.TB, db string, from cdc.Position, opts Options) ([]Commit, time.Duration) {
	tb.Helper()
	until := replicaGTID(tb)
	ctx := ctxT(tb, 5*time.Minute)
	rd, err := cdc.New(cdc.Options{Addr: cluster.Replica().Addr, User: devdb.NotifierUser, Password: notifierPassword,
		Flavor: "mariadb", ServerID: serverIDs.Add(1), Include: []string{db + ".*"}, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	defer rd.Close()
	done := make(chan struct{})
	var commits []Commit
	opts.Logger = quiet
	onCommit := opts.OnCommit
	opts.OnCommit = func(cm Commit) {
		commits = append(commits, cm)
		if onCommit != nil {
			onCommit(cm)
		}
		if cm.Position.GTID == until {
			close(done)
		}
	}
	g, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer g.Close()
	rctx, stop := context.WithCancel(ctx)
	start := time.Now()
	txns := make(chan *cdc.Txn, 1024)
	readErr := make(chan error, 1)
	go func() { readErr <- rd.Run(rctx, from, txns); close(txns) }()
	ingErr := make(chan error, 1)
	go func() { ingErr <- g.Run(context.Background(), txns) }()
	select {
	case <-done:
	case err := <-ingErr:
		stop()
		tb.Fatalf("ingest stopped before %s: %v", until, err)
	case <-ctx.Done():
		stop()
		tb.Fatalf("ingest did not reach %s (%d commits)", until, len(commits))
	}
	took := time.Since(start)
	stop()
	<-readErr
	if err := <-ingErr; err != nil {
		tb.Fatal(err)
	}
	return commits, took
}
