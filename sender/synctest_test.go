package sender

import (
	"context"
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

// TestLoopSleepsUntilNextDue: with a poll interval of a day, a message due in an hour is sent
// exactly when due, woken by the NextDue timer (synctest: time is the bubble's fake clock).
func TestLoopSleepsUntilNextDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := state.Open(state.Options{InMemory: true, Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rec := &recorder{at: map[string][]time.Time{}}
		rt, _ := NewRuntime("x", ChannelConfig{}, rec)
		due := time.Now().Add(time.Hour).Truncate(time.Millisecond).Add(time.Millisecond)
		insert(t, st, messages(1, "x", due))
		s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"x": rt}, PollInterval: 24 * time.Hour, Logger: quietLog})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
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
		st, err := state.Open(state.Options{InMemory: true, Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rec := &recorder{at: map[string][]time.Time{}}
		rt, _ := NewRuntime("x", ChannelConfig{RatePerSecond: 10, Burst: 1}, rec)
		start := time.Now()
		insert(t, st, messages(30, "x", start))
		s, _ := New(Options{Store: st, Channels: map[string]*Runtime{"x": rt}, Logger: quietLog,
			MaxWait: 500 * time.Millisecond, PollInterval: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
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
		slicesSortTimes(all)
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

func slicesSortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}
