package sender

import (
	"context"
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
	start := time.Now()
	stop := run(b, s)
	for {
		if c, _ := st.Counts(context.Background()); c[state.StatusSent] == b.N {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
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
