package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"notifier/rules"
)

// runSnapshotCLI runs `notifier <args>` with the commands of snapshot.go in-process.
func runSnapshotCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{Name: "notifier", Commands: snapshotCommands(), Writer: &out, ErrWriter: &errOut,
		ExitErrHandler: func(*cli.Context, error) {}}
	if err := app.RunContext(context.Background(), append([]string{"notifier"}, args...)); err != nil {
		t.Fatalf("notifier %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

const accountsRule = `
defaults: {channel: sms, timezone: UTC}
rules:
  - name: activated
    table: {db}.accounts
    on: [insert, update, snapshot]
    when: new.status == "active"
    key: new.id
    to: new.phone
    template: "Account {{.new.id}} is active"
`

// The documented recovery from a purged binlog: the service stops with an error naming
// `notifier snapshot --all`; that command rebuilds from the current rows and moves the
// checkpoint; the restarted service sends what changed while it was down, and nothing twice.
func TestPurgedBinlogRecoveryWithSnapshotAllSendsNothingTwice(t *testing.T) {
	e := newEnv(t, []string{"CREATE TABLE {db}.accounts (id INT PRIMARY KEY, phone VARCHAR(20) NOT NULL, status VARCHAR(10) NOT NULL)"},
		map[string]string{"accounts.yaml": accountsRule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()
	var rows []string
	for id := 1; id <= 30; id++ {
		status := "active"
		if id > 20 {
			status = "pending"
		}
		rows = append(rows, fmt.Sprintf("(%d, '+4917%08d', '%s')", id, id, status))
	}
	e.exec("INSERT INTO {db}.accounts VALUES " + strings.Join(rows, ", "))
	e.waitFor("20 activations delivered", time.Minute, func() bool { return len(e.gw.counts()) == 20 })
	must(t, svc.stop())

	// While the service is down, five accounts are activated and the replica purges its binlog.
	e.exec("UPDATE {db}.accounts SET status = 'active' WHERE id BETWEEN 21 AND 25")
	must(t, e.c.WaitReplicated(context.Background()))
	must(t, e.c.Replica().PurgeBinlogs(context.Background()))

	svc = e.start()
	var err error
	select {
	case err = <-svc.done:
		svc.cancel = nil
	case <-time.After(time.Minute):
		t.Fatal("the service did not stop on a purged checkpoint")
	}
	if err == nil || !strings.Contains(err.Error(), "notifier snapshot --all") {
		t.Fatalf("service exit %v, want the purged-binlog error naming the recovery", err)
	}

	out := runSnapshotCLI(t, "snapshot", "--all", "--config", e.cfgPath)
	if !strings.Contains(out, e.db+".accounts") || !strings.Contains(out, "30 rows") {
		t.Fatalf("snapshot output:\n%s", out)
	}
	status := runSnapshotCLI(t, "snapshot", "status", "--config", e.cfgPath)
	if !strings.Contains(status, "finished") {
		t.Fatalf("snapshot status:\n%s", status)
	}

	svc = e.start()
	e.exec("UPDATE {db}.accounts SET status = 'active' WHERE id = 26")
	e.waitFor("26 activations delivered", time.Minute, func() bool { return len(e.gw.counts()) == 26 })
	time.Sleep(300 * time.Millisecond) // let a duplicate, if any, arrive
	must(t, svc.stop())
	for key, n := range e.gw.counts() {
		if n != 1 {
			t.Errorf("message %s delivered %d times", key, n)
		}
	}
}

// The start hook takes the initial snapshot on a first start (no checkpoint) and stores its
// position as the checkpoint; on the next start it does nothing.
func TestSnapshotBeforeStreamingTakesTheInitialSnapshotOnce(t *testing.T) {
	e := newEnv(t, []string{"CREATE TABLE {db}.accounts (id INT PRIMARY KEY, phone VARCHAR(20) NOT NULL, status VARCHAR(10) NOT NULL)",
		"INSERT INTO {db}.accounts VALUES (1, '+491701', 'active'), (2, '+491702', 'pending'), (3, '+491703', 'active')"},
		map[string]string{"accounts.yaml": accountsRule})
	e.writeConfig()
	must(t, e.c.WaitReplicated(context.Background()))
	cfg, err := LoadConfig(e.cfgPath)
	must(t, err)
	set, err := loadRulesForTest(cfg)
	must(t, err)
	st := e.openStore()
	for i := 0; i < 2; i++ {
		must(t, SnapshotBeforeStreaming(context.Background(), cfg, SnapshotConfig{}, st, set, quietLogger, nil))
		cp, ok, err := st.Checkpoint()
		if err != nil || !ok || !strings.Contains(cp.Position, "gtid:") {
			t.Fatalf("start %d: checkpoint %+v %v %v, want the snapshot's position", i, cp, ok, err)
		}
		msgs := messagesByKey(t, st)
		if len(msgs) != 2 || msgs["activated:1"] == nil || msgs["activated:3"] == nil {
			t.Fatalf("start %d: messages %v, want activated:1 and activated:3", i, msgs)
		}
	}
}

func loadRulesForTest(cfg *Config) (*rules.Set, error) {
	return rules.LoadDir(cfg.Rules.Dir, cfg.rulesOptions())
}

// `notifier run` on a first start: the initial snapshot sends what the current rows call
// for (rules that opt in), then the binlog from the snapshot's position sends the rest, each
// message once.
func TestRunTakesTheInitialSnapshotThenStreams(t *testing.T) {
	e := newEnv(t, []string{"CREATE TABLE {db}.accounts (id INT PRIMARY KEY, phone VARCHAR(20) NOT NULL, status VARCHAR(10) NOT NULL)",
		"INSERT INTO {db}.accounts VALUES (1, '+491701', 'active'), (2, '+491702', 'pending'), (3, '+491703', 'active')"},
		map[string]string{"accounts.yaml": accountsRule})
	e.writeConfig()
	must(t, e.c.WaitReplicated(context.Background()))
	svc := e.start()
	e.waitFor("the snapshot's 2 messages", time.Minute, func() bool { return len(e.gw.counts()) == 2 })
	e.exec("UPDATE {db}.accounts SET status = 'active' WHERE id = 2", "INSERT INTO {db}.accounts VALUES (4, '+491704', 'active')")
	e.waitFor("4 messages", time.Minute, func() bool { return len(e.gw.counts()) == 4 })
	must(t, svc.stop())
	for _, k := range []string{"activated:1", "activated:2", "activated:3", "activated:4"} {
		if n := e.gw.counts()[k]; n != 1 {
			t.Errorf("%s delivered %d times, want 1", k, n)
		}
	}
}

func TestSweepRunCommandRunsATickOnce(t *testing.T) {
	e := newEnv(t, []string{"CREATE TABLE {db}.users (id INT PRIMARY KEY, phone VARCHAR(20) NOT NULL)",
		"INSERT INTO {db}.users VALUES (1, '+491701'), (2, '+491702'), (3, '+491703')"},
		map[string]string{"sweeps.yaml": `
defaults: {channel: sms, timezone: Europe/Berlin}
sweeps:
  - name: holiday
    schedule: "0 9 24 12 *"
    query: SELECT id, phone FROM {db}.users
    key_column: id
    to: new.phone
    template: "Frohe Weihnachten!"
`})
	e.writeConfig()
	must(t, e.c.WaitReplicated(context.Background()))
	out := runSnapshotCLI(t, "sweep", "run", "--config", e.cfgPath, "--at", "2026-12-24T09:00:00+01:00", "holiday")
	if !strings.Contains(out, "3 rows, 3 messages created") {
		t.Fatalf("first run:\n%s", out)
	}
	out = runSnapshotCLI(t, "sweep", "run", "--config", e.cfgPath, "--at", "2026-12-24T09:00:00+01:00", "holiday")
	if !strings.Contains(out, "already done true") {
		t.Fatalf("second run of the same tick:\n%s", out)
	}
	status := runSnapshotCLI(t, "sweep", "status", "--config", e.cfgPath)
	if !strings.Contains(status, "holiday") || !strings.Contains(status, "last run 2026-12-24T08:00:00Z: 3 rows, 3 messages, done true") {
		t.Fatalf("sweep status:\n%s", status)
	}
	msgs := messagesByKey(t, e.openStore())
	if len(msgs) != 3 || msgs["holiday:2026-12-24T08:00:00Z:1"] == nil {
		t.Fatalf("messages %v", msgs)
	}
}
