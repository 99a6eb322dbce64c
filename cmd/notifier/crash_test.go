package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"notifier/state"
)

// TestSIGKILLAtRandomMomentsLosesNothingAndRepeatsNothing is the crash test: the real binary
// runs as a subprocess while a load generator writes thousands of matching rows on the primary;
// it is SIGKILLed at random moments at least 20 times and restarted. Every row makes one
// message on an idempotent channel and one on a non-idempotent channel. At the end:
//
//   - idempotent (resend allowed): every expected key reached the provider (a key may repeat:
//     a crash between the provider's answer and the durable outcome resends it, and the
//     provider deduplicates by Idempotency-Key), and the store shows every message sent;
//   - not idempotent: no key reached the provider twice, and every key that never reached it
//     is `uncertain` in the store (a crash while it was `sending`), never silently lost.
func TestSIGKILLAtRandomMomentsLosesNothingAndRepeatsNothing(t *testing.T) {
	const rows = 3000
	const minKills = 20

	bin := filepath.Join(t.TempDir(), "notifier")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	e := newEnv(t, []string{`CREATE TABLE {db}.orders (
		id BIGINT PRIMARY KEY, phone VARCHAR(20) NOT NULL, total DECIMAL(12,2) NOT NULL)`},
		map[string]string{"orders.yaml": `
rules:
  - name: paid-sms
    table: {db}.orders
    on: insert
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Order {{ .new.id }} paid: {{ money .new.total \"EUR\" }}"
  - name: paid-hook
    table: {db}.orders
    on: insert
    key: string(new.id)
    to: '"orders"'
    channel: hook
    template: '{"order":{{ .new.id }}}'
`})
	e.channels = smsAndHookChannels(e.gw.URL())
	adminAddr := e.withAdmin(t)
	e.writeConfig()
	e.seedCheckpoint()

	// The load: rows in transactions of 1–25, paced over about 30 s.
	loadDone := make(chan error, 1)
	go func() {
		db, err := e.c.Primary().DB()
		if err != nil {
			loadDone <- err
			return
		}
		id := 0
		for id < rows {
			n := min(1+rand.IntN(25), rows-id)
			var vals []string
			for range n {
				id++
				vals = append(vals, fmt.Sprintf("(%d, '+4915100%06d', %d.99)", id, id, id))
			}
			if _, err := db.Exec(fmt.Sprintf("INSERT INTO %s.orders VALUES %s", e.db, strings.Join(vals, ","))); err != nil {
				loadDone <- err
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
		loadDone <- nil
	}()

	kills := 0
	loadFinished := false
	for kills < minKills || !loadFinished {
		p := e.startBinary(t, bin)
		time.Sleep(time.Duration(200+rand.IntN(1800)) * time.Millisecond)
		kills++
		p.kill(e, strconv.Itoa(kills))
		select {
		case err := <-loadDone:
			must(t, err)
			loadFinished = true
		default:
		}
		if kills > 200 {
			t.Fatal("the load generator did not finish")
		}
	}
	t.Logf("%d SIGKILLs; provider ledger so far: %d deliveries", kills, len(e.gw.ledger()))

	// The last run: until everything is ingested and nothing is pending, then SIGTERM.
	p := e.startBinary(t, bin)
	waitFor(t, "every row's idempotent message at the provider", 3*time.Minute, func() bool {
		n := 0
		for k := range e.gw.counts() {
			if strings.HasPrefix(k, "paid-hook:") {
				n++
			}
		}
		return n == rows
	})
	waitFor(t, "no pending message", 2*time.Minute, func() bool {
		c, err := adminCounts(adminAddr)
		return err == nil && c["ready"]+c["scheduled"]+c["retry"]+c["sending"]+c["held"] == 0
	})
	p.term()

	counts := e.gw.counts()
	msgs := messagesByKey(t, e.openStore())
	var tally onceTally
	for id := 1; id <= rows; id++ {
		tally.check(t, counts, msgs, fmt.Sprintf("paid-hook:%d", id), fmt.Sprintf("paid-sms:%d", id))
	}
	for k := range counts {
		var id int
		if _, err := fmt.Sscanf(k[strings.IndexByte(k, ':')+1:], "%d", &id); err != nil || id < 1 || id > rows ||
			!(strings.HasPrefix(k, "paid-sms:") || strings.HasPrefix(k, "paid-hook:")) {
			t.Errorf("the provider received an unexpected key %q", k)
		}
	}
	t.Logf("%d SIGKILLs: idempotent channel %d keys (%d resent after a crash); non-idempotent channel %d delivered once, %d uncertain, 0 twice",
		kills, tally.hookKeys, tally.resent, tally.delivered, tally.uncertain)
}

// onceTally checks, after SIGKILLs, one change's pair of messages against the provider's ledger
// (counts by key) and the store (msgs), and counts what it saw:
//   - hk, on the idempotent channel: reached the provider at least once (resends after a crash
//     are allowed: the provider dedupes by key) and is sent;
//   - sk, on the non-idempotent one: reached the provider at most once; if never, it is
//     `uncertain` in the store (a crash while it was sending), never lost; if once, sent or
//     uncertain.
type onceTally struct{ hookKeys, resent, delivered, uncertain int }

func (c *onceTally) check(t *testing.T, counts map[string]int, msgs map[string]*state.Message, hk, sk string) {
	t.Helper()
	if counts[hk] < 1 {
		t.Errorf("%s never reached the provider", hk)
	} else {
		c.hookKeys++
		c.resent += counts[hk] - 1
	}
	if m := msgs[hk]; m == nil || m.Status != state.StatusSent {
		t.Errorf("%s in the store: %v, want sent", hk, statusOf(m))
	}
	m := msgs[sk]
	switch {
	case counts[sk] > 1:
		t.Errorf("%s (not idempotent) reached the provider %d times", sk, counts[sk])
	case counts[sk] == 0 && (m == nil || m.Status != state.StatusUncertain):
		t.Errorf("%s never reached the provider and is %v in the store, want uncertain", sk, statusOf(m))
	case counts[sk] == 1 && (m == nil || (m.Status != state.StatusSent && m.Status != state.StatusUncertain)):
		t.Errorf("%s reached the provider and is %v in the store, want sent or uncertain", sk, statusOf(m))
	}
	if counts[sk] == 1 {
		c.delivered++
	}
	if m != nil && m.Status == state.StatusUncertain {
		c.uncertain++
	}
}

func statusOf(m *state.Message) string {
	if m == nil {
		return "absent"
	}
	return m.Status.String()
}

// adminCounts reads the message counts by state from the admin API.
func adminCounts(addr string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rep struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, err
	}
	return rep.Counts, nil
}

// freeAddr returns a loopback address with a port free right now.
// withAdmin gives the service an admin server on a free loopback port (the tests read the
// counts from its API) and returns its address.
func (e *env) withAdmin(t testing.TB) string {
	addr := freeAddr(t)
	e.extraConfig = "admin:\n  listen: " + addr + "\n"
	return addr
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// smsAndHookChannels is the channels block of the SIGKILL tests: the same gateway behind a
// non-idempotent channel "sms" (a crash mid-call leaves the message uncertain) and an
// idempotent one "hook" (resent after a crash, deduplicated by key at the provider).
func smsAndHookChannels(url string) string {
	return fmt.Sprintf(`  sms:
    type: webhook
    idempotent: false
    timeout: 5s
    backoff: {initial: 50ms, max: 500ms}
    webhook: {url: %q}
  hook:
    type: webhook
    idempotent: true
    timeout: 5s
    backoff: {initial: 50ms, max: 500ms}
    webhook: {url: %q}
`, url, url)
}
