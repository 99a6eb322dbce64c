package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"notifier/cdc"
	"notifier/rules"
	"notifier/state"
)

// The rules most tests use: a send on insert of app.contracts when status = 'active', and
// a second rule on the same table whose template needs a column that may be NULL.
const testRules = `
rules:
  - name: activated
    table: app.contracts
    on: [insert, update]
    when: new.status == "active" && (op == "insert" || old.status != "active")
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Contract {{ .new.id }} is active, {{ money .new.amount \"EUR\" }}."
  - name: nickname
    table: app.contracts
    on: insert
    when: new.status == "active"
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Hi {{ .new.nick }}"
`

var quiet = slog.New(slog.DiscardHandler)

func loadRules(t testing.TB, src string) *rules.Set {
	t.Helper()
	set, err := rules.Parse("test.yaml", []byte(src), rules.Options{})
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	return set
}

func openStore(t testing.TB) *state.Store {
	t.Helper()
	st, err := state.Open(state.Options{Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// recordingStore wraps a store and records the batches applied.
type recordingStore struct {
	*state.Store
	mu      sync.Mutex
	batches []*state.Batch
}

func (r *recordingStore) Apply(ctx context.Context, b *state.Batch) (state.ApplyResult, error) {
	r.mu.Lock()
	r.batches = append(r.batches, b)
	r.mu.Unlock()
	return r.Store.Apply(ctx, b)
}

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func contract(id int64, status string, nick any) cdc.Row {
	return cdc.Row{"id": id, "status": status, "phone": "+4915112345678", "amount": decimal.RequireFromString("1234.50"), "nick": nick}
}

// txn builds a transaction with GTID 0-1-seq, each change an insert.
func txn(seq int, rows ...cdc.Row) *cdc.Txn {
	t := &cdc.Txn{Position: cdc.Position{GTID: fmt.Sprintf("0-1-%d", seq)}, CommitTime: t0.Add(time.Duration(seq) * time.Second)}
	for i, r := range rows {
		t.Changes = append(t.Changes, cdc.Change{Schema: "app", Table: "contracts", Op: cdc.OpInsert, After: r, Index: i})
	}
	return t
}

// newTestPipeline is the setup most tests here share: a fresh store and the Options of an
// Ingester that applies the rules of rulesYAML to it, with a quiet logger and a clock stopped
// at t0. A test sets the fields it is about (MaxBatch, OnCommit, Now, ...) before run.
func newTestPipeline(t testing.TB, rulesYAML string) (*state.Store, Options) {
	t.Helper()
	st := openStore(t)
	return st, Options{Store: st, Rules: loadRules(t, rulesYAML), Logger: quiet, Now: func() time.Time { return t0 }}
}

// run feeds txns to a new Ingester and returns after it committed them all or failed.
func run(t testing.TB, opts Options, txns ...*cdc.Txn) (*Ingester, error) {
	t.Helper()
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *cdc.Txn, len(txns))
	for _, x := range txns {
		ch <- x
	}
	close(ch)
	return g, g.Run(context.Background(), ch)
}

// mustRun is run for transactions that must all be committed.
func mustRun(t testing.TB, opts Options, txns ...*cdc.Txn) *Ingester {
	t.Helper()
	g, err := run(t, opts, txns...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// start runs a new Ingester on an unbuffered channel, for tests that act between
// transactions: a send returns once the Ingester has received the transaction. finish
// closes the channel and fails the test unless Run then returns nil.
func start(t testing.TB, opts Options) (g *Ingester, txns chan<- *cdc.Txn, finish func()) {
	t.Helper()
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *cdc.Txn)
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background(), ch) }()
	return g, ch, func() {
		t.Helper()
		close(ch)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func get(t testing.TB, st *state.Store, key string) *state.Message {
	t.Helper()
	m, err := st.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return m
}

func TestMessagesAndCheckpointAreCommittedTogether(t *testing.T) {
	st, opts := newTestPipeline(t, testRules)
	mustRun(t, opts,
		txn(1, contract(1, "active", "Ann")),
		txn(2, contract(2, "draft", nil)), // matches nothing
		txn(3, contract(3, "active", "Bob"), contract(4, "active", "Cid")),
	)
	cp, ok, err := st.Checkpoint()
	if err != nil || !ok {
		t.Fatalf("checkpoint: ok=%v err=%v", ok, err)
	}
	if cp.Position != "gtid:0-1-3" || cp.Flavor != "mariadb" || !cp.CommitTime.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("checkpoint = %+v, want gtid:0-1-3 mariadb at t0+3s", cp)
	}
	m := get(t, st, "activated:3")
	if m.Status != state.StatusReady || m.Text != "Contract 3 is active, €1,234.50." || m.To != "+4915112345678" ||
		m.Channel != "sms" || m.Rule != "activated" || m.Origin != "gtid:0-1-3" {
		t.Fatalf("activated:3 = %+v", m)
	}
	if got := get(t, st, "nickname:4").Text; got != "Hi Cid" {
		t.Fatalf("nickname:4 text = %q", got)
	}
	if _, err := st.Get("activated:2"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("activated:2: want not found, got %v", err)
	}
}

func TestTemplateFailureStoresThatMessageDeadAndOthersGoOut(t *testing.T) {
	st, opts := newTestPipeline(t, testRules)
	mustRun(t, opts, txn(1, contract(7, "active", nil)))
	dead := get(t, st, "nickname:7")
	if dead.Status != state.StatusDead || dead.Reason != ReasonTemplate || !strings.Contains(dead.LastError, "nick") {
		t.Fatalf("nickname:7 = status %s reason %q error %q, want dead/template naming the field", dead.Status, dead.Reason, dead.LastError)
	}
	if ok := get(t, st, "activated:7"); ok.Status != state.StatusReady {
		t.Fatalf("activated:7 status = %s, want ready", ok.Status)
	}
}

func TestRuleErrorOnARowStoresADeadMessage(t *testing.T) {
	st, opts := newTestPipeline(t, `
rules:
  - name: bad_key
    table: app.contracts
    on: insert
    key: string(new.id) + new.missing
    to: new.phone
    channel: sms
    template: "x"
`)
	mustRun(t, opts, txn(5, contract(1, "active", "A")))
	ms, err := st.List(context.Background(), state.Filter{Status: state.StatusDead})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Reason != ReasonRuleError || ms[0].Rule != "bad_key" || ms[0].LastError == "" {
		t.Fatalf("dead messages = %+v, want one rule_error of bad_key", ms)
	}
	if cp, _, _ := st.Checkpoint(); cp.Position != "gtid:0-1-5" {
		t.Fatalf("checkpoint %q: a rule error must not stop the pipeline", cp.Position)
	}
}

func TestATransactionIsNeverSplitAcrossApplies(t *testing.T) {
	st, opts := newTestPipeline(t, testRules)
	rs := &recordingStore{Store: st}
	opts.Store, opts.MaxBatch, opts.FlushInterval = rs, 14, time.Hour
	var txns []*cdc.Txn
	id := int64(0)
	for seq := 1; seq <= 20; seq++ {
		var rows []cdc.Row
		for range 3 { // 3 rows × 2 rules = 6 operations per transaction
			id++
			rows = append(rows, contract(id, "active", "N"))
		}
		txns = append(txns, txn(seq, rows...))
	}
	mustRun(t, opts, txns...)
	total := 0
	for i, b := range rs.batches {
		if n := len(b.Messages); n%6 != 0 || n > 14 {
			t.Fatalf("batch %d has %d messages: not whole transactions of 6, or over the cap", i, n)
		}
		total += len(b.Messages)
	}
	if total != 120 {
		t.Fatalf("%d messages applied, want 120", total)
	}
	if cp, _, _ := rs.Checkpoint(); cp.Position != "gtid:0-1-20" {
		t.Fatalf("checkpoint = %q", cp.Position)
	}
}

func TestATransactionBiggerThanOneBatchIsAnError(t *testing.T) {
	st, opts := newTestPipeline(t, testRules)
	opts.MaxBatch = 3
	_, err := run(t, opts, txn(9, contract(1, "active", "a"), contract(2, "active", "b")))
	if !errors.Is(err, ErrTxnTooBig) || !strings.Contains(err.Error(), "gtid:0-1-9") {
		t.Fatalf("err = %v, want ErrTxnTooBig naming the position", err)
	}
	if _, ok, _ := st.Checkpoint(); ok {
		t.Fatal("checkpoint moved past a transaction that was not stored")
	}
}

func TestReplayCreatesNothingTwice(t *testing.T) {
	_, opts := newTestPipeline(t, testRules)
	var results []state.ApplyResult
	opts.OnCommit = func(c Commit) { results = append(results, c.Result) }
	x := txn(1, contract(1, "active", "A"))
	mustRun(t, opts, x)
	mustRun(t, opts, x)
	if len(results) != 2 || results[0].Inserted != 2 || results[1].Inserted != 0 || results[1].Existing != 2 {
		t.Fatalf("apply results = %+v, want 2 inserted then 2 existing", results)
	}
}

func TestRuleSwapTakesEffectBetweenTransactions(t *testing.T) {
	st, opts := newTestPipeline(t, testRules)
	g, txns, finish := start(t, opts)
	txns <- txn(1, contract(1, "active", "A"))
	g.SetRules(loadRules(t, strings.ReplaceAll(testRules, "is active", "is now active")))
	txns <- txn(2, contract(2, "active", "B"))
	finish()
	if got := get(t, st, "activated:1").Text; got != "Contract 1 is active, €1,234.50." {
		t.Fatalf("before the swap: %q", got)
	}
	if got := get(t, st, "activated:2").Text; got != "Contract 2 is now active, €1,234.50." {
		t.Fatalf("after the swap: %q", got)
	}
}

func TestBlastRadiusGuardHoldsMessagesBeyondMaxPerMinute(t *testing.T) {
	st, opts := newTestPipeline(t, strings.Replace(testRules, "    channel: sms\n", "    channel: sms\n    max_per_minute: 2\n", 1))
	var txns []*cdc.Txn
	for i := 1; i <= 4; i++ {
		txns = append(txns, txn(i, contract(int64(i), "active", "N")))
	}
	g := mustRun(t, opts, txns...)
	for i, want := range []state.Status{state.StatusReady, state.StatusReady, state.StatusHeld, state.StatusHeld} {
		if m := get(t, st, fmt.Sprintf("activated:%d", i+1)); m.Status != want {
			t.Fatalf("activated:%d status = %s, want %s", i+1, m.Status, want)
		}
		// The other rule has no limit (and no default): never held.
		if m := get(t, st, fmt.Sprintf("nickname:%d", i+1)); m.Status != state.StatusReady {
			t.Fatalf("nickname:%d status = %s, want ready", i+1, m.Status)
		}
	}
	if p := g.PausedRules(); len(p) != 1 || p[0] != "activated" {
		t.Fatalf("paused rules = %v", p)
	}
}

func TestGuardResumesAfterACalmMinute(t *testing.T) {
	g := newGuard(quiet)
	at := t0
	admits := func(n int) (out []bool) {
		for range n {
			out = append(out, g.admit("r", 2, at, "+4915112345678"))
		}
		return out
	}
	if got := fmt.Sprint(admits(3)); got != "[true true false]" {
		t.Fatalf("minute 1: %s", got)
	}
	at = at.Add(time.Minute)
	if got := fmt.Sprint(admits(3)); got != "[false false false]" {
		t.Fatalf("minute 2 (previous minute over the limit): %s", got)
	}
	at = at.Add(time.Minute)
	if got := fmt.Sprint(admits(1)); got != "[false]" {
		t.Fatalf("minute 3 (previous minute still over the limit): %s", got)
	}
	at = at.Add(time.Minute)
	if got := fmt.Sprint(admits(2)); got != "[true true]" {
		t.Fatalf("minute 4 (previous minute calm): %s", got)
	}
}

func TestRemindersAreScheduledAndCancelled(t *testing.T) {
	_, opts := newTestPipeline(t, `
rules:
  - name: due_soon
    table: app.contracts
    on: [insert, update, delete]
    when: op != "delete" && new.status == "active"
    entity: string(new.id)
    at: commit_time + duration("1h")
    to: new.phone
    channel: sms
    template: "Reminder for {{ .new.id }}"
`)
	del := &cdc.Txn{Position: cdc.Position{GTID: "0-1-2"}, CommitTime: t0.Add(2 * time.Second),
		Changes: []cdc.Change{{Schema: "app", Table: "contracts", Op: cdc.OpDelete, Before: contract(1, "active", "A")}}}
	var res []state.ApplyResult
	opts.FlushInterval = time.Nanosecond
	opts.OnCommit = func(c Commit) { res = append(res, c.Result) }
	mustRun(t, opts, txn(1, contract(1, "active", "A")), del)
	sched, cancelled := 0, 0
	for _, r := range res {
		sched += r.Scheduled
		cancelled += r.Cancelled
	}
	if sched != 1 || cancelled != 1 {
		t.Fatalf("apply results %+v: want one reminder scheduled and then cancelled", res)
	}
}

func TestDigestWindowBecomesOneMessage(t *testing.T) {
	st, opts := newTestPipeline(t, `
rules:
  - name: supplier_digest
    table: app.contracts
    on: insert
    to: '"supplier@example.com"'
    channel: mail
    kind: email
    digest: {group_by: '"s1"', every: 4h}
    subject: "{{ .count }} new requests"
    template: "{{ range .items }}#{{ .new.id }} {{ end }}"
`)
	now := t0
	opts.Now = func() time.Time { return now }
	g := mustRun(t, opts, txn(1, contract(1, "active", "A"), contract(2, "active", "B")), txn(2, contract(3, "draft", "C")))
	if n, err := g.FlushDigests(context.Background(), st); err != nil || n != 0 {
		t.Fatalf("flush before the window ends: n=%d err=%v", n, err)
	}
	now = t0.Add(5 * time.Hour)
	if n, err := g.FlushDigests(context.Background(), st); err != nil || n != 1 {
		t.Fatalf("flush after the window: n=%d err=%v", n, err)
	}
	ms, err := st.List(context.Background(), state.Filter{Rule: "supplier_digest"})
	if err != nil || len(ms) != 1 {
		t.Fatalf("digest messages = %d (%v), want 1", len(ms), err)
	}
	m := ms[0]
	if m.Subject != "3 new requests" || m.Text != "#1 #2 #3 " || m.To != "supplier@example.com" || m.Status != state.StatusReady {
		t.Fatalf("digest message = subject %q text %q to %q status %s", m.Subject, m.Text, m.To, m.Status)
	}
	if n, _ := g.FlushDigests(context.Background(), st); n != 0 {
		t.Fatalf("a flushed window flushed again (%d)", n)
	}
}

func TestFireGateSkipsMisfiredRemindersAndDefersQuietHours(t *testing.T) {
	st, opts := newTestPipeline(t, `
rules:
  - name: late
    table: app.contracts
    on: insert
    entity: string(new.id)
    at: commit_time
    misfire: {skip_older_than: 1h}
    to: new.phone
    channel: sms
    template: "late {{ .new.id }}"
  - name: quiet
    table: app.contracts
    on: insert
    key: string(new.id)
    to: new.phone
    channel: sms
    quiet_hours: {from: "21:00", to: "08:00", timezone: UTC}
    template: "quiet {{ .new.id }}"
`)
	g := mustRun(t, opts, txn(1, contract(1, "active", "A")))
	gate := NewFireGate(st, g, nil)
	// Two hours after the fire time, at 22:00 UTC (inside the quiet window).
	at := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)
	ms, err := gate.Claim(context.Background(), at, 10)
	if err != nil || len(ms) != 0 {
		t.Fatalf("claim returned %d messages (%v), want both held back", len(ms), err)
	}
	late := get(t, st, "late:1@"+t0.Add(time.Second).Format(time.RFC3339))
	if late.Status != state.StatusSkipped || late.Reason != ReasonMisfire {
		t.Fatalf("late reminder = %s/%q, want skipped/misfire", late.Status, late.Reason)
	}
	quiet := get(t, st, "quiet:1")
	if quiet.Status == state.StatusSending || !quiet.DueAt.Equal(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("quiet message = %s due %s, want deferred to 08:00", quiet.Status, quiet.DueAt)
	}
}

// Claimed ahead (Acquire), the messages meet the policies when fired, at the fire time, not
// when they were acquired.
func TestFireGateAppliesThePoliciesAtFireWhenAcquiredAhead(t *testing.T) {
	st, opts := newTestPipeline(t, `
rules:
  - name: quiet
    table: app.contracts
    on: insert
    key: string(new.id)
    to: new.phone
    channel: sms
    quiet_hours: {from: "21:00", to: "08:00", timezone: UTC}
    template: "quiet {{ .new.id }}"
`)
	g := mustRun(t, opts, txn(1, contract(1, "active", "A")), txn(2, contract(2, "active", "B")))
	gate := NewFireGate(st, g, nil)
	before := time.Date(2026, 11, 30, 20, 59, 59, 0, time.UTC) // outside the window
	acquired, err := gate.Acquire(context.Background(), before, before.Add(5*time.Second), 10)
	if err != nil || len(acquired) != 2 {
		t.Fatalf("acquire = %d messages (%v), want 2 (quiet hours are not applied when acquiring)", len(acquired), err)
	}
	if out, err := gate.Fire(context.Background(), acquired[:1], before); err != nil || len(out) != 1 {
		t.Fatalf("fire before 21:00 = %d (%v), want 1", len(out), err)
	}
	at := time.Date(2026, 11, 30, 21, 0, 1, 0, time.UTC) // inside
	if out, err := gate.Fire(context.Background(), acquired[1:], at); err != nil || len(out) != 0 {
		t.Fatalf("fire at 21:00:01 = %d (%v), want it deferred", len(out), err)
	}
	m := get(t, st, acquired[1].Key)
	if m.Status != state.StatusScheduled || !m.DueAt.Equal(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)) || m.Attempts != 0 {
		t.Fatalf("quiet message = %s due %s attempts %d, want deferred to 08:00", m.Status, m.DueAt, m.Attempts)
	}
}

