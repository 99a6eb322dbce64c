package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"notifier/admin"
	"notifier/state"
)

// The reminder proofs of issue 4, end to end on real MariaDB (devdb), Badger and
// `notifier run`: reschedule, cancel and delete with a replay; the binary SIGKILLed while a
// large batch fires; misfire and quiet hours across a DST change; digests across two windows
// with a crash at the boundary.

var tasksDDL = []string{`CREATE TABLE {db}.tasks (id BIGINT PRIMARY KEY, phone VARCHAR(20) NOT NULL,
	due_at DATETIME NOT NULL, state VARCHAR(8) NOT NULL DEFAULT 'open')`}

// dueRule: one reminder per open task at its due_at. A delete cancels it (the rule does not
// list delete: a reminder's row deleted is a cancel); closing the task cancels it.
const dueRule = `
rules:
  - name: due
    table: {db}.tasks
    on: [insert, update]
    when: new.state == "open"
    entity: string(new.id)
    at: new.due_at
    key: string(new.id)
    to: new.phone
    channel: sms
    template: 'Task {{ .new.id }} is due at {{ date .new.due_at "15:04:05" }}.'
`

func insertTask(id int, due string) string {
	return fmt.Sprintf("INSERT INTO {db}.tasks (id, phone, due_at) VALUES (%d, '+49151000%05d', %s)", id, id, due)
}

func moveTask(id int, due string) string {
	return fmt.Sprintf("UPDATE {db}.tasks SET due_at = %s WHERE id = %d", due, id)
}

func setTaskState(id int, st string) string {
	return fmt.Sprintf("UPDATE {db}.tasks SET state = '%s' WHERE id = %d", st, id)
}

// TestRemindersRescheduleCancelDeleteAndAReplayRepeatsNothing: every way a reminder changes,
// written in quick succession (so several land in one ingest batch): each task's last state
// decides, each due reminder reaches the provider once, none that was moved, cancelled or
// deleted does. Then the checkpoint is set back to before the first insert and the service
// runs again: the same schedule (statuses and due index) and no extra message.
func TestRemindersRescheduleCancelDeleteAndAReplayRepeatsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tasksDDL, map[string]string{"tasks.yaml": dueRule})
	e.writeConfig()
	e.seedCheckpoint()
	st := e.openStoreOnce()
	start, _, err := st.Checkpoint()
	must(t, err)
	must(t, st.Close())

	const soon, soon2, far, far2, past = "UTC_TIMESTAMP() + INTERVAL 3 SECOND", "UTC_TIMESTAMP() + INTERVAL 4 SECOND",
		"UTC_TIMESTAMP() + INTERVAL 1 DAY", "UTC_TIMESTAMP() + INTERVAL 2 DAY", "UTC_TIMESTAMP() - INTERVAL 1 SECOND"
	svc := e.start()
	e.exec(
		insertTask(1, far), moveTask(1, soon), // 1: moved earlier → fires at the new time only
		insertTask(2, soon), moveTask(2, far), // 2: moved later → fires not now; pending at the new time
		insertTask(3, soon), setTaskState(3, "done"), // 3: closed → cancelled
		insertTask(4, soon), "DELETE FROM {db}.tasks WHERE id = 4", // 4: deleted → cancelled
		insertTask(5, soon),                                                   // 5: untouched → fires
		insertTask(6, soon), setTaskState(6, "done"), setTaskState(6, "open"), // 6: closed, reopened → fires once
		insertTask(7, soon), moveTask(7, far), moveTask(7, soon2), // 7: moved twice → fires at the last time
		insertTask(8, soon), "DELETE FROM {db}.tasks WHERE id = 8", insertTask(8, soon), // 8: deleted, inserted again → fires
		insertTask(9, far), moveTask(9, far2), // 9: moved within the future → pending at the new time
		insertTask(10, soon), moveTask(10, far), setTaskState(10, "done"), // 10: moved, then closed → nothing pending
	)
	wantSent := []int{1, 5, 6, 7, 8}
	e.waitFor("the due reminders", 60*time.Second, func() bool {
		c := e.gw.counts()
		for _, id := range wantSent {
			if len(withPrefix(c, fmt.Sprintf("due:%d@", id))) == 0 {
				return false
			}
		}
		return true
	})
	// A past-due task fires at once: everything before it has been read, and the "soon"
	// reminders that must not fire had their time (they share the 3–4 s fire times).
	time.Sleep(time.Second)
	e.exec(insertTask(90, past))
	e.waitFor("the sentinel", 60*time.Second, func() bool { return len(withPrefix(e.gw.counts(), "due:90@")) == 1 })
	must(t, svc.stop())

	assertTaskDeliveries(t, e.gw.counts(), append(wantSent, 90))
	isSentinel := func(k string) bool { return strings.HasPrefix(k, "due:9") && !strings.HasPrefix(k, "due:9@") }
	st = e.openStoreOnce()
	before := readSchedule(t, st, isSentinel)
	assertTaskSchedule(t, before)

	// Replay: the checkpoint back to before the first insert, with the service stopped.
	must(t, st.SetCheckpoint(context.Background(), start))
	must(t, st.Close())
	svc = e.start()
	e.exec(insertTask(91, past))
	e.waitFor("the sentinel after the replay", 60*time.Second, func() bool { return len(withPrefix(e.gw.counts(), "due:91@")) == 1 })
	time.Sleep(500 * time.Millisecond) // a reminder revived by mistake would be claimed by now
	must(t, svc.stop())

	assertTaskDeliveries(t, e.gw.counts(), append(wantSent, 90, 91))
	st = e.openStoreOnce()
	after := readSchedule(t, st, isSentinel)
	must(t, st.Close())
	if !maps.Equal(before.status, after.status) || !slices.Equal(before.due, after.due) {
		t.Fatalf("the replay changed the schedule:\nbefore\n%safter\n%s", before, after)
	}
}

