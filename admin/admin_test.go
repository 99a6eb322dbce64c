package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"notifier/admin"
	"notifier/admin/admintest"
	"notifier/state"
)

// testServer runs an admin server over the fixture store behind a real loopback HTTP server.
type testServer struct {
	store  *state.Store
	srv    *admin.Server
	http   *httptest.Server
	client *admin.Client
	logs   *syncBuffer
}

func status() admin.Status {
	return admin.Status{Version: "test", StartedAt: admintest.T0.Add(-time.Hour), BinlogConnected: true,
		Lag: 2 * time.Second, RulesLoaded: 3, RulesHash: "abc123"}
}

func newTestServer(t *testing.T, mod func(*admin.Options)) *testServer {
	t.Helper()
	st, _ := admintest.Open(t)
	logs := &syncBuffer{}
	opts := admin.Options{
		Store: st, Status: status, Version: "test",
		Logger: logger(logs), Now: func() time.Time { return admintest.T0 },
	}
	if mod != nil {
		mod(&opts)
	}
	srv, err := admin.New(opts)
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cl, err := admin.NewClient(hs.URL, opts.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{store: st, srv: srv, http: hs, client: cl, logs: logs}
}

func (ts *testServer) get(t *testing.T, path string, header ...string) (int, string) {
	t.Helper()
	return ts.do(t, http.MethodGet, path, "", header...)
}

func (ts *testServer) do(t *testing.T, method, path, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStatusReportsStoreAndService(t *testing.T) {
	ts := newTestServer(t, nil)
	r, err := ts.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Service == nil || r.Service.RulesHash != "abc123" || !r.Service.BinlogConnected || r.Service.Lag != 2*time.Second {
		t.Errorf("service = %+v", r.Service)
	}
	if r.Checkpoint.Position != "gtid:0-1-42" || r.Checkpoint.Flavor != "mariadb" {
		t.Errorf("checkpoint = %+v", r.Checkpoint)
	}
	want := map[string]int{"scheduled": 2, "ready": 1, "sending": 0, "sent": 1, "retry": 1, "dead": 2,
		"cancelled": 1, "uncertain": 1, "held": 1, "skipped": 0}
	if fmt.Sprint(r.Counts) != fmt.Sprint(want) {
		t.Errorf("counts = %v, want %v", r.Counts, want)
	}
	if r.DueIndexSize == 0 || r.OldestDue.IsZero() {
		t.Errorf("due index = %d, oldest %v", r.DueIndexSize, r.OldestDue)
	}
}

func TestMessagesFilterAndMask(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	ms, err := ts.client.Messages(ctx, admin.Query{State: "dead"})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(ms); !slices.Equal(got, []string{"coupon:4001", "welcome:2003"}) {
		t.Errorf("dead = %v", got)
	}
	ms, err = ts.client.Messages(ctx, admin.Query{Rule: "repayment-reminder", To: admintest.Phone1})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(ms); !slices.Equal(got, []string{"reminder:1001", "reminder:1002", "reminder:1003"}) {
		t.Errorf("by rule and to = %v", got)
	}
	for _, m := range ms {
		if m.To != "+49*******01" {
			t.Errorf("%s: to = %q, want masked", m.Key, m.To)
		}
	}
	if _, err := ts.client.Messages(ctx, admin.Query{State: "lost"}); !errors.Is(err, admin.ErrBadRequest) {
		t.Errorf("unknown state: err = %v, want ErrBadRequest", err)
	}
}

func keys(ms []admin.MessageView) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Key)
	}
	slices.Sort(out)
	return out
}

// TestRecipientsNeverLeakMasked: no answer of the API contains a recipient in clear unless
// unmask was asked for (STYLE 9), including the row data and provider errors that echo it.
func TestRecipientsNeverLeakMasked(t *testing.T) {
	ts := newTestServer(t, nil)
	var all strings.Builder
	for _, p := range []string{
		"/api/v1/messages?limit=100", "/api/v1/messages/welcome:2003", "/api/v1/messages/sms:3001",
		"/api/v1/dead", "/api/v1/timers", "/api/v1/export", "/api/v1/status",
	} {
		code, body := ts.get(t, p)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
		all.WriteString(body)
	}
	for _, to := range []string{admintest.Phone1, admintest.Phone2, admintest.Mail1, admintest.Mail2, "anna2@example.com"} {
		if strings.Contains(all.String(), to) {
			t.Errorf("masked output contains %q", to)
		}
	}
	m, err := ts.client.Message(context.Background(), "welcome:2003", true)
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "anna2@example.com" || !strings.Contains(m.LastError, "anna2@example.com") || !strings.Contains(string(m.Data), "anna2@example.com") {
		t.Errorf("unmasked message = %+v", m)
	}
	if strings.Contains(ts.logs.String(), "@example.com") || strings.Contains(ts.logs.String(), "+49176") {
		t.Errorf("logs contain a recipient:\n%s", ts.logs)
	}
}

