package sender

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"notifier/state"
)

// recorder is a channel at the provider edge that notes the (bubble) time of each send.
type recorder struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (r *recorder) Send(_ context.Context, m *state.Message) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.at[m.Key] = append(r.at[m.Key], time.Now())
	return false, nil
}

// runInBubble runs a Sender over an in-memory store holding msgs, with one channel "x" (cfg)
// that records send times, for d of the bubble's fake time; opts adds the loop's settings.
// Call it inside synctest.Test.
func runInBubble(t *testing.T, cfg ChannelConfig, msgs func(start time.Time) []*state.Message, opts Options, d time.Duration) *recorder {
	t.Helper()
	st, err := state.Open(state.Options{InMemory: true, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{at: map[string][]time.Time{}}
	rt, _ := NewRuntime("x", cfg, rec)
	insert(t, st, msgs(time.Now()))
	opts.Store, opts.Channels, opts.Logger = st, map[string]*Runtime{"x": rt}, quietLog
	s, _ := New(opts)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(d)
	synctest.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestLoopSleepsUntilNextDue: with a poll interval of a day, a message due in an hour is sent
// exactly when due, woken by the NextDue timer (synctest: time is the bubble's fake clock).
func TestLoopSleepsUntilNextDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		due := time.Now().Add(time.Hour).Truncate(time.Millisecond).Add(time.Millisecond)
		rec := runInBubble(t, ChannelConfig{}, func(time.Time) []*state.Message { return messages(1, "x", due) },
			Options{PollInterval: 24 * time.Hour}, 2*time.Hour)
		at := rec.at["rule-a:000000"]
		if len(at) != 1 || !at[0].Equal(due) {
			t.Errorf("sent at %v, want once at %v", at, due)
		}
	})
}

// TestRateLimitSpacingInFakeTime: 30 messages on a 10/s channel with burst 1 go out exactly
// 100 ms apart, in-memory waits and deferrals through the store alike.
func TestRateLimitSpacingInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := runInBubble(t, ChannelConfig{RatePerSecond: 10, Burst: 1},
			func(start time.Time) []*state.Message { return messages(30, "x", start) },
			Options{MaxWait: 500 * time.Millisecond, PollInterval: time.Hour}, 10*time.Second)
		var all []time.Time
		for k, at := range rec.at {
			if len(at) != 1 {
				t.Errorf("%s sent %d times", k, len(at))
			}
			all = append(all, at...)
		}
		if len(all) != 30 {
			t.Fatalf("sent %d of 30", len(all))
		}
		slices.SortFunc(all, time.Time.Compare)
		for i := 1; i < len(all); i++ {
			if gap := all[i].Sub(all[i-1]); gap < 100*time.Millisecond-time.Millisecond {
				t.Errorf("send %d came %s after the previous, want >= 100ms", i, gap)
			}
		}
		if span := all[len(all)-1].Sub(all[0]); span > 3100*time.Millisecond {
			t.Errorf("30 sends took %s at 10/s", span)
		}
	})
}
