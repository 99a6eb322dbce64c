package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestStateSurvivesCloseAndReopen(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	s, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{Flavor: "mysql", Position: "uuid:1-100", CommitTime: t0}
	mustApply(t, s, &Batch{Checkpoint: &cp, Messages: []*Message{sms("a"), sms("b")},
		Schedules: []Schedule{{Slot: "r/1", Message: reminder("c", t0.Add(time.Hour))}},
		Digest:    []DigestItem{digestItem("g", t0, "i")}, Cursors: map[string][]byte{"sw": []byte("7")}})
	mustClaim(t, s, t0, 1) // a: sending
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get("a"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}

	s, err = Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, ok, _ := s.Checkpoint(); !ok || got != cp {
		t.Fatalf("checkpoint after reopen = %+v", got)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusSending: 1, StatusReady: 1, StatusScheduled: 1}) {
		t.Fatalf("counts after reopen = %v", got)
	}
	if c, _ := s.Cursor("sw"); string(c) != "7" {
		t.Fatalf("cursor = %q", c)
	}
	if r, u, err := s.Settle(context.Background(), func(string) bool { return false }); r != 0 || u != 1 || err != nil {
		t.Fatalf("settle = %d %d %v", r, u, err)
	}
	if got := keysOf(mustClaim(t, s, t0.Add(2*time.Hour), 10)); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("claim after reopen = %v", got)
	}
	if due, _ := s.DueDigests(context.Background(), t0, 10); len(due) != 1 {
		t.Fatalf("digest windows after reopen = %v", due)
	}
}

func TestOpenOfADirectoryInUseSaysSo(t *testing.T) {
	s, _ := openTestStore(t)
	_, err := Open(Options{Dir: s.opts.Dir})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: err = %v, want ErrInUse", err)
	}
	want := "store " + s.opts.Dir + " is in use by another notifier process (badger: "
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; stop it or use the admin API") {
		t.Fatalf("message = %q", err)
	}
}

func TestOperatorTransitions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(s *Store) // leaves message "k" in some status
		op      func(s *Store) error
		want    Status
		wantErr error
		wantDue bool
	}{
		{"cancel a ready message", func(s *Store) {}, func(s *Store) error { return s.Cancel(ctx, "k", "") }, StatusCancelled, nil, false},
		{"cancel a sent message is refused", sendK(ResultSent), func(s *Store) error { return s.Cancel(ctx, "k", "") }, StatusSent, ErrWrongState, false},
		{"resend a dead message", sendK(ResultDead), func(s *Store) error { return s.Resend(ctx, "k") }, StatusReady, nil, true},
		{"resend an uncertain message", sendK(ResultUncertain), func(s *Store) error { return s.Resend(ctx, "k") }, StatusReady, nil, true},
		{"resend a sent message is refused", sendK(ResultSent), func(s *Store) error { return s.Resend(ctx, "k") }, StatusSent, ErrWrongState, false},
		{"drop an uncertain message", sendK(ResultUncertain), func(s *Store) error { return s.Drop(ctx, "k", "checked with provider") }, StatusCancelled, nil, false},
		{"drop a ready message is refused", func(s *Store) {}, func(s *Store) error { return s.Drop(ctx, "k", "") }, StatusReady, ErrWrongState, true},
		{"unknown key", func(s *Store) {}, func(s *Store) error { return s.Cancel(ctx, "nope", "") }, StatusReady, ErrNotFound, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			mustApply(t, s, &Batch{Messages: []*Message{sms("k")}})
			tt.prepare(s)
			err := tt.op(s)
			if (tt.wantErr == nil && err != nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			m := mustGet(t, s, "k")
			if m.Status != tt.want {
				t.Fatalf("status = %s, want %s", m.Status, tt.want)
			}
			if hasDue := len(dueEntries(t, s)) == 1; hasDue != tt.wantDue {
				t.Fatalf("due entry present = %v, want %v", hasDue, tt.wantDue)
			}
			if tt.want == StatusReady && tt.wantErr == nil && m.Attempts != 0 {
				t.Fatalf("resend kept attempts %d", m.Attempts)
			}
		})
	}
}