func TestMessageShowsHistory(t *testing.T) {
	ts := newTestServer(t, nil)
	m, err := ts.client.Message(context.Background(), "welcome:2002", false)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "retry" || m.Text != "Welcome, Ben!" || len(m.History) != 1 || m.History[0].Error != "503 Service Unavailable" {
		t.Errorf("message = %+v", m)
	}
	if !m.DueAt.Equal(admintest.T0.Add(5 * time.Minute)) {
		t.Errorf("due = %v", m.DueAt)
	}
	_, err = ts.client.Message(context.Background(), "nope", false)
	if !errors.Is(err, state.ErrNotFound) {
		t.Errorf("missing message: err = %v, want state.ErrNotFound", err)
	}
}

func TestActionsCancelResendDrop(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	cases := []struct {
		action admin.Action
		key    string
		want   string // state after, or the sentinel's name
	}{
		{admin.ActionCancel, "reminder:1002", "cancelled"},
		{admin.ActionCancel, "welcome:2001", "conflict"}, // sent: too late
		{admin.ActionResend, "sms:3001", "ready"},        // uncertain → ready, by an operator
		{admin.ActionDrop, "sms:3003", "cancelled"},      // held → cancelled
		{admin.ActionDrop, "sms:3002", "conflict"},       // ready: cancel it instead
		{admin.ActionResend, "missing", "not found"},
	}
	for _, c := range cases {
		m, err := ts.client.Act(ctx, c.action, c.key)
		got := m.Status
		switch {
		case errors.Is(err, admin.ErrConflict):
			got = "conflict"
		case errors.Is(err, state.ErrNotFound):
			got = "not found"
		case err != nil:
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s %s = %q, want %q", c.action, c.key, got, c.want)
		}
	}
	if !strings.Contains(ts.logs.String(), `"action":"resend","key":"sms:3001"`) {
		t.Errorf("resend not logged:\n%s", ts.logs)
	}
}

func TestDeadRetryAndDrop(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	res, err := ts.client.DeadAct(ctx, admin.ActionResend, []string{"welcome:2003", "sms:3002"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Done, []string{"welcome:2003"}) || !strings.Contains(res.Failed["sms:3002"], "not dead") {
		t.Errorf("retry = %+v", res)
	}
	res, err = ts.client.DeadAct(ctx, admin.ActionDrop, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Done, []string{"coupon:4001"}) || len(res.Failed) != 0 {
		t.Errorf("drop --all = %+v", res)
	}
	if _, err := ts.client.DeadAct(ctx, admin.ActionDrop, []string{"x"}, true); !errors.Is(err, admin.ErrBadRequest) {
		t.Errorf("keys and all: err = %v, want ErrBadRequest", err)
	}
	m, _ := ts.store.Get("welcome:2003")
	if m.Status != state.StatusReady {
		t.Errorf("welcome:2003 after retry = %s", m.Status)
	}
}

func TestTimersEarliestFirst(t *testing.T) {
	ts := newTestServer(t, nil)
	ms, err := ts.client.Timers(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Key)
	}
	// The due index: the ready message due now, the retry, then the reminders.
	if want := []string{"sms:3002", "welcome:2002", "reminder:1002", "reminder:1001"}; !slices.Equal(got, want) {
		t.Errorf("timers = %v, want %v", got, want)
	}
	ms, err = ts.client.Timers(context.Background(), admintest.T0.Add(3*time.Hour), 0)
	if err != nil || len(ms) != 3 {
		t.Errorf("timers before T0+3h = %d, %v", len(ms), err)
	}
}

