package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"notifier/cdc"
	"notifier/devdb"
	"notifier/state"
)

// One devdb cluster (MariaDB primary + replica) is shared by every test of the package; each
// test gets its own database on it. It starts on first use; TestMain stops it.
var (
	clusterOnce sync.Once
	cluster     *devdb.Cluster
	clusterErr  error
	dbSeq       atomic.Int32
	serverIDSeq atomic.Uint32
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		_ = cluster.Stop()
	}
	os.Exit(code)
}

// sharedCluster returns the package's cluster, starting it on first use. It fails the test
// loudly when MariaDB is missing.
func sharedCluster(t testing.TB) *devdb.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cluster, clusterErr = devdb.Start(ctx, devdb.Options{})
	})
	if clusterErr != nil {
		t.Fatalf("devdb: start MariaDB primary+replica: %v", clusterErr)
	}
	return cluster
}

// env is one test's world: a fresh database on the shared cluster, a rules directory, a
// store directory, a provider with a ledger and a config file tying them together.
type env struct {
	t        testing.TB
	c        *devdb.Cluster
	db       string // database name on the cluster
	dir      string
	rulesDir string
	storeDir string
	cfgPath  string
	logPath  string
	gw       *smsGateway
	serverID uint32
	svc      *runningService // the last started service

	// Config knobs used by writeConfig.
	channels    string // YAML of the channels: section body (indented two spaces); default one webhook channel "sms"
	idempotent  bool
	maxPerMin   int
	extraConfig string
}

// newEnv creates the database (with the given DDL, "{db}" replaced by its name) and the
// provider, and writes the rules (map file name → YAML, "{db}" replaced).
func newEnv(t testing.TB, ddl []string, ruleFiles map[string]string) *env {
	t.Helper()
	c := sharedCluster(t)
	e := &env{t: t, c: c, db: fmt.Sprintf("e2e_%d", dbSeq.Add(1)), dir: t.TempDir(),
		serverID: 1000 + serverIDSeq.Add(1)}
	e.rulesDir = filepath.Join(e.dir, "rules")
	e.storeDir = filepath.Join(e.dir, "store")
	e.cfgPath = filepath.Join(e.dir, "notifier.yaml")
	e.logPath = filepath.Join(e.dir, "service.log")
	must(t, os.MkdirAll(e.rulesDir, 0o755))
	for name, body := range ruleFiles {
		e.writeRule(name, body)
	}
	stmts := []string{"CREATE DATABASE " + e.db}
	for _, q := range ddl {
		stmts = append(stmts, e.sub(q))
	}
	must(t, c.Primary().Exec(context.Background(), stmts...))
	gw, err := startGateway(nil, nil)
	must(t, err)
	t.Cleanup(func() { _ = gw.close() })
	e.gw = gw
	must(t, os.WriteFile(filepath.Join(e.dir, "dbpass"), []byte("notifier\n"), 0o600))
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(e.logPath)
			t.Logf("service log (%s), last 6000 bytes:\n%s", e.logPath, tailBytes(b, 6000))
		}
	})
	return e
}

func (e *env) sub(s string) string { return strings.ReplaceAll(s, "{db}", e.db) }

func (e *env) writeRule(name, body string) {
	must(e.t, os.WriteFile(filepath.Join(e.rulesDir, name), []byte(e.sub(body)), 0o644))
}

// writeConfig writes the service config for this env.
func (e *env) writeConfig() {
	channels := e.channels
	if channels == "" {
		channels = fmt.Sprintf(`  sms:
    type: webhook
    idempotent: %v
    timeout: 5s
    max_attempts: 5
    backoff: {initial: 50ms, max: 500ms}
    webhook:
      url: %s
`, e.idempotent, e.gw.URL())
	}
	cfg := fmt.Sprintf(`source:
  addr: %s
  user: notifier
  password_file: dbpass
  flavor: mariadb
  server_id: %d
store:
  dir: store
rules:
  dir: rules
  reload_interval: 100ms
  default_max_per_minute: %d
channels:
%ssender:
  drain_timeout: 5s
log:
  level: debug
  format: text
%s`, e.c.Replica().Addr, e.serverID, e.maxPerMin, channels, e.extraConfig)
	must(e.t, os.WriteFile(e.cfgPath, []byte(cfg), 0o644))
}

// seedCheckpoint stores the replica's current GTID position as the checkpoint, so the service
// starts exactly there (without it, a first start begins at the server's position when the
// reader connects, which races with the test's first change).
func (e *env) seedCheckpoint() {
	e.t.Helper()
	ctx := context.Background()
	must(e.t, e.c.WaitReplicated(ctx))
	gtid, err := e.c.Replica().GTIDBinlogPos(ctx)
	must(e.t, err)
	st, err := state.Open(state.Options{Dir: e.storeDir, Logger: quietLogger})
	must(e.t, err)
	defer st.Close()
	must(e.t, st.SetCheckpoint(ctx, state.Checkpoint{Flavor: "mariadb", Position: cdc.Position{GTID: gtid}.String()}))
}

// service is a running in-process `notifier run`.
type runningService struct {
	cancel context.CancelFunc
	done   chan error
	exited atomic.Bool
	out    *bytes.Buffer
}

// start runs `notifier run --config <cfg>` in-process (App(...).RunContext) until stop.
func (e *env) start() *runningService {
	e.t.Helper()
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningService{cancel: cancel, done: make(chan error, 1), out: &bytes.Buffer{}}
	go func() {
		defer logf.Close()
		err := App(io.Discard, logf).RunContext(ctx, []string{"notifier", "run", "--config", e.cfgPath})
		fmt.Fprintf(logf, "SERVICE EXITED: %v\n", err)
		s.exited.Store(true)
		s.done <- err
	}()
	e.t.Cleanup(func() { s.stop() })
	e.svc = s
	return s
}

// stop is the SIGTERM path: cancel the context, wait for the service to return.
func (s *runningService) stop() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		return fmt.Errorf("service did not stop within 60s")
	}
}

// waitFor is waitFor that also fails as soon as the service exits.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if e.svc != nil && e.svc.exited.Load() && e.svc.cancel != nil {
			e.t.Fatalf("the service exited while waiting for %s", what)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exec runs statements on the primary ("{db}" replaced).
func (e *env) exec(stmts ...string) {
	e.t.Helper()
	for i := range stmts {
		stmts[i] = e.sub(stmts[i])
	}
	must(e.t, e.c.Primary().Exec(context.Background(), stmts...))
}

// openStore opens the env's store (the service must be stopped).
func (e *env) openStore() *state.Store {
	e.t.Helper()
	st, err := state.Open(state.Options{Dir: e.storeDir, Logger: quietLogger})
	must(e.t, err)
	e.t.Cleanup(func() { _ = st.Close() })
	return st
}

// messages lists every message in the store, by key.
func messagesByKey(t testing.TB, st *state.Store) map[string]*state.Message {
	t.Helper()
	out := map[string]*state.Message{}
	after := ""
	for {
		ms, err := st.List(context.Background(), state.Filter{Limit: 1000, After: after})
		must(t, err)
		for _, m := range ms {
			out[m.Key] = m
		}
		if len(ms) < 1000 {
			return out
		}
		after = ms[len(ms)-1].Key
	}
}

// waitFor polls cond every 50 ms until it holds or the timeout passes (a liveness bound, not a
// timing assertion).
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

var quietLogger = slog.New(slog.DiscardHandler)