// openStoreOnce opens the env's store; the caller closes it (before the service starts).
func (e *env) openStoreOnce() *state.Store {
	e.t.Helper()
	st, err := state.Open(state.Options{Dir: e.storeDir, Logger: quietLogger})
	must(e.t, err)
	return st
}

// assertTaskDeliveries: the provider received one reminder of each of these tasks and
// nothing else.
func assertTaskDeliveries(t *testing.T, counts map[string]int, ids []int) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		keys := withPrefix(counts, fmt.Sprintf("due:%d@", id))
		if len(keys) != 1 || counts[keys[0]] != 1 {
			t.Errorf("task %d: provider received %v, want one reminder once", id, keys)
		}
		for _, k := range keys {
			want[k] = true
		}
	}
	for k, n := range counts {
		if !want[k] {
			t.Errorf("the provider received %s (%d times): a moved, cancelled or deleted reminder", k, n)
		}
	}
}

// assertTaskSchedule checks each task's reminders in the store after the first run.
func assertTaskSchedule(t *testing.T, sc schedule) {
	t.Helper()
	byTask := map[int][]string{}
	for k, s := range sc.status {
		var id int
		if _, err := fmt.Sscanf(k, "due:%d@", &id); err != nil {
			t.Fatalf("unexpected key %q", k)
		}
		byTask[id] = append(byTask[id], s)
	}
	count := func(id int, status string) int {
		n := 0
		for _, s := range byTask[id] {
			if strings.HasPrefix(s, status+"/") {
				n++
			}
		}
		return n
	}
	// How many superseded reminders were written depends on the group commit (the last effect
	// of a slot in one batch wins, the earlier ones are never written); any that were are
	// cancelled.
	for id, want := range map[int][2]int{ // sent, scheduled
		1: {1, 0}, 2: {0, 1}, 3: {0, 0}, 4: {0, 0}, 5: {1, 0}, 6: {1, 0}, 7: {1, 0}, 8: {1, 0}, 9: {0, 1}, 10: {0, 0},
	} {
		if got := [2]int{count(id, "sent"), count(id, "scheduled")}; got != want ||
			len(byTask[id]) != want[0]+want[1]+count(id, "cancelled") {
			t.Errorf("task %d reminders %v: want %d sent, %d scheduled, the rest cancelled", id, byTask[id], want[0], want[1])
		}
	}
	if len(sc.due) != 2 || !strings.HasPrefix(sc.due[0], "due:2@") || !strings.HasPrefix(sc.due[1], "due:9@") {
		t.Errorf("due index %v, want the reminders of tasks 2 and 9", sc.due)
	}
}