func TestCheckpointRewindNeedsService(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t, nil)
	cp, err := ts.client.Checkpoint(ctx)
	if err != nil || cp.Position != "gtid:0-1-42" {
		t.Fatalf("checkpoint = %+v, %v", cp, err)
	}
	// Without Rewind the running pipeline would overwrite it: refused.
	if _, err := ts.client.SetCheckpoint(ctx, "gtid:0-1-10", ""); !errors.Is(err, admin.ErrRewindUnsupported) {
		t.Errorf("set without Rewind: err = %v, want ErrRewindUnsupported", err)
	}
	var got state.Checkpoint
	ts = newTestServer(t, func(o *admin.Options) {
		o.Rewind = func(ctx context.Context, cp state.Checkpoint) error {
			got = cp
			return ts.store.SetCheckpoint(ctx, cp)
		}
	})
	ch, err := ts.client.SetCheckpoint(ctx, "gtid:0-1-10", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Position != "gtid:0-1-10" || got.Flavor != "mariadb" || ch.Old.Position != "gtid:0-1-42" || ch.New.Position != "gtid:0-1-10" {
		t.Errorf("rewind got %+v, change %+v", got, ch)
	}
	if _, err := ts.client.SetCheckpoint(ctx, "", ""); !errors.Is(err, admin.ErrBadRequest) {
		t.Errorf("empty position: err = %v", err)
	}
}

func TestExportJSONLines(t *testing.T) {
	ts := newTestServer(t, nil)
	code, body := ts.get(t, "/api/v1/export?state=scheduled")
	if code != 200 {
		t.Fatal(code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 2 {
		t.Fatalf("export: %d lines:\n%s", len(lines), body)
	}
	byKey := map[string]admin.MessageView{}
	for _, line := range lines {
		var m admin.MessageView
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		byKey[m.Key] = m
	}
	if m := byKey["reminder:1001"]; m.Status != "scheduled" || m.Text == "" || len(m.Data) == 0 || len(byKey) != 2 {
		t.Errorf("export = %+v", byKey)
	}
	var n int
	err := ts.client.Export(context.Background(), admin.Query{}, func(admin.MessageView) error { n++; return nil })
	if err != nil || n != 10 {
		t.Errorf("export all = %d, %v", n, err)
	}
}

func TestKeyWithSlashAndColon(t *testing.T) {
	ts := newTestServer(t, nil)
	key := "rule/a:b c%d"
	m := &state.Message{Key: key, Rule: "r", Channel: "sms", To: admintest.Phone1, Status: state.StatusHeld, CreatedAt: admintest.T0}
	if _, err := ts.store.Apply(context.Background(), &state.Batch{Messages: []*state.Message{m}}); err != nil {
		t.Fatal(err)
	}
	got, err := ts.client.Message(context.Background(), key, false)
	if err != nil || got.Key != key {
		t.Fatalf("get %q = %+v, %v", key, got, err)
	}
	if got, err = ts.client.Act(context.Background(), admin.ActionDrop, key); err != nil || got.Status != "cancelled" {
		t.Errorf("drop %q = %+v, %v", key, got, err)
	}
}

func TestTokenGuardsAPIButNotProbes(t *testing.T) {
	const token = "s3cret-token-value"
	ts := newTestServer(t, func(o *admin.Options) { o.Token = token })
	for _, p := range []string{"/api/v1/status", "/api/v1/messages", "/api/v1/export"} {
		if code, _ := ts.get(t, p); code != 401 {
			t.Errorf("GET %s without token = %d, want 401", p, code)
		}
		if code, _ := ts.get(t, p, "Authorization", "Bearer wrong"); code != 401 {
			t.Errorf("GET %s with a wrong token = %d, want 401", p, code)
		}
		if code, _ := ts.get(t, p, "Authorization", "Bearer "+token); code != 200 {
			t.Errorf("GET %s with the token = %d, want 200", p, code)
		}
	}
	if code, _ := ts.do(t, http.MethodPost, "/-/reload", ""); code != 401 {
		t.Errorf("reload without token = %d", code)
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _ := ts.get(t, p); code != 200 {
			t.Errorf("GET %s = %d, want 200 without a token", p, code)
		}
	}
	if _, err := ts.client.Status(context.Background()); err != nil {
		t.Errorf("client with token: %v", err)
	}
	bad, _ := admin.NewClient(ts.http.URL, "wrong", nil)
	_, err := bad.Status(context.Background())
	if !errors.Is(err, admin.ErrUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong token: err = %v", err)
	}
	if strings.Contains(ts.logs.String(), token) {
		t.Errorf("token in logs")
	}
}

func TestReadyz(t *testing.T) {
	cases := []struct {
		name string
		st   admin.Status
		code int
		body string
	}{
		{"connected and caught up", admin.Status{BinlogConnected: true, Lag: time.Second}, 200, "ready"},
		{"disconnected", admin.Status{BinlogConnected: false}, 503, "binlog: not connected"},
		{"lagging", admin.Status{BinlogConnected: true, Lag: 10 * time.Minute}, 503, "binlog: lag 10m0s over 5m0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, func(o *admin.Options) { o.Status = func() admin.Status { return c.st } })
			code, body := ts.get(t, "/readyz")
			if code != c.code || !strings.Contains(body, c.body) {
				t.Errorf("readyz = %d %q, want %d %q", code, body, c.code, c.body)
			}
		})
	}
	t.Run("store closed", func(t *testing.T) {
		ts := newTestServer(t, nil)
		ts.store.Close()
		if code, body := ts.get(t, "/readyz"); code != 503 || !strings.Contains(body, "store:") {
			t.Errorf("readyz = %d %q", code, body)
		}
		if code, _ := ts.get(t, "/healthz"); code != 200 {
			t.Errorf("healthz = %d", code)
		}
	})
}

func TestReload(t *testing.T) {
	cases := []struct {
		name   string
		reload func(context.Context) error
		code   int
		want   string
	}{
		{"ok", func(context.Context) error { return nil }, 200, `"hash": "abc123"`},
		{"refused rules", func(context.Context) error {
			return fmt.Errorf("reload rules: %w", errors.Join(errors.New("a.yaml:3:5: unknown field"), errors.New("b.yaml:1:1: bad")))
		}, 400, `"a.yaml:3:5: unknown field",`},
		{"internal", func(context.Context) error { return errors.New("disk on fire") }, 500, "disk on fire"},
		{"unsupported", nil, 501, "reload not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, func(o *admin.Options) { o.Reload = c.reload })
			code, body := ts.do(t, http.MethodPost, "/-/reload", "")
			if code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("reload = %d %s, want %d %q", code, body, c.code, c.want)
			}
		})
	}
	ts := newTestServer(t, func(o *admin.Options) {
		o.Reload = func(context.Context) error { return errors.Join(errors.New("x.yaml:1:1: bad")) }
	})
	res, err := ts.client.Reload(context.Background())
	if err != nil || res.OK || !slices.Equal(res.Errors, []string{"x.yaml:1:1: bad"}) {
		t.Errorf("client reload = %+v, %v", res, err)
	}
}

