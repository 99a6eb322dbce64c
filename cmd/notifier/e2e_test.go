package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/state"
)

// The contracts table and rule most end-to-end tests use.
var contractsDDL = []string{`CREATE TABLE {db}.contracts (
	id BIGINT PRIMARY KEY,
	phone VARCHAR(20) NOT NULL,
	status VARCHAR(16) NOT NULL,
	amount DECIMAL(12,2) NOT NULL,
	name VARCHAR(50) NULL
)`}

const activatedRule = `
rules:
  - name: activated
    table: {db}.contracts
    on: [insert, update]
    when: became("status", "active")
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Hello {{ .new.name }}, contract {{ .new.id }} is active ({{ money .new.amount \"EUR\" }})."
`

func insertContract(id int, status, name string) string {
	return fmt.Sprintf("INSERT INTO {db}.contracts VALUES (%d, '+49151000%05d', '%s', %d.50, '%s')", id, id, status, id*100, name)
}

// sentinel inserts an active contract and waits until its SMS arrived: every change made
// before it on the primary has then been read, evaluated and committed (one ordered stream).
func (e *env) sentinel(id int) {
	e.t.Helper()
	e.exec(insertContract(id, "active", "Sentinel"))
	key := fmt.Sprintf("activated:%d", id)
	e.waitFor("the sentinel SMS "+key, 60*time.Second, func() bool { return e.gw.counts()[key] > 0 })
}

func sortedKeys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

func TestChangesOnThePrimaryProduceExactlyTheExpectedMessages(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()

	e.exec(
		insertContract(1, "active", "Ann"),                         // match: inserted active
		insertContract(2, "draft", "Bob"),                          // no match
		"UPDATE {db}.contracts SET status = 'active' WHERE id = 2", // match: became active
		"UPDATE {db}.contracts SET name = 'Annie' WHERE id = 1",    // no match: already active
		insertContract(3, "pending", "Cid"),                        // no match
		"DELETE FROM {db}.contracts WHERE id = 3",                  // no match
	)
	e.sentinel(99)

	// The pipeline's series are published (in-process: the default registry).
	var mb bytes.Buffer
	metrics.WritePrometheus(&mb, false)
	for _, name := range []string{"notifier_binlog_transactions_total ",
		fmt.Sprintf(`notifier_binlog_rows_total{table="%s.contracts",op="update"} `, e.db),
		"notifier_binlog_lag_seconds ", "notifier_checkpoint_commit_duration_seconds_bucket{",
		`notifier_rule_matches_total{rule="activated"} 3`, `notifier_messages_created_total{rule="activated",channel="sms"} 3`,
		`notifier_rule_paused{rule="activated"} 0`, "notifier_config_last_reload_successful 1"} {
		if !strings.Contains(mb.String(), name) {
			t.Errorf("metrics lack %s", name)
		}
	}
	if err := svc.stop(); err != nil {
		t.Fatalf("service stop: %v", err)
	}

	counts := e.gw.counts()
	want := []string{"activated:1", "activated:2", "activated:99"}
	if got := sortedKeys(counts); !slices.Equal(got, want) {
		t.Fatalf("provider received keys %v, want %v", got, want)
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s received %d times", k, n)
		}
	}
	texts := map[string]string{}
	for _, sms := range e.gw.ledger() {
		texts[sms.Key] = sms.To + " " + sms.Text
	}
	if got := texts["activated:2"]; got != "+4915100000002 Hello Bob, contract 2 is active (€200.50)." {
		t.Errorf("activated:2 = %q", got)
	}
	if got := texts["activated:1"]; got != "+4915100000001 Hello Ann, contract 1 is active (€100.50)." {
		t.Errorf("activated:1 = %q", got)
	}

	st := e.openStore()
	msgs := messagesByKey(t, st)
	if got := slices.Sorted(maps.Keys(msgs)); !slices.Equal(got, want) {
		t.Fatalf("store holds %v, want %v", got, want)
	}
	for k, m := range msgs {
		if m.Status != state.StatusSent {
			t.Errorf("%s is %s in the store, want sent", k, m.Status)
		}
	}
	if cp, ok, _ := st.Checkpoint(); !ok || !strings.HasPrefix(cp.Position, "gtid:") {
		t.Errorf("checkpoint = %+v, want a GTID position", cp)
	}
}

