package ingest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"notifier/cdc"
	"notifier/devdb"
	"notifier/rules"
	"notifier/state"
)

// The benchmark's binlog: benchRows inserts on a 7-column table in transactions of 100 rows.
const (
	benchTxns      = 1000
	benchRowsPerTx = 100
	benchRows      = benchTxns * benchRowsPerTx
)

// benchDB and benchFrom cache benchBinlog's result (benchmarks run one at a time).
var (
	benchDB   string
	benchFrom cdc.Position
)

// benchBinlog writes benchRows inserts in benchTxns transactions into a database of its own on
// first use (-count n reuses them), and returns the database and the replica's position before
// the inserts.
func benchBinlog(b *testing.B) (string, cdc.Position) {
	b.Helper()
	if benchDB != "" {
		return benchDB, benchFrom
	}
	db, from := binlogDatabase(b, "orders (id BIGINT PRIMARY KEY, customer INT NOT NULL, status VARCHAR(16), "+
		"amount DECIMAL(12,2), created DATETIME, score DOUBLE, note VARCHAR(64))")
	stmts := make([]string, 0, benchTxns)
	var q strings.Builder
	for tx := range benchTxns {
		q.Reset()
		q.WriteString("INSERT INTO " + db + ".orders VALUES ")
		for i := range benchRowsPerTx {
			id := tx*benchRowsPerTx + i
			if i > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d,%d,'active',%d.%02d,'2026-01-02 03:04:%02d',%d.5,'note number %d')", id, id%977, id, id%100, id%60, id, id)
		}
		stmts = append(stmts, q.String())
	}
	primary(b, stmts...)
	replicaGTID(b) // all of it on the replica before anything is timed
	benchDB, benchFrom = db, from
	return db, from
}

// BenchmarkIngest is the issue-2 figure: row changes per second through cdc → rules → render →
// state with durable (fsynced) group commits, against the raw decode rate of go-mysql's bare
// BinlogSyncer (synchronous handler, rows counted and dropped) on the same 100k-row binlog, in
// the same run (the machine is shared, so only same-run ratios compare). One rule renders an
// SMS for every 100th row (match_1pct: 1k messages, the seed's proportion of messages to row
// changes) or every 10th row (match_10pct: 10k messages, where Badger's writes dominate).
//
//	go test -run '^$' -bench Ingest -benchtime 3x ./ingest/
//
// Metrics: raw_rows/s (syncer), rows/s (pipeline, until the checkpoint covers the last row),
// pct_of_raw, msgs/s, commits (Applies per run).
func BenchmarkIngest(b *testing.B) {
	db, from := benchBinlog(b)
	for _, every := range []int{100, 10} {
		b.Run(fmt.Sprintf("match_%dpct", 100/every), func(b *testing.B) {
			set := loadRules(b, fmt.Sprintf(`
rules:
  - name: sample
    table: %s.orders
    on: insert
    when: new.id %% %d == 0
    key: string(new.id)
    to: '"+4915112345678"'
    channel: sms
    template: "Order {{ .new.id }}: {{ money .new.amount \"EUR\" }} ({{ .new.status }})"
`, db, every))
			var raw, pipe time.Duration
			var commits, msgs int
			for b.Loop() {
				start := time.Now()
				if n := rawDecode(b, db, from); n != benchRows {
					b.Fatalf("syncer decoded %d rows, want %d", n, benchRows)
				}
				raw += time.Since(start)

				n, k, m, took := pipeline(b, db, from, set)
				pipe += took
				commits, msgs = commits+k, msgs+m
				if n != benchRows || m != benchRows/every {
					b.Fatalf("pipeline committed %d rows and %d messages, want %d and %d", n, m, benchRows, benchRows/every)
				}
			}
			rawRate := float64(benchRows*b.N) / raw.Seconds()
			rate := float64(benchRows*b.N) / pipe.Seconds()
			b.ReportMetric(rawRate, "raw_rows/s")
			b.ReportMetric(rate, "rows/s")
			b.ReportMetric(100*rate/rawRate, "pct_of_raw")
			b.ReportMetric(float64(msgs)/pipe.Seconds(), "msgs/s")
			b.ReportMetric(float64(commits)/float64(b.N), "commits")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// pipeline runs cdc.Reader → Ingester → a synced Badger store from `from` until the
// checkpoint covers the replica's last transaction; it returns the rows, the number of
// Applies, the messages stored and the time from the start of reading to the last commit.
func pipeline(b *testing.B, db string, from cdc.Position, set *rules.Set) (rows, commits, msgs int, took time.Duration) {
	st, err := state.Open(state.Options{Dir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	opts := Options{Store: st, Rules: set}
	if os.Getenv("BENCH_DEBUG") != "" {
		opts.OnCommit = func(cm Commit) {
			fmt.Fprintf(os.Stderr, "commit rows=%d ops=%d took=%s\n", cm.Rows, cm.Ops, cm.Duration)
		}
	}
	cms, took := ingestReplica(b, db, from, opts)
	for _, cm := range cms {
		rows += cm.Rows
		msgs += cm.Result.Inserted
	}
	return rows, len(cms), msgs, took
}

// countRows counts the rows of schema's row events and closes done at benchRows.
type countRows struct {
	schema string
	rows   int
	done   chan struct{}
}

func (h *countRows) HandleEvent(e *replication.BinlogEvent) error {
	if re, ok := e.Event.(*replication.RowsEvent); ok && string(re.Table.Schema) == h.schema {
		h.rows += len(re.Rows)
		if h.rows == benchRows {
			close(h.done)
		}
	}
	return nil
}

// rawDecode is the ceiling: go-mysql's BinlogSyncer with the decode options cdc uses
// (ParseTime, UseDecimal) and a synchronous handler that only counts rows.
func rawDecode(b *testing.B, db string, from cdc.Position) int {
	host, port, _ := net.SplitHostPort(cluster.Replica().Addr)
	p, _ := strconv.Atoi(port)
	h := &countRows{schema: db, done: make(chan struct{})}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: serverIDs.Add(1), Flavor: "mariadb", Host: host, Port: uint16(p),
		User: devdb.NotifierUser, Password: notifierPassword, ParseTime: true, UseDecimal: true,
		DisableRetrySync: true, SynchronousEventHandler: h, Logger: quiet,
	})
	defer syncer.Close()
	gs, err := mysql.ParseGTIDSet("mariadb", from.GTID)
	if err != nil {
		b.Fatal(err)
	}
	s, err := syncer.StartSyncGTID(gs)
	if err != nil {
		b.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := s.GetEvent(context.Background()); errc <- err }()
	select {
	case <-h.done:
	case err := <-errc:
		b.Fatalf("syncer stopped after %d rows: %v", h.rows, err)
	case <-time.After(5 * time.Minute):
		b.Fatalf("syncer: %d rows after 5 minutes", h.rows)
	}
	return h.rows
}
