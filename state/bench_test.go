package state

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// benchMessage is a typical SMS reminder: ~160 characters of text and ~300 bytes of row data.
func benchMessage(i int, due time.Time) *Message {
	return &Message{
		Key: fmt.Sprintf("repay:%09d:2026-12-01", i), Rule: "repayment_reminder", Channel: "sms", To: "+4917612345678",
		Text:   strings.Repeat("Ihre Rate von 120,00 EUR ist am 01.12. fällig. ", 4)[:160],
		Data:   []byte(`{"new":{"id":` + fmt.Sprint(i) + `,"amount":"120.00","due_date":"2026-12-01","status":"open","customer_id":12345,"phone":"+4917612345678","name":"Erika Mustermann"},"op":"update","table":"loans"}`),
		Status: StatusScheduled, DueAt: due, Origin: "0-1-123456#7",
	}
}

// BenchmarkApply: synced Apply of send-now messages or reminders (reconciled through their
// slot) in grouped batches, one Badger transaction each.
func BenchmarkApply(b *testing.B) {
	for _, kind := range []string{"messages", "reminders"} {
		for _, group := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", kind, group), func(b *testing.B) {
				s, _ := openTestStore(b)
				ctx := context.Background()
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i += group {
					batch := &Batch{Checkpoint: &Checkpoint{Position: fmt.Sprint(i), CommitTime: t0}}
					for j := i; j < min(i+group, b.N); j++ {
						m := benchMessage(j, t0.Add(time.Hour))
						if kind == "messages" {
							m.Status, m.DueAt = StatusReady, time.Time{}
							batch.Messages = append(batch.Messages, m)
						} else {
							batch.Schedules = append(batch.Schedules, Schedule{Slot: fmt.Sprint("repayment_reminder/", j), Message: m})
						}
					}
					if _, err := s.Apply(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
			})
		}
	}
}

// BenchmarkClaimComplete: messages/s through Claim + Complete(sent), both synced, as the
// sender runs them (claim a batch, complete it in one call).
func BenchmarkClaimComplete(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, _ := openTestStore(b)
			ctx := context.Background()
			bulkLoad(b, s, b.N, func(i int) *Message { return benchMessage(i, t0) })
			now := t0.Add(time.Second)
			b.ResetTimer()
			cpu0 := cpuTime()
			done := 0
			outs := make([]Outcome, 0, batch)
			for done < b.N {
				ms, err := s.Claim(ctx, now, batch)
				if err != nil {
					b.Fatal(err)
				}
				if len(ms) == 0 {
					b.Fatalf("claimed %d of %d", done, b.N)
				}
				outs = outs[:0]
				for _, m := range ms {
					outs = append(outs, Outcome{Key: m.Key, Result: ResultSent, At: now, ProviderID: "SM0123456789"})
				}
				if err := s.Complete(ctx, outs); err != nil {
					b.Fatal(err)
				}
				done += len(ms)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

// BenchmarkDueBurst: 1,000,000 pending reminders, 200,000 of them due at the same second
// (seed 003: coupon reminders one minute before a time). Reports the seconds to claim all 200k
// (synced, in Claim batches of 5000), the bytes on disk per pending reminder and the time to
// reopen the store (Open counts the pending messages). It takes
// about a minute; run it alone: go test -run XXX -bench DueBurst -benchtime 1x ./state/
func BenchmarkDueBurst(b *testing.B) {
	const total, burst = 1_000_000, 200_000
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		quiet := slog.New(slog.DiscardHandler) // Flatten warns "Unable to fill tables"
		s, err := Open(Options{Dir: dir, Logger: quiet, Now: func() time.Time { return t0 }})
		if err != nil {
			b.Fatal(err)
		}
		fire := t0.Add(time.Hour)
		bulkLoad(b, s, total, func(i int) *Message {
			if i < burst {
				return benchMessage(i, fire.Add(time.Duration(i%1000)*time.Millisecond))
			}
			return benchMessage(i, fire.Add(time.Duration(i)*time.Second)) // the rest spread over 9 days
		})
		// Reminders written over days sit compacted in the lower levels, not in L0.
		if err := s.db.Flatten(2); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		size := dirSize(b, dir)
		openStart := time.Now()
		if s, err = Open(Options{Dir: dir, Logger: quiet, Now: func() time.Time { return fire }}); err != nil {
			b.Fatal(err)
		}
		openTime := time.Since(openStart) // counts the pending messages from the due index
		b.StartTimer()
		stopProfile := startProfile(b)
		start, cpu0 := time.Now(), cpuTime()
		claimed := 0
		for {
			ms, err := s.Claim(context.Background(), fire.Add(time.Second), 5000)
			if err != nil {
				b.Fatal(err)
			}
			if len(ms) == 0 {
				break
			}
			claimed += len(ms)
		}
		elapsed, cpu := time.Since(start), cpuTime()-cpu0
		stopProfile()
		b.StopTimer()
		if claimed != burst {
			b.Fatalf("claimed %d, want %d", claimed, burst)
		}
		b.ReportMetric(elapsed.Seconds(), "s/200k-claim")
		b.ReportMetric(float64(burst)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(cpu.Seconds(), "cpu-s/200k-claim")
		b.ReportMetric(float64(size)/total, "disk-B/reminder")
		b.ReportMetric(openTime.Seconds(), "s/open")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// bulkLoad writes n scheduled/ready messages with their due entries through a Badger
// WriteBatch (not atomic; test set-up only), then reloads the status counts.
func bulkLoad(tb testing.TB, s *Store, n int, gen func(i int) *Message) {
	tb.Helper()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range n {
		m := gen(i)
		m.CreatedAt, m.UpdatedAt = t0, t0
		meta := metaOf(m)
		state, body := encodeState(nil, m), encodeBody(nil, m)
		for _, e := range []*badger.Entry{
			badger.NewEntry(msgKey(m.Key), state),
			badger.NewEntry(bodyKey(m.Key), body),
			badger.NewEntry(dueKey(meta.due, m.Key), encodeDue(state, body)),
		} {
			if err := wb.SetEntry(e); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := wb.Flush(); err != nil {
		tb.Fatal(err)
	}
	s.countMu.Lock()
	s.counts = [statusSlots]int{}
	s.countMu.Unlock()
	if err := s.loadCounts(); err != nil {
		tb.Fatal(err)
	}
	s.lowerDue([]byte(prefixDue))
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// cpuTime is the CPU time (user + system) of the whole process so far. Benchmarks report CPU
// per message next to wall-clock rates, because the machine is shared and wall time under load
// says more about the neighbours than about this code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfile writes a CPU profile of the measured part alone (the load before it would swamp
// -cpuprofile) to $NOTIFIER_BENCH_CPUPROFILE, if set; it returns the function that stops it.
func startProfile(b *testing.B) (stop func()) {
	path := os.Getenv("NOTIFIER_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}
