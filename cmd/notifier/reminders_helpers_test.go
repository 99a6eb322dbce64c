package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"notifier/state"
)

// Helpers of the reminder proofs (issue 4): a clock the test shifts, the service started
// in-process with it, the built binary under SIGKILL, and the store's schedule as a value.

// shiftedClock runs at the real rate, shifted by an offset the test sets (to put the service
// at a chosen wall time, or to jump it over a downtime). Real timers stay valid because the
// clock never runs faster than real time between shifts.
type shiftedClock struct{ offset atomic.Int64 }

// at shifts the clock so that Now() is t right now.
func (c *shiftedClock) at(t time.Time) { c.offset.Store(int64(time.Until(t))) }

func (c *shiftedClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// startWithClock runs Serve in-process with the given clock (the `run` command has no clock
// flag); stop through the returned service, as with e.start.
func (e *env) startWithClock(now func() time.Time) *runningService {
	e.t.Helper()
	cfg, err := LoadConfig(e.cfgPath)
	must(e.t, err)
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(e.t, err)
	log, err := newLogger(logf, cfg.Log.Level, cfg.Log.Format)
	must(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningService{cancel: cancel, done: make(chan error, 1)}
	go func() {
		defer logf.Close()
		err := Serve(ctx, cfg, ServeOptions{Logger: log, Now: now})
		fmt.Fprintf(logf, "SERVICE EXITED: %v\n", err)
		s.exited.Store(true)
		s.done <- err
	}()
	e.t.Cleanup(func() { s.stop() })
	e.svc = s
	return s
}

// buildNotifier builds the binary into a temp dir (go's build cache makes repeats cheap).
func buildNotifier(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "notifier")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is the built binary running `notifier run` on the env's config.
type process struct {
	t   *testing.T
	cmd *exec.Cmd
}

func (e *env) startBinary(t *testing.T, bin string) *process {
	t.Helper()
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	cmd := exec.Command(bin, "run", "--config", e.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	logf.Close() // the child has its own descriptor
	p := &process{t: t, cmd: cmd}
	t.Cleanup(func() {
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// kill is SIGKILL: no teardown at all.
func (p *process) kill(e *env, why string) {
	p.t.Helper()
	must(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()
	p.cmd = nil
	appendLog(e, "=== SIGKILL "+why)
}

// term is SIGTERM and a clean exit.
func (p *process) term() {
	p.t.Helper()
	must(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("notifier did not stop cleanly on SIGTERM: %v", err)
	}
	p.cmd = nil
}

func appendLog(e *env, line string) {
	if f, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// schedule is what the store says about every reminder: key → "status/reason", and the due
// index as "key@due" in due order.
type schedule struct {
	status map[string]string
	due    []string
}

func readSchedule(t testing.TB, st *state.Store, skip func(key string) bool) schedule {
	t.Helper()
	sc := schedule{status: map[string]string{}}
	for k, m := range messagesByKey(t, st) {
		if !skip(k) {
			sc.status[k] = m.Status.String() + "/" + m.Reason
		}
	}
	due, err := st.ListDue(context.Background(), time.Now().Add(1000*24*time.Hour), 10000)
	must(t, err)
	for _, m := range due {
		if !skip(m.Key) {
			sc.due = append(sc.due, m.Key+"@"+m.DueAt.UTC().Format(time.RFC3339))
		}
	}
	return sc
}

func (s schedule) String() string {
	var b strings.Builder
	keys := make([]string, 0, len(s.status))
	for k := range s.status {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %s\n", k, s.status[k])
	}
	fmt.Fprintf(&b, "  due: %v\n", s.due)
	return b.String()
}

// keyOf finds the one key with the prefix in counts or the store's keys.
func withPrefix[V any](m map[string]V, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
