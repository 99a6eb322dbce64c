package cdc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"notifier/cdc"
	"notifier/devdb"
)

const (
	benchTxns      = 1000
	benchRowsPerTx = 100
	benchRows      = benchTxns * benchRowsPerTx
)

var (
	benchOnce     sync.Once
	benchFrom     cdc.Position
	benchSetupErr error
)

// benchBinlog writes benchRows inserts in benchTxns transactions on a 7-column table once, and
// returns the replica position before them.
func benchBinlog(b *testing.B) cdc.Position {
	benchOnce.Do(func() {
		db := "bench_decode"
		p := cluster.Primary()
		ctx := context.Background()
		if benchSetupErr = p.Exec(ctx, "DROP DATABASE IF EXISTS "+db, "CREATE DATABASE "+db,
			"CREATE TABLE "+db+".orders (id BIGINT PRIMARY KEY, customer INT NOT NULL, status VARCHAR(16), "+
				"amount DECIMAL(12,2), created DATETIME, score DOUBLE, note VARCHAR(64))"); benchSetupErr != nil {
			return
		}
		benchFrom = current(b)
		var q strings.Builder
		for tx := 0; tx < benchTxns; tx++ {
			q.Reset()
			q.WriteString("INSERT INTO " + db + ".orders VALUES ")
			for i := 0; i < benchRowsPerTx; i++ {
				id := tx*benchRowsPerTx + i
				if i > 0 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "(%d,%d,'active',%d.%02d,'2026-01-02 03:04:%02d',%d.5,'note number %d')", id, id%977, id, id%100, id%60, id, id)
			}
			if benchSetupErr = p.Exec(ctx, q.String()); benchSetupErr != nil {
				return
			}
		}
		benchSetupErr = cluster.WaitReplicated(ctx)
	})
	if benchSetupErr != nil {
		b.Fatal(benchSetupErr)
	}
	return benchFrom
}

// BenchmarkDecode compares go-mysql's bare BinlogSyncer (synchronous handler, same decode
// options, rows counted and dropped) with the Reader (normalised Rows in Txns over a channel)
// on the same 100k-row binlog. Run: go test -run '^$' -bench Decode ./cdc/
func BenchmarkDecode(b *testing.B) {
	from := benchBinlog(b)

	b.Run("syncer", func(b *testing.B) {
		cpu := cpuTime()
		for b.Loop() {
			if n := rawDecode(b, from); n != benchRows {
				b.Fatalf("decoded %d rows, want %d", n, benchRows)
			}
		}
		reportRates(b, cpuTime()-cpu)
	})

	b.Run("reader", func(b *testing.B) {
		cpu := cpuTime()
		for b.Loop() {
			if n := readerDecode(b, from); n != benchRows {
				b.Fatalf("read %d rows, want %d", n, benchRows)
			}
		}
		reportRates(b, cpuTime()-cpu)
	})

	// paired alternates the two on the same binlog and reports the Reader's share of the bare
	// syncer's rate, wall-clock and CPU: neighbours' load hits both halves of a pair alike.
	b.Run("paired", func(b *testing.B) {
		var syncWall, readWall, syncCPU, readCPU time.Duration
		for b.Loop() {
			t0, c0 := time.Now(), cpuTime()
			rawDecode(b, from)
			t1, c1 := time.Now(), cpuTime()
			readerDecode(b, from)
			syncWall, syncCPU = syncWall+t1.Sub(t0), syncCPU+c1-c0
			readWall, readCPU = readWall+time.Since(t1), readCPU+cpuTime()-c1
		}
		b.ReportMetric(100*syncWall.Seconds()/readWall.Seconds(), "%wall-of-syncer")
		b.ReportMetric(100*syncCPU.Seconds()/readCPU.Seconds(), "%cpu-of-syncer")
	})
}

// reportRates reports rows per wall-clock second and rows per CPU second of this process. On a
// shared machine the wall-clock rate swings with the neighbours' load; the CPU rate (decode
// plus, for the reader, normalisation and the channel hop) is the steadier comparison.
func reportRates(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(benchRows*b.N)/cpu.Seconds(), "rows/cpu-s")
}

// cpuTime is the user+system CPU time consumed by this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countHandler struct {
	rows int
	done chan struct{}
}

func (h *countHandler) HandleEvent(e *replication.BinlogEvent) error {
	if re, ok := e.Event.(*replication.RowsEvent); ok && string(re.Table.Schema) == "bench_decode" {
		h.rows += len(re.Rows)
		if h.rows == benchRows {
			close(h.done)
		}
	}
	return nil
}

func rawDecode(b *testing.B, from cdc.Position) int {
	host, port, _ := net.SplitHostPort(cluster.Replica().Addr)
	p, _ := strconv.Atoi(port)
	h := &countHandler{done: make(chan struct{})}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: serverIDs.Add(1), Flavor: "mariadb", Host: host, Port: uint16(p), User: devdb.NotifierUser, Password: notifierPassword,
		ParseTime: true, UseDecimal: true, DisableRetrySync: true, SynchronousEventHandler: h,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer syncer.Close()
	gs, err := mysql.ParseGTIDSet("mariadb", from.GTID)
	if err != nil {
		b.Fatal(err)
	}
	st, err := syncer.StartSyncGTID(gs)
	if err != nil {
		b.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := st.GetEvent(context.Background()); errc <- err }()
	select {
	case <-h.done:
	case err := <-errc:
		b.Fatalf("syncer stopped after %d rows: %v", h.rows, err)
	case <-time.After(5 * time.Minute):
		b.Fatalf("syncer: %d rows after 5 min", h.rows)
	}
	return h.rows
}

func readerDecode(b *testing.B, from cdc.Position) int {
	opts := readerOpts("bench_decode.*")
	r, err := cdc.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan *cdc.Txn, 64)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, from, ch) }()
	rows := 0
	for rows < benchRows {
		select {
		case t := <-ch:
			rows += len(t.Changes)
		case err := <-errc:
			b.Fatalf("reader stopped after %d rows: %v", rows, err)
		case <-time.After(5 * time.Minute):
			b.Fatalf("reader: %d rows after 5 min", rows)
		}
	}
	cancel()
	<-errc
	return rows
}
