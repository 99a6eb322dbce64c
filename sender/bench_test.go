package sender

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"notifier/state"
)

// benchSend inserts b.N ready messages into a real synced store, runs a Sender with
// concurrency 64 over rt and reports delivered messages per second (durable outcomes included).
func benchSend(b *testing.B, rt *Runtime) {
	st := openStore(b, nil)
	// Due times spread 10 per millisecond, as messages created over time are. (A burst sharing
	// one due millisecond makes every Claim step over the tombstones of the ones claimed before:
	// see the report on state's low-water mark.)
	base := time.Now().Add(-time.Duration(b.N) * 100 * time.Microsecond)
	msgs := messages(b.N, rt.name, base)
	for i, m := range msgs {
		m.DueAt = base.Add(time.Duration(i) * 100 * time.Microsecond)
	}
	insert(b, st, msgs)
	s, err := New(Options{Store: st, Channels: map[string]*Runtime{rt.name: rt}, Concurrency: 64, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	stop := run(b, s)
	for {
		if c, _ := st.Counts(context.Background()); c[state.StatusSent] == b.N {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	reportRate(b, elapsed, cpu)
}

// reportRate reports msgs/s and the process CPU per message. The machine is shared, so
// msgs/s depends on the neighbours' load; cpu-µs/msg does much less, and 2 cores /
// cpu-µs/msg is the ceiling this code would reach on an idle 2-core machine.
func reportRate(b *testing.B, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	perMsg := float64(cpu.Microseconds()) / float64(b.N)
	b.ReportMetric(perMsg, "cpu-µs/msg")
	b.ReportMetric(2e6/perMsg, "idle-2core-msgs/s")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSendHTTP: a loopback provider that accepts at once.
func BenchmarkSendHTTP(b *testing.B) {
	prov := newLedger(b, time.Now, nil)
	benchSend(b, webhookRuntime(b, "hook", prov.URL, ChannelConfig{Concurrency: 64}))
}

// BenchmarkSendNoop: the loop's ceiling, with a channel that does nothing.
func BenchmarkSendNoop(b *testing.B) {
	rt, err := NewRuntime("noop", ChannelConfig{Concurrency: 64}, ChannelFunc(func(context.Context, *state.Message) (bool, error) {
		return false, nil
	}))
	if err != nil {
		b.Fatal(err)
	}
	benchSend(b, rt)
}

// BenchmarkWebhookChannelAlone: the HTTP ceiling in the same run, 64 goroutines calling the
// webhook channel directly (no store, no loop), for comparison with BenchmarkSendHTTP.
func BenchmarkWebhookChannelAlone(b *testing.B) {
	prov := newLedger(b, time.Now, nil)
	rt := webhookRuntime(b, "hook", prov.URL, ChannelConfig{})
	msgs := messages(b.N, "hook", time.Now())
	var next atomic.Int64
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				if _, err := rt.channel.Send(context.Background(), msgs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reportRate(b, time.Since(start), cpuTime()-cpu0)
}
