package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"notifier/admin"
)

// The operator commands against a running `notifier run` on real MariaDB (devdb): online via
// the admin API, offline on the store once it stopped, and replay both ways.

const opsWelcomeRule = `
rules:
  - name: welcome
    table: {db}.contracts
    on: [insert]
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Welcome {{ .new.name }}."
`

// opsCLI runs an operator command and fails the test on error; it returns stdout and stderr.
func opsCLI(t *testing.T, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := opsRun(t, args...)
	if err != nil {
		t.Fatalf("notifier %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

func opsJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	out, _ := opsCLI(t, append(args, "-o", "json")...)
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("notifier %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

func opsFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestOpsReplayRepeatsNothingAndNewRulesProduceTheirs: with the service running, the CLI is
// online (status, list, show); `replay --from` the start through the API re-reads the binlog
// and sends nothing twice; a rule added since produces its messages for the old rows on the
// next replay; once the service is stopped the CLI is offline on the same store, and an
// offline replay followed by a restart again repeats nothing.
func TestOpsReplayRepeatsNothingAndNewRulesProduceTheirs(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	addr := opsFreeAddr(t)
	e.extraConfig = fmt.Sprintf("admin:\n  listen: %s\n", addr)
	e.writeConfig()
	e.seedCheckpoint()
	cfg := []string{"--config", e.cfgPath}

	// Offline before the start: the seeded checkpoint is where a replay goes back to.
	start := opsJSON[admin.CheckpointView](t, append([]string{"checkpoint", "show"}, cfg...)...)
	if !start.Set || !strings.HasPrefix(start.Position, "gtid:") {
		t.Fatalf("seeded checkpoint = %+v", start)
	}

	svc := e.start()
	e.exec(insertContract(1, "active", "Ann"), insertContract(2, "active", "Bob"))
	e.sentinel(90)
	// The provider has them; the outcome is written right after its answer.
	waitFor(t, "3 messages sent in the store", 30*time.Second, func() bool {
		return opsJSON[admin.StatusReport](t, append([]string{"status"}, cfg...)...).Counts["sent"] == 3
	})

	out, errOut := opsCLI(t, append([]string{"status"}, cfg...)...)
	if !strings.HasPrefix(errOut, "online: via http://"+addr) {
		t.Errorf("status stderr = %q, want online via %s", errOut, addr)
	}
	for _, want := range []string{"binlog     connected", "rules      1 loaded", "sent       3"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	list := opsJSON[[]admin.MessageView](t, append([]string{"messages", "list"}, cfg...)...)
	if got := opsViewKeys(list); !slices.Equal(got, []string{"activated:1", "activated:2", "activated:90"}) {
		t.Errorf("messages list = %v", got)
	}
	for _, m := range list {
		if m.Status != "sent" || !strings.Contains(m.To, "*") {
			t.Errorf("%s: status %s, to %q (want sent, masked)", m.Key, m.Status, m.To)
		}
	}
	out, _ = opsCLI(t, append(append([]string{"messages", "show"}, cfg...), "--unmask", "activated:1")...)
	for _, want := range []string{`(?m)^to +\+4915100000001$`, `(?m)^state +sent$`, `Hello Ann, contract 1 is active`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("messages show lacks %s:\n%s", want, out)
		}
	}
	// The probes and the scrape the StatefulSet uses, on the real service.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": `notifier_messages{state="sent"} 3`} {
		resp, err := http.Get("http://" + addr + path)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %d, want 200 with %q:\n%.2000s", path, resp.StatusCode, want, b)
		}
	}

	// Online replay from the start: everything is re-read, nothing is sent again.
	out, _ = opsCLI(t, append(append([]string{"replay"}, cfg...), "--from", start.Position, "--yes")...)
	if !strings.Contains(out, "now  "+start.Position) {
		t.Errorf("replay output:\n%s", out)
	}
	e.sentinel(91)
	opsAssertEachOnce(t, e, "activated:1", "activated:2", "activated:90", "activated:91")

	// A rule added since: after the reload, a replay gives it the old rows; the old rule
	// sends nothing again.
	e.writeRule("welcome.yaml", opsWelcomeRule)
	waitFor(t, "the welcome rule to be loaded", 30*time.Second, func() bool {
		r := opsJSON[admin.StatusReport](t, append([]string{"status"}, cfg...)...)
		return r.Service != nil && r.Service.RulesLoaded == 2
	})
	opsCLI(t, append(append([]string{"replay"}, cfg...), "--from", start.Position, "--yes")...)
	e.sentinel(92)
	waitFor(t, "welcome:92", 30*time.Second, func() bool { return e.gw.counts()["welcome:92"] > 0 })
	opsAssertEachOnce(t, e, "activated:1", "activated:2", "activated:90", "activated:91", "activated:92",
		"welcome:1", "welcome:2", "welcome:90", "welcome:91", "welcome:92")
	must(t, svc.stop())

	// Stopped: the same commands work on the store, and say so.
	out, errOut = opsCLI(t, append([]string{"status"}, cfg...)...)
	if !strings.HasPrefix(errOut, "offline: store "+e.storeDir) {
		t.Errorf("status stderr = %q, want offline on %s", errOut, e.storeDir)
	}
	if !strings.Contains(out, "sent       10") || !strings.Contains(out, "stopped") {
		t.Errorf("offline status:\n%s", out)
	}
	// Offline replay, then a restart: still nothing twice.
	opsCLI(t, append(append([]string{"replay"}, cfg...), "--from", start.Position, "--yes")...)
	svc = e.start()
	e.sentinel(93)
	waitFor(t, "welcome:93", 30*time.Second, func() bool { return e.gw.counts()["welcome:93"] > 0 })
	must(t, svc.stop())
	opsAssertEachOnce(t, e, "activated:1", "activated:2", "activated:90", "activated:91", "activated:92", "activated:93",
		"welcome:1", "welcome:2", "welcome:90", "welcome:91", "welcome:92", "welcome:93")
}

func opsViewKeys(ms []admin.MessageView) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Key)
	}
	slices.Sort(out)
	return out
}

// opsAssertEachOnce: the provider received exactly these keys, each once.
func opsAssertEachOnce(t *testing.T, e *env, keys ...string) {
	t.Helper()
	counts := e.gw.counts()
	slices.Sort(keys)
	if got := sortedKeys(counts); !slices.Equal(got, keys) {
		t.Errorf("provider received %v, want %v", got, keys)
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s received %d times", k, n)
		}
	}
}