func TestRestartResumesFromTheCheckpointAndRepeatsNothing(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	e.writeConfig()
	e.seedCheckpoint()

	svc := e.start()
	e.exec(insertContract(1, "active", "A"), insertContract(2, "active", "B"))
	e.sentinel(90)
	must(t, svc.stop())

	// While the service is down.
	e.exec(insertContract(3, "active", "C"), "UPDATE {db}.contracts SET status = 'active' WHERE id = 2",
		insertContract(4, "draft", "D"), "UPDATE {db}.contracts SET status = 'active' WHERE id = 4")

	svc = e.start()
	e.exec(insertContract(5, "active", "E"))
	e.sentinel(91)
	must(t, svc.stop())

	want := []string{"activated:1", "activated:2", "activated:3", "activated:4", "activated:5", "activated:90", "activated:91"}
	counts := e.gw.counts()
	if got := sortedKeys(counts); !slices.Equal(got, want) {
		t.Fatalf("provider received %v, want %v", got, want)
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s received %d times", k, n)
		}
	}
}

func TestColumnTypesRoundTripIntoRulesAndTemplates(t *testing.T) {
	ddl := []string{`CREATE TABLE {db}.typed (
		id BIGINT UNSIGNED PRIMARY KEY,
		phone VARCHAR(20) NOT NULL,
		amount DECIMAL(12,2) NOT NULL,
		at DATETIME(6) NOT NULL,
		doc JSON NOT NULL,
		bin VARBINARY(16) NOT NULL,
		note VARCHAR(20) NULL
	)`}
	rule := `
rules:
  - name: typed
    table: {db}.typed
    on: insert
    when: new.id > 9223372036854775807 && new.amount >= 1234.5 && new.doc.plan == "gold" && new.note == nil
    key: string(new.id)
    to: new.phone
    channel: sms
    template: |-
      id={{ .new.id }} amount={{ number .new.amount 2 }} money={{ money .new.amount "EUR" }}
      at={{ date .new.at "2006-01-02 15:04:05.000000" }} plan={{ .new.doc.plan }} n={{ .new.doc.n }}
      bin={{ printf "%x" .new.bin }} note={{ .new.note | default "none" }}
`
	e := newEnv(t, ddl, map[string]string{"typed.yaml": rule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	e.exec(
		// Does not match: amount below the threshold (DECIMAL compared exactly).
		`INSERT INTO {db}.typed VALUES (9223372036854775809, '+4915100000001', 1234.49, '2026-01-02 03:04:05.678901', '{"plan":"gold","n":1}', X'00FF', NULL)`,
		`INSERT INTO {db}.typed VALUES (18446744073709551615, '+4915100000002', 1234.50, '2026-01-02 03:04:05.678901', '{"plan":"gold","n":7}', X'00FF10', NULL)`,
	)
	key := "typed:18446744073709551615"
	e.waitFor("the typed SMS", 60*time.Second, func() bool { return e.gw.counts()[key] > 0 })
	must(t, svc.stop())

	led := e.gw.ledger()
	if len(led) != 1 {
		t.Fatalf("provider received %d SMS, want 1: %+v", len(led), led)
	}
	want := "id=18446744073709551615 amount=1,234.50 money=€1,234.50\n" +
		"at=2026-01-02 03:04:05.678901 plan=gold n=7\nbin=00ff10 note=none"
	if led[0].Text != want {
		t.Fatalf("text =\n%q\nwant\n%q", led[0].Text, want)
	}
}

func TestRulesCheckReportsEveryProblemWithFileLineAndColumn(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(`rules:
  - name: broken
    table: app.contracts
    on: insert
    when: new.amount >> 1000
    to: new.phone
    channel: sms
    template: "x"
`), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "syntax.yaml"), []byte("rules:\n  - name: [unclosed\n"), 0o644))
	var stdout, stderr bytes.Buffer
	code := run([]string{"notifier", "rules", "check", dir}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per problem (2), got:\n%s", stderr.String())
	}
	re := regexp.MustCompile(`^(.+\.yaml):(\d+):(\d+): `)
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("line %q is not file:line:col: message", l)
		}
	}
	if !strings.HasPrefix(lines[0], filepath.Join(dir, "bad.yaml")+":5:") {
		t.Errorf("the expression error should point at bad.yaml line 5: %q", lines[0])
	}

	good := t.TempDir()
	must(t, os.WriteFile(filepath.Join(good, "ok.yaml"), []byte(strings.ReplaceAll(activatedRule, "{db}", "app")), 0o644))
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"notifier", "rules", "check", good}, &stdout, &stderr); code != 0 {
		t.Fatalf("good rules: exit %d: %s", code, stderr.String())
	}
}

