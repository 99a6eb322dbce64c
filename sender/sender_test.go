package sender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/state"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func TestNewValidatesOptions(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrConfig) {
		t.Errorf("no store: %v", err)
	}
	st := openStore(t, nil)
	if _, err := New(Options{Store: st, Channels: map[string]*Runtime{"x": nil}}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil runtime: %v", err)
	}
}

func TestEndToEndClaimSendSent(t *testing.T) {
	clk := newClock(t0)
	st := openStore(t, clk.Now)
	prov := newLedger(t, clk.Now, func(_ int, w http.ResponseWriter, r *http.Request) bool {
		fmt.Fprintf(w, `{"id":"p-%s"}`, r.Header.Get("Idempotency-Key"))
		return true
	})
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{Webhook: &WebhookConfig{IDPath: "id"}})
	insert(t, st, messages(200, "hook", t0))
	set := metrics.NewSet()
	s, err := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, Now: clk.Now, Logger: quietLog, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	waitFor(t, "200 sent", func() bool { return counts(t, st)[state.StatusSent] == 200 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	for _, want := range []string{`notifier_messages_sent_total{channel="hook",rule="rule-a"} 200`,
		`notifier_send_duration_seconds_count{channel="hook"} 200`, `notifier_fire_lateness_seconds_count 200`,
		`notifier_sender_claimed 0`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, out.String())
		}
	}
	for key, n := range prov.accepted {
		if n != 1 {
			t.Errorf("%s delivered %d times", key, n)
		}
	}
	if len(prov.accepted) != 200 {
		t.Errorf("provider saw %d keys", len(prov.accepted))
	}
	m := get(t, st, "rule-a:000007")
	if m.Status != state.StatusSent || m.ProviderID != "p-rule-a:000007" || m.Attempts != 1 {
		t.Errorf("record %+v", m)
	}
}

func TestKickSendsNewMessagesWithoutPolling(t *testing.T) {
	st := openStore(t, nil)
	prov := newLedger(t, time.Now, nil)
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{})
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, PollInterval: time.Hour, Logger: quietLog})
	run(t, s)
	time.Sleep(20 * time.Millisecond) // let the loop go to sleep on its hour-long poll
	insert(t, st, messages(1, "hook", time.Now()))
	s.Kick()
	waitFor(t, "kicked message sent", func() bool { return counts(t, st)[state.StatusSent] == 1 })
}

func TestIntermittentProviderDeliversEachOnceWithSpacedRetries(t *testing.T) {
	clk := newClock(t0)
	st := openStore(t, clk.Now)
	// Every 3rd call fails: a 500, or no answer until the client gives up.
	prov := newLedger(t, clk.Now, func(call int, w http.ResponseWriter, r *http.Request) bool {
		switch {
		case call%6 == 3:
			w.WriteHeader(500)
			return false
		case call%6 == 0:
			<-r.Context().Done()
			return false
		}
		return true
	})
	backoffCfg := Backoff{Initial: time.Second, Max: 8 * time.Second}
	// The timeout is long enough that an accepted call never times out on a loaded machine
	// (that would be a legitimate resend on an idempotent channel and spoil the ledger count).
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{Idempotent: true, Timeout: 3 * time.Second, Concurrency: 64,
		MaxAttempts: 30, Backoff: backoffCfg})
	const n = 200
	insert(t, st, messages(n, "hook", t0))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, Now: clk.Now, Logger: quietLog,
		PollInterval: 2 * time.Millisecond})
	stop := run(t, s)
	waitFor(t, "all sent", func() bool {
		clk.Advance(100 * time.Millisecond)
		return counts(t, st)[state.StatusSent] == n
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	prov.mu.Lock()
	defer prov.mu.Unlock()
	if len(prov.accepted) != n || prov.calls <= n {
		t.Fatalf("accepted %d keys in %d calls", len(prov.accepted), prov.calls)
	}
	retried := 0
	for key, c := range prov.accepted {
		if c != 1 {
			t.Errorf("%s accepted %d times", key, c)
		}
		times := prov.times[key]
		for i := 1; i < len(times); i++ {
			retried++
			base := backoffCfg.Initial << (i - 1)
			if base > backoffCfg.Max {
				base = backoffCfg.Max
			}
			if gap := times[i].Sub(times[i-1]); gap < base*8/10 {
				t.Errorf("%s: retry %d came %s after the previous call, backoff is %s ±20%%", key, i, gap, base)
			}
		}
	}
	if retried == 0 {
		t.Error("no message was retried")
	}
}

func TestProvider4xxIsDeadWithItsAnswer(t *testing.T) {
	st := openStore(t, nil)
	answer := `{"error":"invalid recipient"}` + strings.Repeat(" pad", 500)
	prov := newLedger(t, time.Now, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(400)
		fmt.Fprint(w, answer)
		return false
	})
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{})
	insert(t, st, messages(1, "hook", time.Now()))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, Logger: quietLog})
	run(t, s)
	waitFor(t, "dead", func() bool { return counts(t, st)[state.StatusDead] == 1 })
	m := get(t, st, "rule-a:000000")
	if m.Reason != string(ReasonProvider4xx) || !strings.Contains(m.LastError, `status 400: {"error":"invalid recipient"}`) || len(m.LastError) > 1024 {
		t.Errorf("dead record: reason %q, error (%d bytes) %.120q", m.Reason, len(m.LastError), m.LastError)
	}
	if prov.callCount() != 1 {
		t.Errorf("provider called %d times", prov.callCount())
	}
}