func TestMetricsPublishStoreSeries(t *testing.T) {
	ts := newTestServer(t, nil)
	code, body := ts.get(t, "/metrics")
	if code != 200 {
		t.Fatal(code)
	}
	for _, want := range []string{
		`notifier_build_info{version="test"} 1`,
		`notifier_messages{state="uncertain"} 1`,
		`notifier_messages{state="scheduled"} 2`,
		`notifier_messages{state="sending"} 0`,
		`notifier_due_index_size `,
		`notifier_due_oldest_seconds `,
		`notifier_store_size_bytes{kind="lsm"} `,
		`notifier_store_size_bytes{kind="vlog"} `,
		`go_goroutines `, // process metrics are exposed too
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Closing the server unregisters its series.
	ts.srv.Close()
	var buf bytes.Buffer
	ts2 := newTestServer(t, func(o *admin.Options) { o.Version = "other" })
	_, body = ts2.get(t, "/metrics")
	buf.WriteString(body)
	if strings.Contains(buf.String(), `version="test"`) {
		t.Errorf("a closed server's series are still published")
	}
}

func TestServeStopsOnCancelAndClose(t *testing.T) {
	st, _ := admintest.Open(t)
	srv, err := admin.New(admin.Options{Store: st, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	cl, _ := admin.NewClient(ln.Addr().String(), "", nil)
	for cl.Ping(ctx, time.Second) != nil {
		// The listener is open before Serve runs: connections queue until it accepts.
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := cl.Ping(context.Background(), time.Second); !errors.Is(err, admin.ErrUnavailable) {
		t.Errorf("ping after stop = %v, want ErrUnavailable", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := admin.New(admin.Options{}); err == nil {
		t.Error("New without Store: no error")
	}
	st, _ := admintest.Open(t)
	if _, err := admin.New(admin.Options{Store: st, Listen: "nope"}); err == nil {
		t.Error("New with a bad listen address: no error")
	}
}

func TestParseSince(t *testing.T) {
	now := admintest.T0
	for in, want := range map[string]time.Time{
		"":                     {},
		"24h":                  now.Add(-24 * time.Hour),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10:00:00Z": time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := admin.ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := admin.ParseSince("yesterday", now); !errors.Is(err, admin.ErrBadRequest) {
		t.Errorf("ParseSince(yesterday) err = %v", err)
	}
	if got, _ := admin.ParseUntil("1h", now); !got.Equal(now.Add(time.Hour)) {
		t.Errorf("ParseUntil(1h) = %v", got)
	}
}

func TestExtraRoutes(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "extra") })
	ts := newTestServer(t, func(o *admin.Options) {
		o.Token = "t"
		o.Extra = map[string]http.Handler{"GET /debug/extra": ok, "GET /api/v1/extra": ok}
	})
	if code, body := ts.get(t, "/debug/extra"); code != 200 || body != "extra" {
		t.Errorf("open extra route = %d %q", code, body)
	}
	if code, _ := ts.get(t, "/api/v1/extra"); code != 401 {
		t.Errorf("extra route under /api/ without token = %d, want 401", code)
	}
	if code, _ := ts.get(t, "/api/v1/extra", "Authorization", "Bearer t"); code != 200 {
		t.Errorf("extra route under /api/ with token = %d", code)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/token"
	os.WriteFile(file, []byte("  from-file\n"), 0o600)
	t.Setenv(admin.TokenEnv, "from-env")
	if tok, err := admin.LoadToken(file); err != nil || tok != "from-file" {
		t.Errorf("LoadToken(file) = %q, %v", tok, err)
	}
	if tok, err := admin.LoadToken(""); err != nil || tok != "from-env" {
		t.Errorf("LoadToken(\"\") = %q, %v", tok, err)
	}
	os.WriteFile(file, []byte("\n"), 0o600)
	if _, err := admin.LoadToken(file); err == nil {
		t.Error("an empty token file is accepted (the API would be open)")
	}
	if _, err := admin.LoadToken(dir + "/missing"); err == nil {
		t.Error("a missing token file is accepted")
	}
}

func TestWarnsWithoutTokenBeyondLoopback(t *testing.T) {
	st, _ := admintest.Open(t)
	for listen, warn := range map[string]bool{":9464": true, "0.0.0.0:9464": true, "127.0.0.1:9464": false, "localhost:9464": false} {
		logs := &syncBuffer{}
		srv, err := admin.New(admin.Options{Store: st, Listen: listen, Logger: logger(logs)})
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if got := strings.Contains(logs.String(), "has no token"); got != warn {
			t.Errorf("listen %s: warned = %v, want %v", listen, got, warn)
		}
	}
}

func TestStatusReportsSnapshotAndSweeps(t *testing.T) {
	snap := &admin.SnapshotView{Done: true, Position: "gtid:0-1-7", Started: admintest.T0.Add(-2 * time.Hour),
		Finished: admintest.T0.Add(-time.Hour), Tables: []admin.SnapshotTableView{{Table: "app.users", Rows: 12, Done: true}}}
	sweeps := []admin.SweepView{{Name: "overdue", Schedule: "@every 1h", Next: admintest.T0.Add(time.Hour),
		HasRun: true, Tick: admintest.T0, Rows: 3, Messages: 2, Started: admintest.T0}}
	ts := newTestServer(t, func(o *admin.Options) {
		o.Snapshot = func() (*admin.SnapshotView, error) { return snap, nil }
		o.Sweeps = func() ([]admin.SweepView, error) { return sweeps, nil }
	})
	r, err := ts.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Snapshot, snap) {
		t.Errorf("snapshot = %+v, want %+v", r.Snapshot, snap)
	}
	if !reflect.DeepEqual(r.Sweeps, sweeps) {
		t.Errorf("sweeps = %+v, want %+v", r.Sweeps, sweeps)
	}
	// Without the hooks the report has neither (a store-only view).
	r, err = newTestServer(t, nil).client.Status(context.Background())
	if err != nil || r.Snapshot != nil || r.Sweeps != nil {
		t.Errorf("no hooks: snapshot %+v, sweeps %+v, err %v", r.Snapshot, r.Sweeps, err)
	}
}