func TestABrokenRuleFileIsRefusedOnReloadAndTheOldRulesStay(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	e.exec(insertContract(1, "active", "A"))
	e.sentinel(90)

	// A syntax error lands in the rules directory: the reload (every 100 ms) refuses it.
	e.writeRule("contracts.yaml", strings.Replace(activatedRule, "when: became", "when: became((", 1))
	e.waitFor("the refused reload in the log", 30*time.Second, func() bool {
		b, _ := os.ReadFile(e.logPath)
		return bytes.Contains(b, []byte("rules reload refused")) && bytes.Contains(b, []byte("contracts.yaml:"))
	})
	e.exec(insertContract(2, "active", "B"))
	e.sentinel(91)
	must(t, svc.stop())
	if got := sortedKeys(e.gw.counts()); !slices.Equal(got, []string{"activated:1", "activated:2", "activated:90", "activated:91"}) {
		t.Fatalf("provider received %v: the old rules must keep working", got)
	}
}

func TestATemplateMissingAFieldFailsOnlyThatMessage(t *testing.T) {
	nick := `
rules:
  - name: nick
    table: {db}.contracts
    on: insert
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Hi {{ .new.nickname }}"
`
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule, "nick.yaml": nick})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	e.exec(insertContract(1, "active", "A"))
	e.sentinel(90)
	must(t, svc.stop())

	if got := sortedKeys(e.gw.counts()); !slices.Equal(got, []string{"activated:1", "activated:90"}) {
		t.Fatalf("provider received %v", got)
	}
	st := e.openStore()
	m, err := st.Get("nick:1")
	must(t, err)
	if m.Status != state.StatusDead || m.Reason != "template" || !strings.Contains(m.LastError, "nickname") {
		t.Fatalf("nick:1 = %s reason %q error %q, want dead/template naming the field", m.Status, m.Reason, m.LastError)
	}
}

func TestAProvider400DeadLettersTheMessageWithTheAnswer(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	e.gw.answer = func(sms receivedSMS) (int, string) {
		if strings.HasSuffix(sms.To, "00002") {
			return 400, `{"error":"invalid destination number"}`
		}
		return 200, ""
	}
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	e.exec(insertContract(1, "active", "A"), insertContract(2, "active", "B"), insertContract(3, "active", "C"))
	e.sentinel(90)
	must(t, svc.stop())

	if got := sortedKeys(e.gw.counts()); !slices.Equal(got, []string{"activated:1", "activated:3", "activated:90"}) {
		t.Fatalf("provider accepted %v", got)
	}
	st := e.openStore()
	m, err := st.Get("activated:2")
	must(t, err)
	if m.Status != state.StatusDead || !strings.Contains(m.LastError, "invalid destination number") || m.Attempts != 1 {
		t.Fatalf("activated:2 = %s attempts %d reason %q error %q, want dead after one attempt with the provider's answer",
			m.Status, m.Attempts, m.Reason, m.LastError)
	}
}

func TestTheReplicaRestartingMidStreamLosesNothing(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	for i := 1; i <= 20; i++ {
		e.exec(insertContract(i, "active", "A"))
	}
	must(t, e.c.Replica().Stop())
	for i := 21; i <= 40; i++ { // replicated when the replica is back
		e.exec(insertContract(i, "active", "B"))
	}
	must(t, e.c.Replica().Start())
	for i := 41; i <= 60; i++ {
		e.exec(insertContract(i, "active", "C"))
	}
	e.sentinel(90)
	must(t, svc.stop())
	counts := e.gw.counts()
	for i := 1; i <= 60; i++ {
		if k := fmt.Sprintf("activated:%d", i); counts[k] != 1 {
			t.Errorf("%s received %d times, want 1", k, counts[k])
		}
	}
}