// sendK claims "k" and completes it with r.
func sendK(r Result) func(s *Store) {
	return func(s *Store) {
		if _, err := s.Claim(context.Background(), t0, 1); err != nil {
			panic(err)
		}
		if err := s.Complete(context.Background(), []Outcome{{Key: "k", Result: r, Reason: "x"}}); err != nil {
			panic(err)
		}
	}
}

func TestListFiltersByStatusRuleRecipientAndPages(t *testing.T) {
	s, clk := openTestStore(t)
	ctx := context.Background()
	var msgs []*Message
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		m := sms(k)
		if k == "e" {
			m.Rule, m.To = "other", "+499999"
		}
		msgs = append(msgs, m)
	}
	mustApply(t, s, &Batch{Messages: msgs})
	clk.Set(t0.Add(time.Minute))
	mustClaim(t, s, t0.Add(time.Minute), 2) // a, b sending
	list := func(f Filter) []string {
		ms, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return keysOf(ms)
	}
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{}, []string{"a", "b", "c", "d", "e"}},
		{Filter{Limit: 2}, []string{"a", "b"}},
		{Filter{Limit: 2, After: "b"}, []string{"c", "d"}},
		{Filter{Status: StatusSending}, []string{"a", "b"}},
		{Filter{Status: StatusSending, After: "a"}, []string{"b"}},
		{Filter{Status: StatusReady}, []string{"c", "d", "e"}},
		{Filter{Rule: "other"}, []string{"e"}},
		{Filter{To: "+499999"}, []string{"e"}},
		{Filter{Since: t0.Add(time.Second)}, []string{"a", "b"}},
		{Filter{Status: StatusReady, Since: t0.Add(time.Second)}, nil},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestExpireDeletesTerminalRecordsOlderThanTheHorizon(t *testing.T) {
	s, clk := openTestStore(t, func(o *Options) { o.DedupeHorizon = 24 * time.Hour })
	ctx := context.Background()
	mustApply(t, s, &Batch{
		Messages:  []*Message{sms("sent-old"), sms("dead-old"), sms("pending")},
		Schedules: []Schedule{{Slot: "r/1", Message: reminder("rem", t0)}},
		Digest:    []DigestItem{digestItem("g", t0, "i")},
	})
	claimed := mustClaim(t, s, t0, 3) // dead-old, rem, pending (key order at t0)
	if !slices.Equal(keysOf(claimed), []string{"dead-old", "pending", "rem"}) {
		t.Fatalf("claimed %v", keysOf(claimed))
	}
	outs := []Outcome{{Key: "dead-old", Result: ResultDead}, {Key: "rem", Result: ResultSent}, {Key: "pending", Result: ResultRetry, RetryAt: t0.Add(48 * time.Hour)}}
	if err := s.Complete(ctx, outs); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueDigests(ctx, t0, 1)
	if err := s.FlushDigest(ctx, due[0], digestMessage(due[0])); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(12 * time.Hour))
	mustClaim(t, s, t0.Add(12*time.Hour), 10) // sent-old and the digest message: sending
	if err := s.Complete(ctx, []Outcome{{Key: "sent-old", Result: ResultSent}}); err != nil {
		t.Fatal(err)
	}

	if n, err := s.Expire(ctx, t0.Add(24*time.Hour+time.Second)); err != nil || n != 2 {
		t.Fatalf("Expire at horizon+1s = %d, %v; want dead-old and rem", n, err)
	}
	for _, k := range []string{"dead-old", "rem"} {
		if _, err := s.Get(k); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s after expire: %v", k, err)
		}
	}
	if _, _, ok, _ := s.readSlotForTest("r/1"); ok {
		t.Fatal("slot of the expired reminder survived")
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusSent: 1, StatusRetry: 1, StatusSending: 1}) {
		t.Fatalf("counts after expire = %v", got)
	}
	if n, err := s.Expire(ctx, t0.Add(48*time.Hour)); err != nil || n != 1 {
		t.Fatalf("second Expire = %d, %v; want sent-old", n, err)
	}
	// pending retry and the sending digest message are never expired.
	if _, err := s.Get("pending"); err != nil {
		t.Fatal(err)
	}
}

func (s *Store) readSlotForTest(slot string) (int64, string, bool, error) {
	var (
		v   int64
		k   string
		ok  bool
		err error
	)
	_ = s.db.View(func(txn *badgerTxn) error { v, k, ok, err = readSlot(txn, slot); return nil })
	return v, k, ok, err
}