func TestRecheckReadsTheKeyFromTheMessageData(t *testing.T) {
	table, image, err := recheckImage([]byte(`{"table":"app.t","op":"update","new":{"id":18446744073709551615,"code":"a'b"},"old":{"id":1}}`))
	if err != nil || table != "app.t" {
		t.Fatalf("table %q, err %v", table, err)
	}
	if lit, err := sqlLiteral(image["id"]); err != nil || lit != "18446744073709551615" {
		t.Fatalf("id literal %q, %v: a big unsigned key must stay exact", lit, err)
	}
	if lit, err := sqlLiteral(image["code"]); err != nil || lit != `'a\'b'` {
		t.Fatalf("string literal %q, %v", lit, err)
	}
	if _, err := sqlLiteral(image["missing"]); err == nil {
		t.Fatal("a missing key value must be an error")
	}
	if _, _, err := recheckImage([]byte(`{"op":"insert"}`)); err == nil {
		t.Fatal("data without table and row must be an error")
	}
}

func TestTemplateDataJSONIsWhatEncodingJSONWrites(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	data := map[string]any{
		"new": cdc.Row{"id": int64(-7), "big": uint64(18446744073709551615), "amount": decimal.RequireFromString("1234.50"),
			"at": when, "bin": []byte{0, 255, 16}, "note": nil, "ok": true, "f": 0.1, "tiny": 1e-9,
			"doc":  map[string]any{"plan": "gold", "n": 7.0, "tags": []any{"a", "b"}},
			"text": "quote \" backslash \\ newline \n tab \t ctl \x01 é € 😀 \u2028 bad \xff end"},
		"old": nil, "op": "update", "table": "app.t", "vars": map[string]any{}, "commit_time": when,
	}
	got, err := appendJSON(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("appendJSON:\n%s\nencoding/json:\n%s", got, want)
	}
	if _, err := appendJSON(nil, map[string]any{"x": math.Inf(1)}); err == nil {
		t.Fatal("+Inf must be an error, as in encoding/json")
	}
}