func TestDryRunRendersWhatWouldBeSentAndTouchesNothing(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	e.writeConfig()
	e.seedCheckpoint()
	before, _, err := func() (string, bool, error) {
		st, err := state.Open(state.Options{Dir: e.storeDir, Logger: quietLogger})
		if err != nil {
			return "", false, err
		}
		defer st.Close()
		cp, ok, err := st.Checkpoint()
		return cp.Position, ok, err
	}()
	must(t, err)

	out := filepath.Join(e.dir, "dry.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logf, err := os.Create(e.logPath)
	must(t, err)
	defer logf.Close()
	go func() {
		done <- App(io.Discard, logf).RunContext(ctx, []string{"notifier", "run", "--dry-run", "--dry-run-out", out, "--config", e.cfgPath})
	}()
	e.exec(insertContract(1, "active", "Ann"), insertContract(2, "draft", "Bob"))
	waitFor(t, "the dry-run line", 60*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return bytes.Contains(b, []byte("activated:1"))
	})
	cancel()
	must(t, <-done)

	b, err := os.ReadFile(out)
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("dry-run wrote %d lines, want 1:\n%s", len(lines), b)
	}
	var l struct{ Key, To, Text, Status string }
	must(t, json.Unmarshal([]byte(lines[0]), &l))
	if l.Key != "activated:1" || l.Status != "ready" || l.Text != "Hello Ann, contract 1 is active (€100.50)." ||
		l.To != "+49*******01" {
		t.Fatalf("dry-run line = %+v", l)
	}
	if n := len(e.gw.ledger()); n != 0 {
		t.Fatalf("dry-run sent %d messages", n)
	}
	st := e.openStore()
	cp, _, err := st.Checkpoint()
	must(t, err)
	if cp.Position != before {
		t.Fatalf("dry-run moved the checkpoint from %s to %s", before, cp.Position)
	}
	if ms := messagesByKey(t, st); len(ms) != 0 {
		t.Fatalf("dry-run stored %d messages", len(ms))
	}
}