// TestSIGKILLWhileABigBatchOfRemindersFiresSendsEachOnce: 2,000 rows schedule 4,000 reminders
// (one on a non-idempotent channel, one on an idempotent one) all due in the same second; the
// built binary is SIGKILLed several times while they fire and restarted. At the end every
// reminder fired exactly once as far as the channel allows: on the idempotent channel every
// key reached the provider (a resend after a crash is allowed there) and is sent; on the other
// no key reached the provider twice, and a key that never did is `uncertain`, never lost.
func TestSIGKILLWhileABigBatchOfRemindersFiresSendsEachOnce(t *testing.T) {
	t.Parallel()
	const rows, kills = 2000, 5
	bin := buildNotifier(t)
	e := newEnv(t, []string{`CREATE TABLE {db}.coupons (id BIGINT PRIMARY KEY, phone VARCHAR(20) NOT NULL, fire_at DATETIME NOT NULL)`},
		map[string]string{"coupons.yaml": `
rules:
  - name: coupon-sms
    table: {db}.coupons
    on: insert
    at: new.fire_at
    to: new.phone
    channel: sms
    template: "Coupon {{ .new.id }} opens in a minute."
  - name: coupon-hook
    table: {db}.coupons
    on: insert
    at: new.fire_at
    to: '"crm"'
    channel: hook
    template: '{"coupon":{{ .new.id }}}'
`})
	e.channels = smsAndHookChannels(e.gw.URL())
	adminAddr := e.withAdmin(t)
	e.writeConfig()
	e.seedCheckpoint()

	p := e.startBinary(t, bin)
	// All due in one second, a few seconds ahead: time to ingest them first.
	fire := time.Now().UTC().Truncate(time.Second).Add(4 * time.Second)
	for lo := 1; lo <= rows; lo += 500 {
		var vals []string
		for id := lo; id < lo+500; id++ {
			vals = append(vals, fmt.Sprintf("(%d, '+4915100%06d', '%s')", id, id, fire.Format(time.DateTime)))
		}
		e.exec("INSERT INTO {db}.coupons VALUES " + strings.Join(vals, ","))
	}
	waitFor(t, "the reminders stored", 60*time.Second, func() bool {
		c, err := adminCounts(adminAddr)
		return err == nil && c["scheduled"]+c["sending"] == 2*rows // sending: held ahead (sender.claim_ahead)
	})

	// Kill while they fire: each time some more reached the provider since the last start.
	for k := 1; k <= kills; k++ {
		base := len(e.gw.ledger())
		step := 150 + 100*k
		deadline := time.Now().Add(30 * time.Second)
		for len(e.gw.ledger()) < base+step && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		p.kill(e, fmt.Sprintf("%d with %d deliveries", k, len(e.gw.ledger())))
		if k < kills {
			p = e.startBinary(t, bin)
		}
	}
	t.Logf("%d SIGKILLs during the burst; %d deliveries so far", kills, len(e.gw.ledger()))

	p = e.startBinary(t, bin)
	waitFor(t, "no pending reminder", 2*time.Minute, func() bool {
		c, err := adminCounts(adminAddr)
		return err == nil && c["ready"]+c["scheduled"]+c["retry"]+c["sending"]+c["held"] == 0
	})
	p.term()

	counts := e.gw.counts()
	msgs := messagesByKey(t, e.openStore())
	at := "@" + fire.Format(time.RFC3339)
	var tally onceTally
	for id := 1; id <= rows; id++ {
		tally.check(t, counts, msgs, fmt.Sprintf("coupon-hook:%d%s", id, at), fmt.Sprintf("coupon-sms:%d%s", id, at))
	}
	if n := len(counts); n != tally.hookKeys+tally.delivered {
		t.Errorf("the provider received %d distinct keys, want %d (every reminder key, nothing else)", n, tally.hookKeys+tally.delivered)
	}
	if len(msgs) != 2*rows {
		t.Errorf("the store holds %d messages, want %d", len(msgs), 2*rows)
	}
	t.Logf("%d SIGKILLs: idempotent channel %d distinct keys (%d resent after a crash); non-idempotent channel %d delivered once, %d uncertain, 0 twice",
		kills, tally.hookKeys, tally.resent, tally.delivered, tally.uncertain)
}

