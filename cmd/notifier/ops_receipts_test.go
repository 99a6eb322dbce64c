package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"notifier/admin"
)

// TestReceiptMarksASentMessageDelivered: with sender.receipts set, a provider's delivery
// report POSTed to /receipts on the admin server is recorded on the sent message (visible in
// `messages show`). /receipts is not behind the admin bearer token (the admin API here is):
// only its own shared secret counts, and a wrong or missing one is refused and changes nothing.
func TestReceiptMarksASentMessageDelivered(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	addr := opsFreeAddr(t)
	must(t, os.WriteFile(filepath.Join(e.dir, "admin.token"), []byte("admin-bearer-token\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(e.dir, "receipts.secret"), []byte("receipt-secret-value\n"), 0o600))
	e.extraConfig = fmt.Sprintf("admin:\n  listen: %s\n  token_file: admin.token\n", addr)
	e.writeConfig()
	b, err := os.ReadFile(e.cfgPath)
	must(t, err)
	must(t, os.WriteFile(e.cfgPath, []byte(strings.Replace(string(b), "\nsender:\n",
		"\nsender:\n  receipts:\n    secret: {file: receipts.secret}\n", 1)), 0o644))
	e.seedCheckpoint()
	cfg := []string{"--config", e.cfgPath}

	e.start()
	e.sentinel(1)
	waitFor(t, "activated:1 sent in the store", 30*time.Second, func() bool {
		return opsJSON[admin.StatusReport](t, append([]string{"status"}, cfg...)...).Counts["sent"] == 1
	})
	show := func() string {
		out, _ := opsCLI(t, append(append([]string{"messages", "show"}, cfg...), "activated:1")...)
		return out
	}
	post := func(header, query string) (int, string) {
		body := `{"key": "activated:1", "status": "delivered", "provider_id": "prov-1"}`
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/receipts"+query, strings.NewReader(body))
		must(t, err)
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("X-Notifier-Token", header)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The admin API is guarded; the receipts route is not behind that guard.
	resp, err := http.Get("http://" + addr + "/api/v1/status")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/status without the bearer token = %d, want 401", resp.StatusCode)
	}
	before := show()
	for _, c := range []struct{ name, header, query string }{
		{"no secret", "", ""},
		{"wrong secret", "not-the-secret", ""},
		{"the admin token", "admin-bearer-token", ""},
		{"wrong secret in the query", "", "?token=nope"},
	} {
		if code, body := post(c.header, c.query); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("%s: POST /receipts = %d %q, want 401 or 403", c.name, code, body)
		}
	}
	if after := show(); after != before || strings.Contains(after, "receipt:") {
		t.Errorf("refused receipts changed the message:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	if code, body := post("receipt-secret-value", ""); code/100 != 2 {
		t.Fatalf("POST /receipts with the secret = %d %q, want 2xx", code, body)
	}
	out := show()
	for _, want := range []string{"receipt: delivered", "sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("messages show lacks %q:\n%s", want, out)
		}
	}
	if code, _ := post("", "?token=receipt-secret-value"); code/100 != 2 {
		t.Errorf("POST /receipts?token=<secret> = %d, want 2xx", code)
	}
	// Neither secret reaches the log.
	log, err := os.ReadFile(e.logPath)
	must(t, err)
	for _, s := range []string{"receipt-secret-value", "admin-bearer-token"} {
		if strings.Contains(string(log), s) {
			t.Errorf("the service log contains the secret %q", s)
		}
	}
}