func TestAReloadedRuleSetTakesOverAndANewTableIsRead(t *testing.T) {
	ddl := append([]string{"CREATE TABLE {db}.refunds (id BIGINT PRIMARY KEY, phone VARCHAR(20) NOT NULL)"}, contractsDDL...)
	e := newEnv(t, ddl, map[string]string{"contracts.yaml": activatedRule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	e.exec(insertContract(1, "active", "A"), "INSERT INTO {db}.refunds VALUES (1, '+4915100000001')")
	e.sentinel(90)

	// New text for the old rule and a rule on a table the reader did not watch.
	e.writeRule("contracts.yaml", strings.Replace(activatedRule, "Hello ", "Hi ", 1))
	e.writeRule("refunds.yaml", `
rules:
  - name: refund
    table: {db}.refunds
    on: insert
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Refund {{ .new.id }} is on its way."
`)
	e.waitFor("the reload", 30*time.Second, func() bool {
		b, _ := os.ReadFile(e.logPath)
		return bytes.Contains(b, []byte("restarting the binlog reader"))
	})
	e.exec(insertContract(2, "active", "B"), "INSERT INTO {db}.refunds VALUES (2, '+4915100000002')")
	e.waitFor("the refund SMS", 60*time.Second, func() bool { return e.gw.counts()["refund:2"] == 1 })
	e.sentinel(91)
	must(t, svc.stop())

	texts := map[string]string{}
	for _, sms := range e.gw.ledger() {
		texts[sms.Key] = sms.Text
	}
	if texts["activated:1"] != "Hello A, contract 1 is active (€100.50)." ||
		texts["activated:2"] != "Hi B, contract 2 is active (€200.50)." ||
		texts["refund:2"] != "Refund 2 is on its way." {
		t.Fatalf("texts = %q", texts)
	}
	if _, ok := texts["refund:1"]; ok {
		t.Fatal("refund 1 was inserted before the rule existed: no message")
	}
	for k, n := range e.gw.counts() {
		if n != 1 {
			t.Errorf("%s received %d times", k, n)
		}
	}
}

func TestADigestWindowBecomesOneMessage(t *testing.T) {
	digest := `
rules:
  - name: digest
    table: {db}.contracts
    on: insert
    key: string(new.id)
    to: '"+4915199999999"'
    channel: sms
    digest: {group_by: '"all"', every: 2s}
    template: '{{ .count }} new:{{ range .items }} {{ .new.id }}{{ end }}'
`
	e := newEnv(t, contractsDDL, map[string]string{"digest.yaml": digest})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	// One transaction: one commit time, one window.
	e.exec("INSERT INTO {db}.contracts VALUES (1, '+1', 'x', 1, 'a'), (2, '+2', 'x', 2, 'b'), (3, '+3', 'x', 3, 'c')")
	e.waitFor("the digest", 60*time.Second, func() bool { return len(e.gw.ledger()) > 0 })
	must(t, svc.stop())
	led := e.gw.ledger()
	if len(led) != 1 || led[0].Text != "3 new: 1 2 3" || led[0].To != "+4915199999999" {
		t.Fatalf("digest deliveries = %+v, want one with 3 items", led)
	}
}

func TestARecheckAtFireTimeSkipsAReminderWhoseRowChanged(t *testing.T) {
	ddl := []string{`CREATE TABLE {db}.tasks (id BIGINT PRIMARY KEY, phone VARCHAR(20) NOT NULL,
		due_at DATETIME NOT NULL, done TINYINT NOT NULL DEFAULT 0)`}
	rule := `
rules:
  - name: due
    table: {db}.tasks
    on: [insert, update]
    entity: string(new.id)
    at: new.due_at
    key: string(new.id)
    to: new.phone
    channel: sms
    recheck: new.done == 0
    template: "Task {{ .new.id }} is due."
`
	e := newEnv(t, ddl, map[string]string{"tasks.yaml": rule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	e.exec(
		"INSERT INTO {db}.tasks VALUES (1, '+4915100000001', UTC_TIMESTAMP() + INTERVAL 4 SECOND, 0)",
		"INSERT INTO {db}.tasks VALUES (2, '+4915100000002', UTC_TIMESTAMP() + INTERVAL 3 SECOND, 0)",
		"INSERT INTO {db}.tasks VALUES (3, '+4915100000003', UTC_TIMESTAMP() + INTERVAL 3 SECOND, 0)",
		// The reminder of task 2 stays scheduled (same fire time, same key): only the recheck
		// at fire time sees done = 1. Deleting task 3 cancels its reminder at once.
		"UPDATE {db}.tasks SET done = 1 WHERE id = 2",
		"DELETE FROM {db}.tasks WHERE id = 3",
	)
	// A reminder's key carries its fire time: "due:<id>@<at>".
	byTask := func(counts map[string]int, id string) (n int) {
		for k, c := range counts {
			if strings.HasPrefix(k, "due:"+id+"@") {
				n += c
			}
		}
		return n
	}
	e.waitFor("task 1's reminder", 60*time.Second, func() bool { return byTask(e.gw.counts(), "1") == 1 })
	must(t, svc.stop())
	if n := len(e.gw.counts()); n != 1 {
		t.Fatalf("provider received %v, want only task 1's reminder", e.gw.counts())
	}
	msgs := messagesByKey(t, e.openStore())
	for id, want := range map[string]state.Status{"2": state.StatusSkipped, "3": state.StatusCancelled} {
		found := false
		for k, m := range msgs {
			if strings.HasPrefix(k, "due:"+id+"@") {
				found = true
				if m.Status != want {
					t.Errorf("%s = %s/%q (%s), want %s", k, m.Status, m.Reason, m.LastError, want)
				}
			}
		}
		if !found {
			t.Errorf("no reminder of task %s in the store", id)
		}
	}
}

func TestTheBlastRadiusGuardHoldsWhatARunawayRuleCreates(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": strings.Replace(activatedRule,
		"    channel: sms\n", "    channel: sms\n    max_per_minute: 3\n", 1)})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	var rows []string
	for i := 1; i <= 8; i++ {
		rows = append(rows, fmt.Sprintf("(%d, '+49151000%05d', 'active', 1, 'n')", i, i))
	}
	e.exec("INSERT INTO {db}.contracts VALUES " + strings.Join(rows, ","))
	e.waitFor("3 SMS", 60*time.Second, func() bool { return len(e.gw.ledger()) == 3 })
	var mb bytes.Buffer
	metrics.WritePrometheus(&mb, false)
	if !strings.Contains(mb.String(), `notifier_rule_paused{rule="activated"} 1`) {
		t.Error("notifier_rule_paused{rule=\"activated\"} is not 1")
	}
	must(t, svc.stop())
	held := 0
	for k, m := range messagesByKey(t, e.openStore()) {
		switch m.Status {
		case state.StatusHeld:
			held++
		case state.StatusSent:
		default:
			t.Errorf("%s is %s", k, m.Status)
		}
	}
	if held != 5 || len(e.gw.ledger()) != 3 {
		t.Fatalf("%d held, %d sent; want 5 held and 3 sent", held, len(e.gw.ledger()))
	}
}