func TestRateLimitedHonoursRetryAfterAndPausesTheChannel(t *testing.T) {
	clk := newClock(t0)
	st := openStore(t, clk.Now)
	prov := newLedger(t, clk.Now, func(call int, w http.ResponseWriter, _ *http.Request) bool {
		if call == 1 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(429)
			return false
		}
		return true
	})
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{})
	insert(t, st, messages(1, "hook", t0))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, Now: clk.Now, Logger: quietLog,
		PollInterval: 5 * time.Millisecond})
	run(t, s)
	waitFor(t, "retry", func() bool { return get(t, st, "rule-a:000000").Status == state.StatusRetry })
	m := get(t, st, "rule-a:000000")
	if !m.DueAt.Equal(t0.Add(30*time.Second)) || m.Reason != string(ReasonRateLimited) {
		t.Errorf("retry due %s reason %q, want %s rate_limited", m.DueAt, m.Reason, t0.Add(30*time.Second))
	}
	if !rt.PausedUntil().Equal(t0.Add(30 * time.Second)) {
		t.Errorf("channel paused until %s", rt.PausedUntil())
	}
	clk.Advance(29 * time.Second)
	s.Kick()
	time.Sleep(20 * time.Millisecond)
	if prov.callCount() != 1 {
		t.Fatalf("called again before Retry-After elapsed")
	}
	clk.Advance(time.Second)
	s.Kick()
	waitFor(t, "sent", func() bool { return get(t, st, "rule-a:000000").Status == state.StatusSent })
	if at := prov.times["rule-a:000000"]; len(at) != 2 || at[1].Sub(at[0]) < 30*time.Second {
		t.Errorf("calls at %v", at)
	}
}

func TestNonIdempotentTimeoutIsUncertainAndNotResent(t *testing.T) {
	clk := newClock(t0)
	st := openStore(t, clk.Now)
	prov := newLedger(t, clk.Now, func(_ int, _ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // took the request, never answers in time
		return false
	})
	rt := webhookRuntime(t, "sms", prov.URL, ChannelConfig{Idempotent: false, Timeout: 100 * time.Millisecond})
	insert(t, st, messages(1, "sms", t0))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"sms": rt}, Now: clk.Now, Logger: quietLog,
		PollInterval: 5 * time.Millisecond})
	stop := run(t, s)
	waitFor(t, "uncertain", func() bool { return get(t, st, "rule-a:000000").Status == state.StatusUncertain })
	m := get(t, st, "rule-a:000000")
	if m.Reason != string(ReasonUncertain) || !strings.Contains(m.LastError, "no answer within 100ms") {
		t.Errorf("uncertain record: reason %q error %q", m.Reason, m.LastError)
	}
	if _, due, err := st.NextDue(); err != nil || due {
		t.Errorf("something is still due (%v, %v): the message would be resent", due, err)
	}
	clk.Advance(time.Hour)
	s.Kick()
	time.Sleep(20 * time.Millisecond)
	stop()
	if n := prov.callCount(); n != 1 {
		t.Errorf("provider called %d times", n)
	}
}

func TestNonIdempotentRefusedDialIsRetried(t *testing.T) {
	clk := newClock(t0)
	st := openStore(t, clk.Now)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rt := webhookRuntime(t, "sms", "http://"+addr+"/send", ChannelConfig{Idempotent: false})
	insert(t, st, messages(1, "sms", t0))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"sms": rt}, Now: clk.Now, Logger: quietLog})
	run(t, s)
	waitFor(t, "retry", func() bool { return get(t, st, "rule-a:000000").Status == state.StatusRetry })
	if m := get(t, st, "rule-a:000000"); m.Reason != string(ReasonConnection) || !m.DueAt.After(t0) {
		t.Errorf("record reason %q due %s", m.Reason, m.DueAt)
	}
}

