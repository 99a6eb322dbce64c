package sender_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"notifier/sender"
	"notifier/state"
)

// The figures of issue 4: with 1,000,000 pending reminders in a real synced store, 200,000 due
// in the same second are handed to the channel within 2 s of their due time, and the p99
// lateness of normally spaced reminders (2,000, 5 ms apart, a minute after the burst) is under
// 100 ms. It also reports the bytes on disk per pending reminder and the peak RSS.
//
//	go test -run '^$' -bench BenchmarkReminders -benchtime 1x -timeout 30m ./sender/
//
// Sub-benchmarks: burst=one-ms puts the 200,000 at one due time (rows sharing one DATETIME);
// burst=spread-1s spreads them over the second's 1000 ms. ahead=5s is the service's default:
// the sender claims 5 s ahead of the due time and holds (sender.Options.ClaimAhead; it starts
// 6 s before the burst, as a running pod has), ahead=0s claims at the due time (it starts 1 s
// before: also what a pod that starts just as the burst comes due does). channel=func hands each message to a
// ChannelFunc that records the time and returns (the scheduler and store: "handed to the
// channel"); channel=webhook sends each over a loopback HTTP provider that accepts at once
// (the time is the provider's receipt, so the HTTP round trip is included and bounds the
// rate). Metrics: s-burst-last-handover (last burst hand-over minus the due second's start),
// s-burst-max-lateness (per reminder), ms-p50/p99/max-lateness of the spaced series,
// disk-B/reminder (the store directory after the load), peak-RSS-MB (the process's peak RSS
// during the run: reset after the load and the copy, then read with getrusage).
// NOTIFIER_BENCH_CPUPROFILE=FILE writes a CPU profile of each burst alone (from 10 ms before
// its due time until its last hand-over) to FILE.

const (
	benchTotal  = 1_000_000
	benchBurst  = 200_000
	benchSpaced = 2_000
	spacedGap   = 5 * time.Millisecond
	// benchAhead is the service's default sender.claim_ahead.
	benchAhead = 5 * time.Second
)

// benchClock runs at the real rate from an offset set once the store is loaded, so the
// reminders' due times are reached right after the sender starts.
type benchClock struct{ offset atomic.Int64 }

