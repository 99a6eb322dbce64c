package state

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// t0 is the tests' epoch (millisecond-aligned, UTC, as the store returns times).
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// openTestStore opens a real Badger store in a temp dir (synced, as in production) with a
// test clock at t0; it is closed when the test ends.
func openTestStore(t testing.TB, mod ...func(*Options)) (*Store, *clock) {
	t.Helper()
	clk := &clock{t: t0}
	opts := Options{Dir: t.TempDir(), Now: clk.Now}
	for _, f := range mod {
		f(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s, clk
}

func sms(key string) *Message {
	return &Message{Key: key, Rule: "r", Channel: "sms", To: "+4912345678", Text: "hello " + key}
}

func reminder(key string, at time.Time) *Message {
	m := sms(key)
	m.Status, m.DueAt = StatusScheduled, at
	return m
}

func mustApply(t testing.TB, s *Store, b *Batch) ApplyResult {
	t.Helper()
	res, err := s.Apply(context.Background(), b)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func mustGet(t testing.TB, s *Store, key string) *Message {
	t.Helper()
	m, err := s.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return m
}

func mustClaim(t testing.TB, s *Store, now time.Time, limit int) []*Message {
	t.Helper()
	ms, err := s.Claim(context.Background(), now, limit)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return ms
}

func keysOf(ms []*Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Key
	}
	return out
}

// dueEntries lists the due index as "key@offset-from-t0".
func dueEntries(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	err := s.db.View(func(txn *badgerTxn) error {
		it := txn.NewIterator(keyOnly(prefixDue))
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ms, key, _ := parseDueKey(it.Item().Key())
			out = append(out, fmt.Sprintf("%s@%v", key, fromMs(ms).Sub(t0)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func statusOf(t testing.TB, s *Store, key string) Status {
	t.Helper()
	return mustGet(t, s, key).Status
}

func counts(t testing.TB, s *Store) map[Status]int {
	t.Helper()
	c, err := s.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