func TestUnknownChannelIsDead(t *testing.T) {
	st := openStore(t, nil)
	insert(t, st, messages(1, "carrier-pigeon", time.Now()))
	s, _ := New(Options{Store: st, Logger: quietLog})
	run(t, s)
	waitFor(t, "dead", func() bool { return counts(t, st)[state.StatusDead] == 1 })
	if m := get(t, st, "rule-a:000000"); m.Reason != string(ReasonUnknownChannel) || !strings.Contains(m.LastError, "carrier-pigeon") {
		t.Errorf("record reason %q error %q", m.Reason, m.LastError)
	}
}

func TestMaxAttemptsThenDead(t *testing.T) {
	clk := newClock(t0)
	st := openStore(t, clk.Now)
	prov := newLedger(t, clk.Now, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(503)
		return false
	})
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{MaxAttempts: 3, Backoff: Backoff{Initial: time.Second, Max: time.Second}})
	insert(t, st, messages(1, "hook", t0))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, Now: clk.Now, Logger: quietLog,
		PollInterval: 2 * time.Millisecond})
	run(t, s)
	waitFor(t, "dead", func() bool {
		clk.Advance(100 * time.Millisecond)
		return get(t, st, "rule-a:000000").Status == state.StatusDead
	})
	if m := get(t, st, "rule-a:000000"); m.Reason != string(ReasonMaxAttempts) || prov.callCount() != 3 {
		t.Errorf("reason %q after %d calls", m.Reason, prov.callCount())
	}
}

func TestQuietHoursDeferToWindowEnd(t *testing.T) {
	loc := berlin(t)
	now := time.Date(2026, 3, 28, 22, 0, 0, 0, loc) // inside 21:00–08:00, the night DST starts
	clk := newClock(now)
	st := openStore(t, clk.Now)
	prov := newLedger(t, clk.Now, nil)
	rt := webhookRuntime(t, "sms", prov.URL, ChannelConfig{Timezone: "Europe/Berlin",
		QuietHours: &QuietHours{Start: "21:00", End: "08:00"}})
	insert(t, st, messages(1, "sms", now))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"sms": rt}, Now: clk.Now, Logger: quietLog,
		PollInterval: 5 * time.Millisecond})
	run(t, s)
	end := time.Date(2026, 3, 29, 8, 0, 0, 0, loc)
	waitFor(t, "deferred", func() bool { return get(t, st, "rule-a:000000").Status == state.StatusScheduled })
	m := get(t, st, "rule-a:000000")
	if !m.DueAt.Equal(end) || m.Attempts != 0 || prov.callCount() != 0 {
		t.Fatalf("deferred to %s (attempts %d, calls %d), want %s", m.DueAt.In(loc), m.Attempts, prov.callCount(), end)
	}
	clk.Advance(end.Sub(now)) // 9 real hours
	s.Kick()
	waitFor(t, "sent after the window", func() bool { return get(t, st, "rule-a:000000").Status == state.StatusSent })
}

func TestPerRecipientCapHoldsOrDrops(t *testing.T) {
	for _, excess := range []string{ExcessHold, ExcessDrop} {
		t.Run(excess, func(t *testing.T) {
			clk := newClock(t0)
			st := openStore(t, clk.Now)
			prov := newLedger(t, clk.Now, nil)
			rt := webhookRuntime(t, "sms", prov.URL, ChannelConfig{Concurrency: 1,
				PerRecipient: &PerRecipient{Max: 1, Per: 24 * time.Hour, Excess: excess}})
			msgs := messages(2, "sms", t0)
			msgs[1].To = msgs[0].To
			insert(t, st, msgs)
			s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"sms": rt}, Now: clk.Now, Logger: quietLog})
			run(t, s)
			waitFor(t, "both settled", func() bool {
				c := counts(t, st)
				return c[state.StatusSent] == 1 && c[state.StatusScheduled]+c[state.StatusSkipped] == 1
			})
			c := counts(t, st)
			var other *state.Message
			for _, k := range []string{"rule-a:000000", "rule-a:000001"} {
				if m := get(t, st, k); m.Status != state.StatusSent {
					other = m
				}
			}
			switch excess {
			case ExcessHold:
				last := other.History[len(other.History)-1]
				if c[state.StatusScheduled] != 1 || !other.DueAt.Equal(t0.Add(24*time.Hour)) || last.Error != string(ReasonRecipientCap) {
					t.Errorf("held: %+v", other)
				}
			case ExcessDrop:
				if c[state.StatusSkipped] != 1 || other.Reason != string(ReasonRecipientCap) {
					t.Errorf("dropped: %+v", other)
				}
			}
		})
	}
}