func (c *benchClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// receipts records, per reminder of the burst and of the spaced series, when it was handed
// over (on the benchmark's clock).
type receipts struct {
	clock  *benchClock
	burst  []atomic.Int64
	spaced []atomic.Int64
	nBurst atomic.Int64
	nSpace atomic.Int64
	other  atomic.Int64
}

func newReceipts(c *benchClock) *receipts {
	return &receipts{clock: c, burst: make([]atomic.Int64, benchBurst), spaced: make([]atomic.Int64, benchSpaced)}
}

// record notes key's hand-over now; keys are "b<i>" (burst), "s<i>" (spaced), "r<i>" (rest).
func (r *receipts) record(key string) {
	now := r.clock.Now().UnixNano()
	if len(key) < 2 {
		return
	}
	i, err := strconv.Atoi(key[1:])
	if err != nil {
		return
	}
	switch key[0] {
	case 'b':
		if r.burst[i].CompareAndSwap(0, now) {
			r.nBurst.Add(1)
		}
	case 's':
		if r.spaced[i].CompareAndSwap(0, now) {
			r.nSpace.Add(1)
		}
	default:
		r.other.Add(1)
	}
}

// loaded is the directory of a store holding the benchmark's reminders, loaded once per
// burst layout and copied for each channel; burstAt is the burst's due second.
var loaded struct {
	dir     string
	spread  bool
	burstAt time.Time
	size    int64
}

// spacedAt is the due time of the j-th spaced reminder: a minute after the burst, so the
// burst has been handed over and they measure normal operation.
func spacedAt(j int) time.Time { return loaded.burstAt.Add(time.Minute + time.Duration(j)*spacedGap) }

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// loadReminders writes benchTotal reminders (each a Schedule with its slot) into a new store:
// the burst in the second burstAt (all at its start, or spread over its 1000 ms), the spaced
// series a minute later, the rest over the following days. The load runs unsynced in big
// batches; the store is then closed (the benchmark reopens it synced).
func loadReminders(b *testing.B, spread bool) {
	if loaded.dir != "" {
		_ = os.RemoveAll(loaded.dir)
	}
	dir, err := os.MkdirTemp("", "reminders-bench-")
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(state.Options{Dir: dir, NoSync: true, Logger: quiet(), Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	burstAt := t0.Add(time.Hour)
	msg := func(i int) state.Schedule {
		var key string
		var due time.Time
		switch {
		case i < benchBurst && spread:
			key, due = "b"+strconv.Itoa(i), burstAt.Add(time.Duration(i%1000)*time.Millisecond)
		case i < benchBurst:
			key, due = "b"+strconv.Itoa(i), burstAt
		case i < benchBurst+benchSpaced:
			j := i - benchBurst
			key, due = "s"+strconv.Itoa(j), burstAt.Add(time.Minute+time.Duration(j)*spacedGap)
		default:
			key, due = "r"+strconv.Itoa(i), burstAt.Add(time.Hour+time.Duration(i)*time.Second/2)
		}
		return state.Schedule{Slot: "coupon/" + key, Message: &state.Message{
			Key: key, Rule: "coupon", Channel: "hook", To: "+4915100" + strconv.Itoa(1_000_000+i),
			Text: "Your coupon opens in one minute: WINTER-20", Status: state.StatusScheduled, DueAt: due,
		}}
	}
	step := st.MaxBatchCount() / 4
	start := time.Now()
	for lo := 0; lo < benchTotal; {
		hi := min(lo+step, benchTotal)
		batch := &state.Batch{}
		for i := lo; i < hi; i++ {
			batch.Schedules = append(batch.Schedules, msg(i))
		}
		if _, err := st.Apply(context.Background(), batch); err != nil {
			b.Fatalf("load reminders %d–%d: %v", lo, hi, err)
		}
		lo = hi
	}
	b.Logf("loaded %d reminders in %s (unsynced, %d per Apply)", benchTotal, time.Since(start).Round(time.Millisecond), step)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	loaded.dir, loaded.spread, loaded.burstAt, loaded.size = dir, spread, burstAt, dirSize(b, dir)
}

func dirSize(b *testing.B, dir string) int64 {
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
		b.Fatal(err)
	}
	return n
}

func BenchmarkReminders(b *testing.B) {
	for _, burst := range []string{"one-ms", "spread-1s"} {
		loadReminders(b, burst == "spread-1s")
		for _, ahead := range []time.Duration{benchAhead, 0} {
			for _, kind := range []string{"func", "webhook"} {
				b.Run(fmt.Sprintf("burst=%s/ahead=%s/channel=%s", burst, ahead, kind), func(b *testing.B) {
					for range b.N {
						runReminders(b, kind, ahead)
					}
				})
			}
		}
	}
	_ = os.RemoveAll(loaded.dir)
	loaded.dir = ""
}

// runReminders copies the loaded store, opens it synced, starts a Sender on it claiming ahead
// by ahead (0: at the due time), with the clock ahead + 1 s before the burst's due time, and
// waits until the burst and the spaced series were handed over.
func runReminders(b *testing.B, kind string, ahead time.Duration) {
	b.StopTimer()
	dir := filepath.Join(b.TempDir(), "store")
	if out, err := exec.Command("cp", "-a", loaded.dir, dir).CombinedOutput(); err != nil {
		b.Fatalf("copy store: %v: %s", err, out)
	}
	clock := &benchClock{}
	clock.offset.Store(int64(time.Until(t0)))
	st, err := state.Open(state.Options{Dir: dir, Logger: quiet(), Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	waitIdle(b)
	rec := newReceipts(clock)
	var rt *sender.Runtime
	switch kind {
	case "func":
		rt, err = sender.NewRuntime("hook", sender.ChannelConfig{Concurrency: 64, Idempotent: true},
			sender.ChannelFunc(func(_ context.Context, m *state.Message) (bool, error) {
				rec.record(m.Key)
				return false, nil
			}))
	case "webhook":
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			rec.record(r.Header.Get("Idempotency-Key"))
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"x"}`)
		}))
		defer srv.Close()
		var rts map[string]*sender.Runtime
		rts, err = sender.Build(map[string]sender.ChannelConfig{"hook": {Type: sender.TypeWebhook, Idempotent: true,
			Concurrency: 64, Webhook: &sender.WebhookConfig{URL: srv.URL}}}, sender.Deps{Logger: quiet(), Now: clock.Now})
		rt = rts["hook"]
	}
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	s, err := sender.New(sender.Options{Store: st, Channels: map[string]*sender.Runtime{"hook": rt},
		ClaimAhead: ahead, Logger: quiet(), Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	clock.offset.Store(int64(time.Until(loaded.burstAt.Add(-time.Second - ahead))))
	resetHWM()
	b.StartTimer()
	go func() { done <- s.Run(ctx) }()
	time.Sleep(time.Until(loaded.burstAt.Add(-10 * time.Millisecond).Add(-time.Duration(clock.offset.Load()))))
	stopProfile := burstProfile(b) // from the due time: the holding before it is not the burst
	deadline := time.Now().Add(5 * time.Minute)
	for rec.nBurst.Load() < benchBurst {
		if time.Now().After(deadline) {
			b.Fatalf("after 5 minutes: %d of %d burst handed over", rec.nBurst.Load(), benchBurst)
		}
		time.Sleep(time.Millisecond)
	}
	burstDone := clock.Now()
	stopProfile()
	// The spaced series is due a minute after the burst: move the clock on to 2 s before it
	// (the loop wakes at least every PollInterval, 1 s) rather than wait.
	if d := time.Until(spacedAt(0).Add(-2 * time.Second).Add(-time.Duration(clock.offset.Load()))); d > 0 {
		clock.offset.Add(int64(d))
	}
	for rec.nSpace.Load() < benchSpaced {
		if time.Now().After(deadline) {
			b.Fatalf("after 5 minutes: %d of %d burst, %d of %d spaced handed over", rec.nBurst.Load(), benchBurst, rec.nSpace.Load(), benchSpaced)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		b.Fatal(err)
	}
	if n := rec.other.Load(); n != 0 {
		b.Fatalf("%d reminders of the rest (due hours later) were handed over", n)
	}

	due := loaded.burstAt.UnixNano()
	var last, lastLate int64
	for i := range rec.burst {
		at := rec.burst[i].Load()
		last = max(last, at)
		dueI := due
		if loaded.spread {
			dueI += int64(i%1000) * int64(time.Millisecond)
		}
		lastLate = max(lastLate, at-dueI)
	}
	if burstDone.UnixNano() < last {
		b.Fatalf("burst done at %s, last hand-over %s", burstDone, time.Unix(0, last))
	}
	late := make([]float64, benchSpaced)
	for j := range rec.spaced {
		dueJ := spacedAt(j).UnixNano()
		late[j] = float64(rec.spaced[j].Load()-dueJ) / 1e6
	}
	slices.Sort(late)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(last-due)/1e9, "s-burst-last-handover")
	b.ReportMetric(float64(lastLate)/1e9, "s-burst-max-lateness")
	b.ReportMetric(benchBurst/(float64(last-due)/1e9), "burst-msgs/s")
	b.ReportMetric(late[len(late)/2], "ms-p50-lateness")
	b.ReportMetric(late[len(late)*99/100], "ms-p99-lateness")
	b.ReportMetric(late[len(late)-1], "ms-max-lateness")
	b.ReportMetric(float64(loaded.size)/benchTotal, "disk-B/reminder")
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	b.Logf("%s: burst of %d handed over by %s after its due time; spaced p50 %.1f ms, p99 %.1f ms, max %.1f ms; %s on disk for %d reminders",
		kind, benchBurst, time.Duration(last-due), late[len(late)/2], late[len(late)*99/100], late[len(late)-1],
		fmt.Sprintf("%.1f MB", float64(loaded.size)/1e6), benchTotal)
}

// waitIdle waits until the process has been idle (under 5% of a core) for two seconds, at most
// two minutes: the store was just loaded in bulk and copied, and Badger compacts it after Open
// (a second or more of both cores). A pod that has held its reminders for a while has no such
// debt when they come due.
func waitIdle(b *testing.B) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	const tick = 500 * time.Millisecond
	start, quiet, last := time.Now(), 0, cpu()
	for quiet < 4 && time.Since(start) < 2*time.Minute {
		time.Sleep(tick)
		now := cpu()
		if now-last < tick/20 {
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
	b.Logf("store idle after %s", time.Since(start).Round(100*time.Millisecond))
}

// burstProfile writes a CPU profile of the burst alone (the load before it would swamp
// -cpuprofile) to $NOTIFIER_BENCH_CPUPROFILE, if set; it returns the function that stops it.
func burstProfile(b *testing.B) (stop func()) {
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

// resetHWM resets the process's peak RSS (VmHWM, which getrusage's Maxrss reports), so the
// figure is the run's, not the load's before it (Linux: clear_refs 5).
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
