package sender

import (
	"context"
	"sync"
	"testing"
	"time"

	"notifier/state"
)

// handover is a channel that accepts at once and records, per key, the wall time of each call.
type handover struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func newHandover(t *testing.T) (*handover, *Runtime) {
	t.Helper()
	h := &handover{times: map[string][]time.Time{}}
	rt, err := NewRuntime("x", ChannelConfig{Concurrency: 64}, ChannelFunc(func(_ context.Context, m *state.Message) (bool, error) {
		now := time.Now()
		h.mu.Lock()
		h.times[m.Key] = append(h.times[m.Key], now)
		h.mu.Unlock()
		return false, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return h, rt
}

func (h *handover) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.times)
}

func TestClaimAheadAcquiresMessagesAndHandsThemOverAtTheirDueTime(t *testing.T) {
	st := openStore(t, time.Now)
	start := time.Now()
	due := start.Add(3 * time.Second)
	later := messages(300, "x", due)
	now := messages(20, "x", start)
	for i, m := range now {
		m.Key = "now:" + m.Key[len("rule-a:"):]
		now[i] = m
	}
	insert(t, st, append(later, now...))
	h, rt := newHandover(t)
	s, err := New(Options{Store: st, Channels: map[string]*Runtime{"x": rt}, ClaimAhead: 5 * time.Second, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	// Acquired: all 300 are claimed (sending in the store) well before their due time, and none
	// of them is handed over; the 20 due now go at once.
	waitFor(t, "the messages due now", func() bool { return h.count() == 20 })
	waitFor(t, "the later messages acquired", func() bool { return counts(t, st)[state.StatusSending] == 300 })
	if time.Now().After(due) {
		t.Fatalf("acquiring 300 messages took until after their due time (%v)", time.Since(start))
	}
	if n := h.count(); n != 20 {
		t.Fatalf("%d handed over before the later ones' due time, want 20", n)
	}
	waitFor(t, "all handed over", func() bool { return h.count() == 320 })
	waitFor(t, "all sent", func() bool { return counts(t, st)[state.StatusSent] == 320 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range later {
		ts := h.times[m.Key]
		if len(ts) != 1 {
			t.Fatalf("%s handed over %d times", m.Key, len(ts))
		}
		if ts[0].Before(due) {
			t.Fatalf("%s handed over %v before its due time", m.Key, due.Sub(ts[0]))
		}
	}
	if m := get(t, st, later[0].Key); m.Attempts != 1 {
		t.Fatalf("attempts = %d, want 1", m.Attempts)
	}
}

func TestStopPutsAcquiredMessagesBackUnsent(t *testing.T) {
	st := openStore(t, time.Now)
	due := time.Now().Add(time.Minute)
	msgs := messages(100, "x", due)
	insert(t, st, msgs)
	h, rt := newHandover(t)
	s, err := New(Options{Store: st, Channels: map[string]*Runtime{"x": rt}, ClaimAhead: 2 * time.Minute, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	waitFor(t, "acquired", func() bool { return counts(t, st)[state.StatusSending] == 100 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c := counts(t, st); c[state.StatusReady] != 100 || c[state.StatusSending] != 0 {
		t.Fatalf("counts after stop = %v, want 100 ready again", c)
	}
	if m := get(t, st, msgs[7].Key); m.Attempts != 0 || !m.DueAt.Equal(due.Truncate(time.Millisecond)) || len(m.History) != 0 {
		t.Fatalf("put back = attempts %d due %v history %v, want as before", m.Attempts, m.DueAt, m.History)
	}
	if n := h.count(); n != 0 {
		t.Fatalf("%d handed over, want none", n)
	}
	// A sender without claiming ahead takes them at their time, once.
	ms, err := st.Claim(context.Background(), due, 1000)
	if err != nil || len(ms) != 100 {
		t.Fatalf("claim at the due time: %d, %v", len(ms), err)
	}
}

// Fired and not completed, a channel that is not idempotent gets Claim's bound (what a crash
// would leave uncertain); an idempotent one may run further ahead of its outcomes.
func TestAdmissionBoundsWhatACrashWouldLeaveUncertain(t *testing.T) {
	st := openStore(t, time.Now)
	mk := func(name string, idempotent bool) *Runtime {
		rt, err := NewRuntime(name, ChannelConfig{Idempotent: idempotent}, ChannelFunc(func(context.Context, *state.Message) (bool, error) { return false, nil }))
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	s, err := New(Options{Store: st, Channels: map[string]*Runtime{"sms": mk("sms", false), "hook": mk("hook", true)},
		ClaimAhead: time.Second, Concurrency: 4, ClaimBatch: 8, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	capacity := int64(4 + 2*8)
	s.claimed.Store(capacity) // Claim's bound reached, all of it on the sms channel
	s.exposed.Store(capacity)
	admit := s.admission(capacity)
	if admit(&state.Message{Channel: "sms"}) {
		t.Fatal("a message of the non-idempotent channel was admitted beyond Claim's bound")
	}
	for i := range 16 { // 2·ClaimBatch may wait to start
		if !admit(&state.Message{Channel: "hook"}) {
			t.Fatalf("idempotent message %d not admitted", i)
		}
	}
	if admit(&state.Message{Channel: "hook"}) {
		t.Fatal("more than 2·ClaimBatch admitted to wait for a start")
	}
	s.claimed.Store(capacity + int64(idempotentBacklog*8))
	s.exposed.Store(0)
	if s.admission(capacity)(&state.Message{Channel: "hook"}) {
		t.Fatal("admitted beyond the idempotent backlog")
	}
	s.claimed.Store(capacity)
	s.exposed.Store(capacity)
	if s.admission(capacity)(&state.Message{Channel: "unknown"}) {
		t.Fatal("an unknown channel must count as not idempotent")
	}
}