func TestShutdownDrainsInFlightSends(t *testing.T) {
	st := openStore(t, nil)
	release := make(chan struct{})
	var inflight atomic.Int32
	prov := newLedger(t, time.Now, func(_ int, _ http.ResponseWriter, _ *http.Request) bool {
		inflight.Add(1)
		<-release
		return true
	})
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{})
	insert(t, st, messages(3, "hook", time.Now()))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, Logger: quietLog})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	waitFor(t, "3 in flight", func() bool { return inflight.Load() == 3 })
	cancel()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c := counts(t, st); c[state.StatusSent] != 3 || c[state.StatusSending] != 0 {
		t.Errorf("after drain: %v", c)
	}
}

func TestBurstAgainstThrottlingProviderDrainsEachOnce(t *testing.T) {
	st := openStore(t, nil)
	var start atomic.Int64
	prov := newLedger(t, time.Now, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		start.CompareAndSwap(0, time.Now().UnixNano())
		if time.Since(time.Unix(0, start.Load())) < 2*time.Second {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return false
		}
		return true
	})
	rt := webhookRuntime(t, "sms", prov.URL, ChannelConfig{Concurrency: 64})
	const n = 10000
	insert(t, st, messages(n, "sms", time.Now()))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"sms": rt}, Logger: quietLog})
	stop := run(t, s)
	waitFor(t, "all sent", func() bool { return counts(t, st)[state.StatusSent] == n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	prov.mu.Lock()
	defer prov.mu.Unlock()
	if len(prov.accepted) != n {
		t.Errorf("accepted %d keys, want %d", len(prov.accepted), n)
	}
	for k, c := range prov.accepted {
		if c != 1 {
			t.Errorf("%s accepted %d times", k, c)
		}
	}
	if prov.calls == n {
		t.Error("the provider never throttled")
	}
}

func TestRuleQuietHoursReplaceTheChannels(t *testing.T) {
	now := time.Date(2026, 7, 1, 10, 30, 0, 0, time.UTC) // 12:30 in Berlin
	clk := newClock(now)
	st := openStore(t, clk.Now)
	prov := newLedger(t, clk.Now, nil)
	rt := webhookRuntime(t, "sms", prov.URL, ChannelConfig{})
	msgs := messages(2, "sms", now)
	msgs[1].Rule = "rule-b"
	insert(t, st, msgs)
	s, err := New(Options{Store: st, Channels: map[string]*Runtime{"sms": rt}, Now: clk.Now, Logger: quietLog,
		RuleQuietHours: map[string]QuietHours{"rule-a": {Start: "12:00", End: "14:00", Timezone: "Europe/Berlin"}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, "both settled", func() bool {
		c := counts(t, st)
		return c[state.StatusSent] == 1 && c[state.StatusScheduled] == 1
	})
	if m := get(t, st, "rule-a:000000"); m.Status != state.StatusScheduled || !m.DueAt.Equal(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("rule-a message: %s due %s", m.Status, m.DueAt)
	}
	if _, err := New(Options{Store: st, RuleQuietHours: map[string]QuietHours{"x": {Start: "1", End: "2"}}}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad rule quiet hours: %v", err)
	}
}

// racingQueue completes one message itself just before the sender's group is written, as an
// operator action racing the sender would.
type racingQueue struct {
	*state.Store
	key  string
	once atomic.Bool
}

func (q *racingQueue) Complete(ctx context.Context, outs []state.Outcome) error {
	if q.once.CompareAndSwap(false, true) {
		if err := q.Store.Complete(ctx, []state.Outcome{{Key: q.key, Result: state.ResultDead, Reason: "operator"}}); err != nil {
			return err
		}
	}
	return q.Store.Complete(ctx, outs)
}

func TestOutcomeForAMessageNoLongerSendingIsSkipped(t *testing.T) {
	st := openStore(t, nil)
	prov := newLedger(t, time.Now, nil)
	rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{Concurrency: 1})
	insert(t, st, messages(5, "hook", time.Now()))
	q := &racingQueue{Store: st, key: "rule-a:000000"}
	s, _ := New(Options{Store: q, Channels: map[string]*Runtime{"hook": rt}, Logger: quietLog, ClaimBatch: 5})
	stop := run(t, s)
	waitFor(t, "all settled", func() bool {
		c := counts(t, st)
		return c[state.StatusSent] == 4 && c[state.StatusDead] == 1
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m := get(t, st, "rule-a:000000"); m.Reason != "operator" {
		t.Errorf("operator's outcome overwritten: %+v", m)
	}
}

// TestRateLimitAccuracy is a real-time test of the token bucket through the whole loop: over
// about 10 s the provider sees the configured rate within 5%.
func TestRateLimitAccuracy(t *testing.T) {
	const rate, window = 100.0, 10 * time.Second
	st := openStore(t, nil)
	prov := newLedger(t, time.Now, nil)
	rt := webhookRuntime(t, "sms", prov.URL, ChannelConfig{RatePerSecond: rate, Burst: 1, Concurrency: 32})
	insert(t, st, messages(int(rate*window.Seconds()*1.3), "sms", time.Now()))
	s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"sms": rt}, Logger: quietLog})
	stop := run(t, s)
	n := int(rate * window.Seconds())
	waitFor(t, "a window of sends", func() bool { return prov.acceptedCount() > n })
	stop()
	prov.mu.Lock()
	first, last := prov.realAt[0], prov.realAt[n]
	prov.mu.Unlock()
	got := float64(n) / last.Sub(first).Seconds()
	if got < rate*0.95 || got > rate*1.05 {
		t.Errorf("accepted %.1f/s over %s, want %.0f/s ±5%%", got, last.Sub(first).Round(time.Millisecond), rate)
	}
	t.Logf("accepted %.2f/s over %s", got, last.Sub(first).Round(time.Millisecond))
}

// holdingQueue defers every claimed message of rule "held" by a day before the sender sees it,
// as ingest's FireGate does for a rule in its quiet hours.
type holdingQueue struct{ *state.Store }

func (q holdingQueue) Claim(ctx context.Context, now time.Time, limit int) ([]*state.Message, error) {
	ms, err := q.Store.Claim(ctx, now, limit)
	if err != nil {
		return nil, err
	}
	var keep []*state.Message
	var outs []state.Outcome
	for _, m := range ms {
		if m.Rule == "held" {
			outs = append(outs, state.Outcome{Key: m.Key, Result: state.ResultDefer, At: now, RetryAt: now.Add(24 * time.Hour)})
			continue
		}
		keep = append(keep, m)
	}
	if len(outs) > 0 {
		if err := q.Store.Complete(ctx, outs); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

func TestClaimsThatComeBackEmptyDoNotStallTheLoop(t *testing.T) {
	clk := newClock(t0)
	st := openStore(t, clk.Now)
	held := messages(1500, "x", t0)
	for i, m := range held {
		m.Rule, m.Key = "held", fmt.Sprintf("held:%d", i)
	}
	insert(t, st, held)
	insert(t, st, messages(10, "x", t0.Add(time.Millisecond)))
	rec := &recorder{at: map[string][]time.Time{}}
	rt, _ := NewRuntime("x", ChannelConfig{}, rec)
	s, _ := New(Options{Store: holdingQueue{st}, Channels: map[string]*Runtime{"x": rt}, Now: clk.Now, Logger: quietLog,
		PollInterval: time.Hour})
	clk.Advance(time.Second)
	run(t, s)
	waitFor(t, "the 10 behind the held ones sent", func() bool { return counts(t, st)[state.StatusSent] == 10 })
}

func TestDrainTimeoutCutsHangingSends(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprint("idempotent=", idempotent), func(t *testing.T) {
			st := openStore(t, nil)
			var inflight atomic.Int32
			prov := newLedger(t, time.Now, func(_ int, _ http.ResponseWriter, r *http.Request) bool {
				inflight.Add(1)
				<-r.Context().Done() // hangs until the client gives up
				return false
			})
			rt := webhookRuntime(t, "hook", prov.URL, ChannelConfig{Idempotent: idempotent, Timeout: time.Hour})
			insert(t, st, messages(2, "hook", time.Now()))
			s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"hook": rt}, Logger: quietLog,
				DrainTimeout: 50 * time.Millisecond})
			stop := run(t, s)
			waitFor(t, "2 in flight", func() bool { return inflight.Load() == 2 })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			c := counts(t, st)
			want := state.StatusUncertain
			if idempotent {
				want = state.StatusRetry
			}
			if c[want] != 2 || c[state.StatusSending] != 0 {
				t.Errorf("after drain timeout: %v, want 2 %s", c, want)
			}
			if m := get(t, st, "rule-a:000000"); !strings.Contains(m.LastError, "drain timeout") {
				t.Errorf("last error %q", m.LastError)
			}
		})
	}
}