func TestLagIsZeroOnceEverythingReadIsCommitted(t *testing.T) {
	_, opts := newTestPipeline(t, testRules)
	opts.Now = func() time.Time { return t0.Add(time.Hour) }
	g, txns, finish := start(t, opts)
	txns <- txn(1, contract(1, "active", "A"))
	// Wait until the batch is committed and the evaluator is idle. (caughtUp alone may still
	// be the flag set before the transaction was received.)
	for _, ok := g.LastCommit(); !ok || !g.caughtUp.Load(); _, ok = g.LastCommit() {
		time.Sleep(time.Millisecond)
	}
	if lag := g.Lag(); lag != 0 {
		t.Fatalf("lag when caught up = %s, want 0", lag)
	}
	g.caughtUp.Store(false) // as if a transaction were being evaluated
	if lag := g.Lag(); lag != time.Hour-time.Second {
		t.Fatalf("lag behind = %s, want 59m59s (now − the last transaction's commit time)", lag)
	}
	finish()
}

// An initial snapshot legitimately creates a message for every row it reads: the guard is
// for a wrong `when` on live changes, so snapshot rows neither count nor get held, and the
// live changes after them are judged on their own.
func TestBlastRadiusGuardIgnoresSnapshotRows(t *testing.T) {
	st, opts := newTestPipeline(t, `
rules:
  - name: activated
    table: app.contracts
    on: [insert, snapshot]
    when: new.status == "active"
    key: string(new.id)
    to: new.phone
    channel: sms
    max_per_minute: 2
    template: "Contract {{ .new.id }} is active."
`)
	snap := txn(1)
	for i := 1; i <= 5; i++ {
		snap.Changes = append(snap.Changes, cdc.Change{Schema: "app", Table: "contracts", Op: cdc.OpSnapshot,
			After: contract(int64(i), "active", "N"), Index: i - 1})
	}
	live := txn(2, contract(6, "active", "N"), contract(7, "active", "N"), contract(8, "active", "N"))
	g := mustRun(t, opts, snap, live)
	want := []state.Status{state.StatusReady, state.StatusReady, state.StatusReady, state.StatusReady, state.StatusReady, // snapshot
		state.StatusReady, state.StatusReady, state.StatusHeld} // live: the third of the minute is over the limit
	for i, w := range want {
		if m := get(t, st, fmt.Sprintf("activated:%d", i+1)); m.Status != w {
			t.Errorf("activated:%d status = %s, want %s", i+1, m.Status, w)
		}
	}
	if p := g.PausedRules(); len(p) != 1 || p[0] != "activated" {
		t.Fatalf("paused rules = %v, want [activated] (by the live changes only)", p)
	}
}

