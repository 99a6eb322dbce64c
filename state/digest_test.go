package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func digestItem(group string, window time.Time, item string) DigestItem {
	return DigestItem{Rule: "supplier", Group: group, Window: window, Item: item, Data: []byte(`{"id":"` + item + `"}`),
		Channel: "email", To: group + "@example.com"}
}

func itemNames(w DigestWindow) []string {
	var out []string
	for _, it := range w.Items {
		out = append(out, it.Item)
	}
	return out
}

func digestMessage(w DigestWindow) *Message {
	return &Message{Key: fmt.Sprintf("digest:%s/%s/%d", w.Rule, w.Group, w.Window.UnixMilli()), Rule: w.Rule,
		Channel: w.Channel, To: w.To, Text: fmt.Sprint(len(w.Items), " requests"), Origin: "digest"}
}

func TestDigestWindowsCollectItemsAndFlushExactlyOnce(t *testing.T) {
	s, _ := openTestStore(t)
	w1, w2 := t0.Add(4*time.Hour), t0.Add(8*time.Hour)
	res := mustApply(t, s, &Batch{Digest: []DigestItem{
		digestItem("acme/eu", w1, "req-1"), digestItem("acme/eu", w1, "req-2"),
		digestItem("acme/eu", w2, "req-3"), digestItem("globex", w1, "req-4"),
		digestItem("acme/eu", w1, "req-1"), // the same item again
	}})
	if res.DigestItems != 4 || res.Existing != 1 {
		t.Fatalf("apply = %+v, want 4 items, 1 existing", res)
	}
	ctx := context.Background()
	if due, err := s.DueDigests(ctx, w1.Add(-time.Millisecond), 10); err != nil || len(due) != 0 {
		t.Fatalf("before the window ends: %d windows, %v", len(due), err)
	}
	due, err := s.DueDigests(ctx, w1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 {
		t.Fatalf("due windows at w1 = %+v, want acme/eu and globex", due)
	}
	acme := due[0]
	if acme.Group != "acme/eu" || !acme.Window.Equal(w1) || acme.Channel != "email" || acme.To != "acme/eu@example.com" ||
		!slices.Equal(itemNames(acme), []string{"req-1", "req-2"}) || string(acme.Items[0].Data) != `{"id":"req-1"}` {
		t.Fatalf("first window = %+v", acme)
	}
	if err := s.FlushDigest(ctx, acme, digestMessage(acme)); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushDigest(ctx, acme, digestMessage(acme)); !errors.Is(err, ErrAlreadyFlushed) {
		t.Fatalf("second flush: err = %v, want ErrAlreadyFlushed", err)
	}
	m := mustGet(t, s, digestMessage(acme).Key)
	if m.Status != StatusReady || m.Text != "2 requests" {
		t.Fatalf("digest message = %+v", m)
	}
	due, _ = s.DueDigests(ctx, w2, 10)
	var left []string
	for _, w := range due {
		left = append(left, w.Group+"@"+w.Window.Sub(t0).String())
	}
	if !slices.Equal(left, []string{"globex@4h0m0s", "acme/eu@8h0m0s"}) {
		t.Fatalf("due windows after flush = %v", left)
	}
	// Replaying the flushed items adds nothing: no second digest.
	res = mustApply(t, s, &Batch{Digest: []DigestItem{digestItem("acme/eu", w1, "req-1"), digestItem("acme/eu", w1, "req-2")}})
	if res.DigestItems != 0 || res.Existing != 2 {
		t.Fatalf("replay of flushed items = %+v, want 2 existing", res)
	}
	if due, _ := s.DueDigests(ctx, w1, 10); len(due) != 1 || due[0].Group != "globex" {
		t.Fatalf("after replay: %+v", due)
	}
}

func TestAnEmptyWindowSendsNothing(t *testing.T) {
	s, _ := openTestStore(t)
	due, err := s.DueDigests(context.Background(), t0.Add(24*time.Hour), 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("due digests of an empty store = %+v, %v", due, err)
	}
	w := DigestWindow{Rule: "supplier", Group: "nobody", Window: t0}
	if err := s.FlushDigest(context.Background(), w, digestMessage(w)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("flush of a window without items: err = %v, want ErrNotFound", err)
	}
	if got := counts(t, s); len(got) != 0 {
		t.Fatalf("counts = %v, want no message", got)
	}
}

func TestALateItemGoesToTheNextWindowNotLost(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := context.Background()
	mustApply(t, s, &Batch{Digest: []DigestItem{digestItem("acme", t0, "req-1")}})
	due, _ := s.DueDigests(ctx, t0, 10)
	// An item arrives between reading the window and flushing it...
	mustApply(t, s, &Batch{Digest: []DigestItem{digestItem("acme", t0, "req-2")}})
	if err := s.FlushDigest(ctx, due[0], digestMessage(due[0])); err != nil {
		t.Fatal(err)
	}
	// ...and another after the flush (replica lag).
	if res := mustApply(t, s, &Batch{Digest: []DigestItem{digestItem("acme", t0, "req-3")}}); res.DigestItems != 1 {
		t.Fatalf("late item = %+v", res)
	}
	due, _ = s.DueDigests(ctx, t0.Add(time.Second), 10)
	if len(due) != 1 || !due[0].Window.Equal(t0.Add(time.Millisecond)) || !slices.Equal(itemNames(due[0]), []string{"req-2", "req-3"}) {
		t.Fatalf("late window = %+v, want req-2 and req-3 at t0+1ms", due)
	}
}

func TestAWindowBiggerThanOneTransactionStillFlushesOnce(t *testing.T) {
	s, _ := openTestStore(t, func(o *Options) { o.MemTableSize = 1 << 20; o.NoSync = true; o.DedupeHorizon = time.Hour })
	ctx := context.Background()
	n := 3*s.claimCap() + 7
	var items []DigestItem
	for i := range n {
		items = append(items, digestItem("big", t0, fmt.Sprintf("req-%05d", i)))
	}
	for chunk := range slices.Chunk(items, 50) {
		mustApply(t, s, &Batch{Digest: chunk})
	}
	due, err := s.DueDigests(ctx, t0, 10)
	if err != nil || len(due) != 1 || len(due[0].Items) != n {
		t.Fatalf("due = %d windows, %v", len(due), err)
	}
	if err := s.FlushDigest(ctx, due[0], digestMessage(due[0])); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueDigests(ctx, t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("windows after flush: %d", len(due))
	}
	if left := countPrefix(t, s, prefixItem); left != 0 {
		t.Fatalf("%d items left after flush", left)
	}
	if res := mustApply(t, s, &Batch{Digest: items[:10]}); res.Existing != 10 {
		t.Fatalf("replay after a big flush = %+v", res)
	}
	if _, err := s.Expire(ctx, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if left := countPrefix(t, s, prefixFlushed); left != 0 {
		t.Fatalf("%d flushed markers left after expire", left)
	}
}

func countPrefix(t *testing.T, s *Store, prefix string) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badgerTxn) error {
		it := txn.NewIterator(keyOnly(prefix))
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