// TestMisfireAndQuietHoursAcrossTheBerlinDSTChange runs the service on a clock the test sets
// (Serve's injected clock), around the night Europe/Berlin moves from CET to CEST
// (2026-03-29, 02:00 → 03:00):
//
//   - after a downtime of two hours, a reminder with misfire {skip_older_than: 1h} due 2 h ago
//     is skipped (reason misfire, listed by `notifier messages list --state skipped`); one due
//     30 min ago is sent; one with misfire `fire` due 2 h ago is sent;
//   - a reminder due at 22:30 CET inside the rule's quiet hours 21:00–08:00 Europe/Berlin is
//     deferred to 08:00 CEST = 06:00 UTC (not 07:00 UTC: the night is an hour shorter), does
//     not go out before, and goes out at that time.
func TestMisfireAndQuietHoursAcrossTheBerlinDSTChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []string{`CREATE TABLE {db}.alerts (id BIGINT PRIMARY KEY, phone VARCHAR(20) NOT NULL,
		fire_at DATETIME NOT NULL, kind VARCHAR(8) NOT NULL)`}, map[string]string{"alerts.yaml": `
rules:
  - name: mf-skip
    table: {db}.alerts
    on: insert
    when: new.kind == "skip"
    at: new.fire_at
    misfire: {skip_older_than: 1h}
    to: new.phone
    channel: sms
    template: "skip {{ .new.id }}"
  - name: mf-fire
    table: {db}.alerts
    on: insert
    when: new.kind == "fire"
    at: new.fire_at
    misfire: fire
    to: new.phone
    channel: sms
    template: "fire {{ .new.id }}"
  - name: mf-night
    table: {db}.alerts
    on: insert
    when: new.kind == "quiet"
    at: new.fire_at
    quiet_hours: {from: "21:00", to: "08:00", timezone: Europe/Berlin}
    to: new.phone
    channel: sms
    template: "night {{ .new.id }}"
`})
	adminAddr := e.withAdmin(t)
	e.writeConfig()
	e.seedCheckpoint()
	cfg := []string{"--config", e.cfgPath}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.DateTime, s)
		must(t, err)
		return v
	}
	key := func(rule string, id int, at string) string {
		return fmt.Sprintf("%s:%d@%s", rule, id, utc(at).Format(time.RFC3339))
	}
	var clock shiftedClock
	clock.at(utc("2026-03-28 18:00:00")) // 19:00 CET
	svc := e.startWithClock(clock.Now)
	e.exec(
		"INSERT INTO {db}.alerts VALUES (1, '+4915100000001', '2026-03-28 19:00:00', 'skip')",  // 2 h late after the downtime
		"INSERT INTO {db}.alerts VALUES (2, '+4915100000002', '2026-03-28 19:00:00', 'fire')",  // 2 h late, misfire fire
		"INSERT INTO {db}.alerts VALUES (3, '+4915100000003', '2026-03-28 20:30:00', 'skip')",  // 30 min late: within 1 h
		"INSERT INTO {db}.alerts VALUES (4, '+4915100000004', '2026-03-28 21:30:00', 'quiet')", // 22:30 CET: quiet
	)
	waitFor(t, "4 reminders scheduled", 60*time.Second, func() bool {
		c, err := adminCounts(adminAddr)
		return err == nil && c["scheduled"] == 4
	})
	must(t, svc.stop())

	// Two hours of downtime.
	clock.at(utc("2026-03-28 21:00:00"))
	svc = e.startWithClock(clock.Now)
	k1, k2, k3, k4 := key("mf-skip", 1, "2026-03-28 19:00:00"), key("mf-fire", 2, "2026-03-28 19:00:00"),
		key("mf-skip", 3, "2026-03-28 20:30:00"), key("mf-night", 4, "2026-03-28 21:30:00")
	e.waitFor("the late reminders", 60*time.Second, func() bool { c := e.gw.counts(); return c[k2] == 1 && c[k3] == 1 })
	var skipped []admin.MessageView
	e.waitFor("the misfire in the CLI", 30*time.Second, func() bool {
		skipped = opsJSON[[]admin.MessageView](t, append([]string{"messages", "list", "--state", "skipped"}, cfg...)...)
		return len(skipped) > 0
	})
	if len(skipped) != 1 || skipped[0].Key != k1 || skipped[0].Reason != "misfire" {
		t.Fatalf("skipped messages = %+v, want only %s with reason misfire", skipped, k1)
	}

	// 22:30 CET: the quiet reminder is due and deferred to 08:00 CEST.
	clock.at(utc("2026-03-28 21:30:00"))
	nightView := func() admin.MessageView {
		ms := opsJSON[[]admin.MessageView](t, append([]string{"messages", "list", "--rule", "mf-night"}, cfg...)...)
		if len(ms) != 1 || ms[0].Key != k4 {
			t.Fatalf("mf-night messages = %+v, want %s", ms, k4)
		}
		return ms[0]
	}
	var m admin.MessageView
	e.waitFor("the quiet-hours deferral", 30*time.Second, func() bool { m = nightView(); return !m.DueAt.Equal(utc("2026-03-28 21:30:00")) })
	if m.Status != "scheduled" || !m.DueAt.Equal(utc("2026-03-29 06:00:00")) {
		t.Fatalf("deferred reminder = %s due %s, want scheduled at 2026-03-29 06:00 UTC (08:00 CEST)", m.Status, m.DueAt.UTC())
	}
	// 07:59:58 CEST: still quiet; at 08:00 CEST it goes out.
	clock.at(utc("2026-03-29 05:59:58"))
	time.Sleep(1500 * time.Millisecond)
	if n := e.gw.counts()[k4]; n != 0 && clock.Now().Before(utc("2026-03-29 06:00:00")) {
		t.Fatalf("%s sent before 08:00 CEST", k4)
	}
	e.waitFor("the deferred reminder", 30*time.Second, func() bool { m = nightView(); return m.Status == "sent" })
	if m.UpdatedAt.Before(utc("2026-03-29 06:00:00")) {
		t.Fatalf("deferred reminder = %s at %s, want sent at or after 06:00 UTC", m.Status, m.UpdatedAt.UTC())
	}
	must(t, svc.stop())
	if got, want := sortedKeys(e.gw.counts()), slices.Sorted(slices.Values([]string{k2, k3, k4})); !slices.Equal(got, want) {
		t.Fatalf("provider received %v, want %v", got, want)
	}
}