// The default message key ("<rule>:<position>#<row>") names the transaction by its GTID set
// alone when it has one: the file:pos of the same transaction differs between replicas, so a
// fail-over to another replica re-reading it must find the same keys. Without GTIDs the
// file:pos is all there is.
func TestDefaultKeysUseTheGTIDSetAloneSoAnotherReplicaFindsThem(t *testing.T) {
	st, opts := newTestPipeline(t, `
rules:
  - name: notify
    table: app.contracts
    on: insert
    when: new.status == "active"
    to: new.phone
    channel: sms
    template: "Contract {{ .new.id }}"
  - name: broken
    table: app.contracts
    on: insert
    when: new.nick + 1 > 0
    to: new.phone
    channel: sms
    template: "never"
`)
	at := func(p cdc.Position) *cdc.Txn {
		x := txn(1, contract(1, "active", "N"))
		x.Position = p
		return x
	}
	primaryReplica := cdc.Position{GTID: "0-1-42", File: "mysql-bin.000003", Pos: 1234}
	otherReplica := cdc.Position{GTID: "0-1-42", File: "replica-bin.000011", Pos: 98765}
	noGTID := cdc.Position{File: "mysql-bin.000003", Pos: 1234}

	var res []state.ApplyResult
	opts.OnCommit = func(c Commit) { res = append(res, c.Result) }
	for _, p := range []cdc.Position{primaryReplica, otherReplica} {
		mustRun(t, opts, at(p))
	}
	if res[0].Inserted != 2 || res[1].Inserted != 0 || res[1].Existing != 2 {
		t.Fatalf("apply results %+v: want the second replica's transaction to find both messages", res)
	}
	if m := get(t, st, "notify:gtid:0-1-42#0"); m.Origin != primaryReplica.String() {
		t.Fatalf("origin = %q, want the full position %q", m.Origin, primaryReplica.String())
	}
	get(t, st, "broken/error/gtid:0-1-42/0")

	st = openStore(t)
	opts.Store, opts.OnCommit = st, nil
	mustRun(t, opts, at(noGTID))
	get(t, st, "notify:file:mysql-bin.000003:1234#0")
	get(t, st, "broken/error/file:mysql-bin.000003:1234/0")
}
