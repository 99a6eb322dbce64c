package ingest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"notifier/cdc"
	"notifier/devdb"
	"notifier/rules"
	"notifier/state"
)

// The benchmark's binlog: benchRows inserts on a 7-column table in transactions of 100 rows,
// on a devdb cluster started on first use (TestMain stops it).
const (
	benchTxns      = 1000
	benchRowsPerTx = 100
	benchRows      = benchTxns * benchRowsPerTx
	benchDB        = "bench_ingest"
)

var (
	clusterOnce  sync.Once
	testCluster  *devdb.Cluster // started on first use by cluster(); TestMain stops it
	clusterErr   error
	benchOnce    sync.Once
	benchCluster *devdb.Cluster
	benchFrom    cdc.Position
	benchErr     error
	benchIDs     atomic.Uint32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testCluster != nil {
		_ = testCluster.Stop()
	}
	os.Exit(code)
}

// cluster returns the package's devdb primary+replica, starting it on first use; it fails
// the test loudly when MariaDB cannot be started.
func cluster(tb testing.TB) *devdb.Cluster {
	tb.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		testCluster, clusterErr = devdb.Start(ctx, devdb.Options{})
	})
	if clusterErr != nil {
		tb.Fatalf("ingest tests need a MariaDB primary+replica (devdb): %v", clusterErr)
	}
	return testCluster
}

func benchBinlog(b *testing.B) (*devdb.Cluster, cdc.Position) {
	benchOnce.Do(func() {
		ctx := context.Background()
		benchCluster = cluster(b)
		p := benchCluster.Primary()
		if benchErr = p.Exec(ctx, "CREATE DATABASE "+benchDB,
			"CREATE TABLE "+benchDB+".orders (id BIGINT PRIMARY KEY, customer INT NOT NULL, status VARCHAR(16), "+
				"amount DECIMAL(12,2), created DATETIME, score DOUBLE, note VARCHAR(64))"); benchErr != nil {
			return
		}
		if benchErr = benchCluster.WaitReplicated(ctx); benchErr != nil {
			return
		}
		var gtid string
		if gtid, benchErr = benchCluster.Replica().GTIDBinlogPos(ctx); benchErr != nil {
			return
		}
		benchFrom = cdc.Position{GTID: gtid}
		var q strings.Builder
		for tx := range benchTxns {
			q.Reset()
			q.WriteString("INSERT INTO " + benchDB + ".orders VALUES ")
			for i := range benchRowsPerTx {
				id := tx*benchRowsPerTx + i
				if i > 0 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%d,%d,'active',%d.%02d,'2026-01-02 03:04:%02d',%d.5,'note number %d')", id, id%977, id, id%100, id%60, id, id)
			}
			if benchErr = p.Exec(ctx, q.String()); benchErr != nil {
				return
			}
		}
		benchErr = benchCluster.WaitReplicated(ctx)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchCluster, benchFrom
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
	c, from := benchBinlog(b)
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
`, benchDB, every))
			var raw, pipe time.Duration
			var commits, msgs int
			for b.Loop() {
				start := time.Now()
				if n := rawDecode(b, c, from); n != benchRows {
					b.Fatalf("syncer decoded %d rows, want %d", n, benchRows)
				}
				raw += time.Since(start)

				n, k, m, took := pipeline(b, c, from, set)
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
func pipeline(b *testing.B, c *devdb.Cluster, from cdc.Position, set *rules.Set) (rows, commits, msgs int, took time.Duration) {
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
	cms, took := ingestReplica(b, c, benchDB, from, opts)
	for _, cm := range cms {
		rows += cm.Rows
		msgs += cm.Result.Inserted
	}
	return rows, len(cms), msgs, took
}

type countRows struct {
	rows int
	done chan struct{}
}

func (h *countRows) HandleEvent(e *replication.BinlogEvent) error {
	if re, ok := e.Event.(*replication.RowsEvent); ok && string(re.Table.Schema) == benchDB {
		h.rows += len(re.Rows)
		if h.rows == benchRows {
			close(h.done)
		}
	}
	return nil
}

// rawDecode is the ceiling: go-mysql's BinlogSyncer with the decode options cdc uses
// (ParseTime, UseDecimal) and a synchronous handler that only counts rows.
func rawDecode(b *testing.B, c *devdb.Cluster, from cdc.Position) int {
	host, port, _ := net.SplitHostPort(c.Replica().Addr)
	p, _ := strconv.Atoi(port)
	h := &countRows{done: make(chan struct{})}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 3000 + benchIDs.Add(1), Flavor: "mariadb", Host: host, Port: uint16(p),
		User: devdb.NotifierUser, Password: "notifier", ParseTime: true, UseDecimal: true,
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