// TestDigestsOverTwoWindowsWithSIGKILLAtTheBoundarySendEachItemOnce: items of two groups
// arrive in two 4-second windows; the built binary is SIGKILLed just after the first window
// closes (before or while it is flushed) and again as soon as the second window's first
// digest reaches the provider. At the end there is exactly one message per group and window
// (in the store, and one distinct key at the provider; the channel is idempotent, so a
// crash between the provider's answer and the outcome may resend that same key), and every
// item is in exactly one of them, in its own group and window.
func TestDigestsOverTwoWindowsWithSIGKILLAtTheBoundarySendEachItemOnce(t *testing.T) {
	t.Parallel()
	const every = 4 * time.Second
	bin := buildNotifier(t)
	e := newEnv(t, []string{`CREATE TABLE {db}.requests (id BIGINT PRIMARY KEY, grp VARCHAR(8) NOT NULL)`},
		map[string]string{"digest.yaml": `
rules:
  - name: dg
    table: {db}.requests
    on: insert
    key: string(new.id)
    to: '"supplier-" + new.grp'
    channel: sms
    digest: {group_by: new.grp, every: 4s}
    template: '{{ .group }}:{{ range .items }} {{ .new.id }}{{ end }}'
`})
	e.idempotent = true
	adminAddr := e.withAdmin(t)
	e.writeConfig()
	e.seedCheckpoint()
	up := func() {
		waitFor(t, "the service up", 30*time.Second, func() bool { _, err := adminCounts(adminAddr); return err == nil })
	}
	insert := func(from, to int) {
		for id := from; id <= to; id++ {
			e.exec(fmt.Sprintf("INSERT INTO {db}.requests VALUES (%d, '%c')", id, "ab"[id%2]))
		}
	}

	p := e.startBinary(t, bin)
	up()
	// The first window: its end at least 1.5 s ahead, so all its items commit inside it.
	b1 := time.Now().Truncate(every).Add(every)
	if time.Until(b1) < 1500*time.Millisecond {
		time.Sleep(time.Until(b1) + 10*time.Millisecond)
		b1 = b1.Add(every)
	}
	insert(1, 20)
	if time.Now().After(b1) {
		t.Fatal("the first window's items took longer than the window")
	}
	time.Sleep(time.Until(b1) + 100*time.Millisecond)
	p.kill(e, "1, just after the first window's end")

	p = e.startBinary(t, bin)
	up()
	insert(21, 40)
	b2 := b1.Add(every)
	if time.Now().After(b2) {
		t.Fatal("the second window's items took longer than the window")
	}
	w1, w2 := b1.UTC().Format("20060102T150405.000Z"), b2.UTC().Format("20060102T150405.000Z")
	firstOfW2 := func() bool {
		for k := range e.gw.counts() {
			if strings.HasSuffix(k, w2) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(30 * time.Second)
	for !firstOfW2() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	p.kill(e, "2, at the second window's first digest")

	p = e.startBinary(t, bin)
	want := []string{"digest/dg/a/" + w1, "digest/dg/a/" + w2, "digest/dg/b/" + w1, "digest/dg/b/" + w2}
	waitFor(t, "four digests", 60*time.Second, func() bool { return len(e.gw.counts()) >= 4 })
	waitFor(t, "nothing pending", 30*time.Second, func() bool {
		c, err := adminCounts(adminAddr)
		return err == nil && c["ready"]+c["scheduled"]+c["retry"]+c["sending"] == 0
	})
	p.term()

	counts := e.gw.counts()
	if got := sortedKeys(counts); !slices.Equal(got, want) {
		t.Fatalf("provider received %v, want one digest per group and window %v", got, want)
	}
	texts := map[string]string{}
	for _, d := range e.gw.ledger() {
		if prev, ok := texts[d.Key]; ok && prev != d.Text {
			t.Errorf("%s resent with another text: %q then %q", d.Key, prev, d.Text)
		}
		texts[d.Key] = d.Text
	}
	seen := map[int]string{}
	for _, k := range want {
		f := strings.Fields(texts[k])
		if len(f) == 0 || f[0] != k[len("digest/dg/"):len("digest/dg/")+1]+":" {
			t.Fatalf("%s text %q", k, texts[k])
		}
		for _, s := range f[1:] {
			var id int
			fmt.Sscan(s, &id)
			if prev, dup := seen[id]; dup {
				t.Errorf("item %d is in %s and %s", id, prev, k)
			}
			seen[id] = k
			if wantW := map[bool]string{true: w1, false: w2}[id <= 20]; !strings.HasSuffix(k, "/"+string("ab"[id%2])+"/"+wantW) {
				t.Errorf("item %d is in %s, want group %c window %s", id, k, "ab"[id%2], wantW)
			}
		}
	}
	if len(seen) != 40 {
		t.Errorf("%d of 40 items delivered: %v", len(seen), texts)
	}
	msgs := messagesByKey(t, e.openStore())
	if got := slices.Sorted(maps.Keys(msgs)); !slices.Equal(got, want) {
		t.Fatalf("store holds %v, want %v", got, want)
	}
	resent := 0
	for k, m := range msgs {
		if m.Status != state.StatusSent {
			t.Errorf("%s is %s, want sent", k, m.Status)
		}
		resent += counts[k] - 1
	}
	t.Logf("4 digests of 40 items over two windows, 2 SIGKILLs at the boundaries; %d resent by key after a crash", resent)
}
