package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"notifier/cdc"
	"notifier/devdb"
	"notifier/ingest"
	"notifier/rules"
	"notifier/snapshot"
	"notifier/state"
)

// cluster is shared by every test and benchmark of the package: starting one costs seconds.
var cluster *devdb.Cluster

const notifierPassword = "s3cret-snapshot"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(devdb.Main(m, devdb.Options{NotifierPassword: notifierPassword}, func(c *devdb.Cluster) { cluster = c }))
}

var serverIDs atomic.Uint32

func init() { serverIDs.Store(300) }

func readerOpts(addr string, rowsPerSecond int) cdc.Options {
	return cdc.Options{Addr: addr, User: devdb.NotifierUser, Password: notifierPassword,
		ServerID: serverIDs.Add(1), HeartbeatPeriod: time.Second, MinBackoff: 50 * time.Millisecond,
		MaxBackoff: time.Second, SnapshotRowsPerSecond: rowsPerSecond}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func primary(t testing.TB, stmts ...string) {
	t.Helper()
	if err := cluster.Primary().Exec(ctxT(t, 2*time.Minute), stmts...); err != nil {
		t.Fatal(err)
	}
}

func waitReplicated(t testing.TB) {
	t.Helper()
	if err := cluster.WaitReplicated(ctxT(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// database creates a fresh database named after the test on the primary.
func database(t testing.TB) string { return cluster.Database(t) }

const loansTable = `(id INT PRIMARY KEY, phone VARCHAR(20) NOT NULL, due_date DATE NOT NULL,
	status ENUM('open','paid') NOT NULL, amount DECIMAL(10,2) NOT NULL)`

// loanValues is the row of loan id as the bulk load writes it: open unless id%10 == 0.
func loanValues(id int) string {
	status := "open"
	if id%10 == 0 {
		status = "paid"
	}
	return fmt.Sprintf("(%d,'+4917%08d','%s','%s',%d.50)", id, id, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, id%300).Format("2006-01-02"), status, id%1000)
}

// loadLoans creates db.loans with ids 1..n, in multi-row INSERTs, and waits for the replica.
func loadLoans(t testing.TB, db string, n int) {
	t.Helper()
	primary(t, "CREATE TABLE "+db+".loans "+loansTable)
	const per = 2000
	var stmts []string
	for lo := 1; lo <= n; lo += per {
		var b strings.Builder
		b.WriteString("INSERT INTO " + db + ".loans VALUES ")
		for id := lo; id < lo+per && id <= n; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			b.WriteString(loanValues(id))
		}
		stmts = append(stmts, b.String())
	}
	primary(t, stmts...)
	waitReplicated(t)
}

// loanRules: a reminder the day before the due date for open loans (opted in to snapshot),
// a welcome message on insert only (not opted in: old customers get none), and an audit
// message per snapshot row with the default key (binlog-style coordinates).
func loanRules(t testing.TB, db string) *rules.Set {
	t.Helper()
	set, err := rules.Parse("loans.yaml", []byte(loanRulesSource(db)), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func loanRulesSource(db string) string {
	return fmt.Sprintf(`
defaults: {timezone: UTC, channel: sms}
rules:
  - name: due
    table: %[1]s.loans
    on: [insert, update, delete, snapshot]
    when: new.status == "open"
    at: at_local(new.due_date, -1, "09:00")
    to: new.phone
    template: "Loan {{.new.id}} is due tomorrow"
  - name: welcome
    table: %[1]s.loans
    on: [insert]
    key: new.id
    to: new.phone
    template: "Welcome, loan {{.new.id}}"
  - name: audit
    table: %[1]s.loans
    on: [snapshot]
    to: new.phone
    template: "Audit {{.new.id}}"
`, db)
}

func openStore(t testing.TB, dir string) *state.Store {
	t.Helper()
	st, err := state.Open(state.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newReader(t testing.TB, rowsPerSecond int) *cdc.Reader {
	t.Helper()
	r, err := cdc.New(readerOpts(cluster.Replica().Addr, rowsPerSecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// catchUp streams the replica's binlog from the store's checkpoint through ingest until the
// checkpoint reaches the replica's current GTID position.
func catchUp(t testing.TB, st *state.Store, set *rules.Set) {
	t.Helper()
	waitReplicated(t)
	target, err := cluster.Replica().GTIDBinlogPos(ctxT(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	cp, ok, err := st.Checkpoint()
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	from, err := cdc.ParsePosition(cp.Position)
	if err != nil {
		t.Fatal(err)
	}
	if from.GTID == target {
		return
	}
	r2, err := cdc.New(readerOpts(cluster.Replica().Addr, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reached := make(chan struct{})
	var once atomic.Bool
	ing, err := ingest.New(ingest.Options{Store: st, Rules: set, OnCommit: func(c ingest.Commit) {
		if c.Position.GTID == target && once.CompareAndSwap(false, true) {
			close(reached)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	txns := make(chan *cdc.Txn, 64)
	readDone := make(chan error, 1)
	readCtx, stopRead := context.WithCancel(ctx)
	go func() { readDone <- r2.Run(readCtx, from, txns); close(txns) }()
	ingDone := make(chan error, 1)
	go func() { ingDone <- ing.Run(ctx, txns) }()
	select {
	case <-reached:
	case err := <-ingDone:
		t.Fatalf("ingest stopped before %s: %v", target, err)
	case <-ctx.Done():
		t.Fatalf("binlog not caught up to %s", target)
	}
	stopRead()
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	if err := <-ingDone; err != nil {
		t.Fatal(err)
	}
	_ = r2.Close()
}

// allMessages lists every message in the store, in key order.
func allMessages(t testing.TB, st *state.Store) []*state.Message {
	t.Helper()
	var out []*state.Message
	f := state.Filter{Limit: 5000}
	for {
		page, err := st.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < f.Limit {
			return out
		}
		f.After = page[len(page)-1].Key
	}
}

func runSnapshot(t testing.TB, opts snapshot.Options) snapshot.Result {
	t.Helper()
	s, err := snapshot.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(ctxT(t, 3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return res
}
