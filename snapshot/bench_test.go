package snapshot_test

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"notifier/rules"
	"notifier/snapshot"
	"notifier/state"
)

// cpuTime is the process's user+system CPU time so far (the machine is shared: rows per
// CPU-second is the figure that does not depend on other load).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// questions reads the replica's Questions counter (statements received from clients).
func questions(b *testing.B) float64 {
	b.Helper()
	m, err := cluster.Replica().QueryRow(context.Background(), "SHOW GLOBAL STATUS LIKE 'Questions'")
	if err != nil {
		b.Fatal(err)
	}
	v, err := strconv.ParseFloat(m["Value"], 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkSnapshot snapshots 100,000 loans from the replica into a synced store and reports
// rows/s, rows per CPU-second of this process, and the replica's extra load in statements/s.
// "reminder": one reminder rule (90% of the rows schedule one); "reminder+audit": plus a
// message for every row.
func BenchmarkSnapshot(b *testing.B) {
	db := database(b)
	const n = 100_000
	loadLoans(b, db, n)
	full := loanRulesSource(db)
	reminder := full[:strings.Index(full, "  - name: welcome")]
	for _, bc := range []struct{ name, src string }{{"reminder", reminder}, {"reminder+audit", full}} {
		b.Run(bc.name, func(b *testing.B) {
			set, err := rules.Parse("loans.yaml", []byte(bc.src), rules.Options{})
			if err != nil {
				b.Fatal(err)
			}
			benchSnapshot(b, db, set)
		})
	}
}

func benchSnapshot(b *testing.B, db string, set *rules.Set) {
	var rows int64
	var elapsed time.Duration
	var queries float64
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := state.Open(state.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		q0 := questions(b)
		c0 := cpuTime()
		b.StartTimer()
		begin := time.Now()
		res := runSnapshot(b, snapshot.Options{Source: newReader(b, 0), Store: st, Rules: set,
			Tables: []string{db + ".loans"}, MoveCheckpoint: true})
		elapsed += time.Since(begin)
		b.StopTimer()
		cpu += cpuTime() - c0
		queries += questions(b) - q0 - 1
		rows += res.Tables[0].Rows
		_ = st.Close()
	}
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(queries/elapsed.Seconds(), "queries/s")
	b.ReportMetric(float64(rows)/cpu.Seconds(), "rows/cpu-s")
	b.ReportMetric(0, "ns/op")
}
