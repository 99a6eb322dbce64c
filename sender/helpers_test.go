package sender

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"notifier/state"
)

// clock is an injected clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t0 time.Time) *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// openStore opens a real, synced Badger store in a temp dir.
func openStore(t testing.TB, now func() time.Time) *state.Store {
	t.Helper()
	st, err := state.Open(state.Options{Dir: t.TempDir(), Now: now, Logger: quietLog})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// insert stores ready messages, in as many batches as the store needs.
func insert(t testing.TB, st *state.Store, msgs []*state.Message) {
	t.Helper()
	step := st.MaxBatchCount()
	for lo := 0; lo < len(msgs); lo += step {
		if _, err := st.Apply(context.Background(), &state.Batch{Messages: msgs[lo:min(lo+step, len(msgs))]}); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
}

// messages makes n ready messages for channel ch, due at due.
func messages(n int, ch string, due time.Time) []*state.Message {
	out := make([]*state.Message, n)
	for i := range out {
		out[i] = &state.Message{Key: fmt.Sprintf("rule-a:%06d", i), Rule: "rule-a", Channel: ch,
			To: fmt.Sprintf("+49176%08d", i), Text: "Your payment is due", Status: state.StatusReady, DueAt: due}
	}
	return out
}

// run starts s.Run; the returned stop cancels it and returns Run's error.
func run(t testing.TB, s *Sender) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitFor polls cond until it holds; the bound only keeps a broken test from hanging.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counts(t testing.TB, st *state.Store) map[state.Status]int {
	t.Helper()
	c, err := st.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t testing.TB, st *state.Store, key string) *state.Message {
	t.Helper()
	m, err := st.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return m
}

// ledger is a loopback provider: answer decides each call's response; accepted calls (2xx)
// are counted per Idempotency-Key, with the injected clock's time of every call.
type ledger struct {
	*httptest.Server
	now    func() time.Time
	answer func(call int, w http.ResponseWriter, r *http.Request) bool // true = accepted

	mu       sync.Mutex
	calls    int
	accepted map[string]int
	times    map[string][]time.Time
	realAt   []time.Time // wall time of each acceptance
}

func newLedger(t testing.TB, now func() time.Time, answer func(call int, w http.ResponseWriter, r *http.Request) bool) *ledger {
	l := &ledger{now: now, answer: answer, accepted: map[string]int{}, times: map[string][]time.Time{}}
	if l.answer == nil {
		l.answer = func(int, http.ResponseWriter, *http.Request) bool { return true }
	}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := r.Header.Get("Idempotency-Key")
		l.mu.Lock()
		l.calls++
		call := l.calls
		l.times[key] = append(l.times[key], l.now())
		l.mu.Unlock()
		if l.answer(call, w, r) {
			l.mu.Lock()
			l.accepted[key]++
			l.realAt = append(l.realAt, time.Now())
			l.mu.Unlock()
		}
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *ledger) acceptedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.realAt)
}

func (l *ledger) callCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// webhookRuntime builds a webhook channel through the registry.
func webhookRuntime(t testing.TB, name, url string, cfg ChannelConfig) *Runtime {
	t.Helper()
	cfg.Type = TypeWebhook
	if cfg.Webhook == nil {
		cfg.Webhook = &WebhookConfig{}
	}
	cfg.Webhook.URL = url
	rts, err := Build(map[string]ChannelConfig{name: cfg}, Deps{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	return rts[name]
}