func TestRunMaintenanceExpiresUntilCancelled(t *testing.T) {
	s, clk := openTestStore(t, func(o *Options) { o.DedupeHorizon = time.Hour })
	mustApply(t, s, &Batch{Messages: []*Message{sms("k")}})
	mustClaim(t, s, t0, 1)
	if err := s.Complete(context.Background(), []Outcome{{Key: "k", Result: ResultSent}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(2 * time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.RunMaintenance(ctx, time.Millisecond) }()
	for {
		if _, err := s.Get("k"); errors.Is(err, ErrNotFound) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMessageRecordRoundTrips(t *testing.T) {
	full := &Message{Key: "k", Rule: "r", Channel: "c", To: "t", Subject: "s", Text: "tëxt", HTML: "<b>",
		Data: []byte(`{"a":1}`), Status: StatusRetry, Attempts: 3, CreatedAt: t0, DueAt: t0.Add(time.Second),
		UpdatedAt: t0.Add(2 * time.Second), LastError: "e", Reason: "why", ProviderID: "p", Origin: "0-1-2#3",
		Slot: "r/1", Recheck: "x > 1", History: []Attempt{{At: t0, Status: StatusRetry, Error: "503"}}}
	for _, m := range []*Message{full, {Key: "empty"}} {
		got, err := decodeMessage(m.Key, encodeState(nil, m), encodeBody(nil, m))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
	if _, err := decodeMessage("k", encodeState(nil, full)[:30], encodeBody(nil, full)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated state: err = %v, want ErrCorrupt", err)
	}
	if _, err := decodeMessage("k", encodeState(nil, full), encodeBody(nil, full)[:30]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated body: err = %v, want ErrCorrupt", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	m := &Message{Key: "k", Text: "hi", Data: []byte("{}"), History: []Attempt{{Error: "x"}}}
	f.Add(encodeState(nil, m), encodeBody(nil, m))
	f.Add(encodeState(nil, &Message{}), encodeBody(nil, &Message{}))
	f.Add([]byte{1}, []byte{1})
	f.Add(bytes.Repeat([]byte{0xff}, 40), bytes.Repeat([]byte{0x01}, 40))
	f.Fuzz(func(t *testing.T, state, body []byte) {
		// The other decoders of stored values must not panic on garbage either.
		for _, v := range [][]byte{state, body} {
			_, _, _ = decodeDue(v)
			_, _ = dueStatus(v)
			_, _ = decodeCheckpoint(v)
			_, _, _ = decodeSlot(v)
			_, _, _ = decodeWindow(v)
			_, _ = decodeClaimKeys(v)
			_ = flushedContains(v, 42)
			_, _, _, _ = parseStatusKey(v)
			_, _, _ = parseDueKey(v)
			_, _, _, _ = parseWindowKey(v)
		}
		m, err := decodeMessage("k", state, body)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to records that decode to the same message.
		again, err := decodeMessage("k", encodeState(nil, m), encodeBody(nil, m))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(m.History) > maxHistory {
			m.History = m.History[len(m.History)-maxHistory:]
		}
		if !reflect.DeepEqual(normal(again), normal(m)) {
			t.Fatalf("round trip differs:\n%+v\n%+v", again, m)
		}
	})
}

// normal maps empty slices to nil for comparison.
func normal(m *Message) *Message {
	c := *m
	if len(c.Data) == 0 {
		c.Data = nil
	}
	if len(c.History) == 0 {
		c.History = nil
	}
	return &c
}

func TestListDueReadsTheDueIndexInDueOrder(t *testing.T) {
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{
		reminder("late", t0.Add(time.Hour)), reminder("soon", t0.Add(time.Minute)), sms("now"), sms("another"),
	}})
	ms, err := s.ListDue(context.Background(), time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(ms); !slices.Equal(got, []string{"another", "now", "soon", "late"}) {
		t.Fatalf("ListDue = %v", got)
	}
	if ms[3].Text != "hello late" || ms[3].Status != StatusScheduled {
		t.Fatalf("due message = %+v", ms[3])
	}
	if ms, _ := s.ListDue(context.Background(), t0.Add(time.Hour), 10); len(ms) != 3 {
		t.Fatalf("ListDue before t0+1h = %v", keysOf(ms))
	}
	if ms, _ := s.ListDue(context.Background(), time.Time{}, 1); len(ms) != 1 {
		t.Fatalf("ListDue limit 1 = %v", keysOf(ms))
	}
}

func TestRecordReceipt(t *testing.T) {
	ctx := context.Background()
	s, _ := openTestStore(t)
	mustApply(t, s, &Batch{Messages: []*Message{sms("ok"), sms("bad"), sms("early")}})
	mustClaim(t, s, t0, 3)
	if err := s.Complete(ctx, []Outcome{{Key: "ok", Result: ResultSent}, {Key: "bad", Result: ResultSent, ProviderID: "P2"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordReceipt(ctx, "ok", ReceiptDelivered, "P1", "DELIVRD"); err != nil {
		t.Fatal(err)
	}
	if m := mustGet(t, s, "ok"); m.Status != StatusSent || m.ProviderID != "P1" || m.History[len(m.History)-1].Error != "receipt: delivered: DELIVRD" {
		t.Fatalf("delivered = %+v", m)
	}
	if err := s.RecordReceipt(ctx, "bad", ReceiptFailed, "P9", "30008 unknown error"); err != nil {
		t.Fatal(err)
	}
	if m := mustGet(t, s, "bad"); m.Status != StatusDead || m.Reason != ReasonDeliveryFailed || m.LastError != "30008 unknown error" || m.ProviderID != "P2" {
		t.Fatalf("failed = %+v", m)
	}
	if err := s.RecordReceipt(ctx, "early", ReceiptFailed, "", "x"); err != nil {
		t.Fatal(err)
	}
	if m := mustGet(t, s, "early"); m.Status != StatusSending {
		t.Fatalf("a receipt before Complete changed the status: %+v", m)
	}
	if err := s.RecordReceipt(ctx, "nope", ReceiptDelivered, "", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := s.RecordReceipt(ctx, "ok", "queued", "", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown status: %v", err)
	}
	if got := counts(t, s); !reflect.DeepEqual(got, map[Status]int{StatusSent: 1, StatusDead: 1, StatusSending: 1}) {
		t.Fatalf("counts = %v", got)
	}
}

func TestCountsKeptInMemoryMatchWhatIsStored(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	s, err := Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var b Batch
	for i := range 40 {
		key := fmt.Sprint("m", i)
		switch i % 4 {
		case 0:
			b.Messages = append(b.Messages, sms(key))
		case 1:
			b.Schedules = append(b.Schedules, Schedule{Slot: fmt.Sprint("r/", i%8), Message: reminder(key, t0.Add(time.Duration(i)*time.Second))})
		case 2:
			m := sms(key)
			m.Status = StatusHeld
			b.Messages = append(b.Messages, m)
		case 3:
			b.Digest = append(b.Digest, digestItem("g", t0, key))
		}
	}
	b.Cancels = []string{"r/5"}
	mustApply(t, s, &b)
	clk.Set(t0.Add(time.Minute))
	claimed := mustClaim(t, s, t0.Add(time.Minute), 100)
	var outs []Outcome
	for i, m := range claimed {
		r := []Result{ResultSent, ResultRetry, ResultDead, ResultUncertain, ResultDefer, ResultSkipped, 0}[i%7]
		if r != 0 {
			outs = append(outs, Outcome{Key: m.Key, Result: r, RetryAt: t0.Add(time.Hour)})
		}
	}
	if err := s.Complete(ctx, outs); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(ctx, "m2", ""); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueDigests(ctx, t0, 10)
	if err := s.FlushDigest(ctx, due[0], digestMessage(due[0])); err != nil {
		t.Fatal(err)
	}

	listed := map[Status]int{}
	for _, st := range Statuses() {
		ms, err := s.List(ctx, Filter{Status: st, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) > 0 {
			listed[st] = len(ms)
		}
	}
	inMemory := counts(t, s)
	if !reflect.DeepEqual(inMemory, listed) {
		t.Fatalf("counts %v, but List by status finds %v", inMemory, listed)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := counts(t, s); !reflect.DeepEqual(got, inMemory) {
		t.Fatalf("counts after reopen %v, before %v", got, inMemory)
	}
}
