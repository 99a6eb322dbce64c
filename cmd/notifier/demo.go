package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"notifier/cdc"
	"notifier/devdb"
	"notifier/render"
	"notifier/state"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole thing end to end on this machine: MariaDB primary+replica, the service, a stand-in SMS gateway",
		Description: "Starts a throwaway MariaDB primary and replica (devdb), loads the schema and sample rows, " +
			"starts a local stand-in SMS gateway that prints every SMS it receives, runs the service with " +
			"the demo config and the example rules, makes a few changes on the primary, waits until every " +
			"expected SMS arrived exactly once, then stops and removes everything (unless --keep).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: "configs/demo.yaml", TakesFile: true, Usage: "demo service config `FILE` (its source, store and gateway URL are filled in)"},
			&cli.StringFlag{Name: "schema", Value: "configs/schema.sql", TakesFile: true, Usage: "schema `FILE` loaded on the primary"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the databases, store and logs (and print where they are)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"NOTIFIER_LOG_LEVEL"}, Usage: "service log level (the log goes to notifier.log in the demo directory)"},
			&cli.DurationFlag{Name: "timeout", Value: 45 * time.Second, Usage: "give up when the SMS have not all arrived after this long"},
		},
		Action: runDemo,
	}
}

// demoChange is one change the demo makes on the primary, with the SMS it must cause.
type demoChange struct {
	What   string         // printed before it is made
	SQL    []string       // statements, one transaction each
	Expect map[string]int // SMS it must cause, by rule
}

func runDemo(c *cli.Context) error {
	ctx := c.Context
	out := c.App.Writer
	began := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}

	cfg, err := LoadConfig(c.String("config"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	schema, err := os.ReadFile(c.String("schema"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("demo: schema: %v", err), 2)
	}
	dir, err := os.MkdirTemp("", "notifier-demo-")
	if err != nil {
		return fmt.Errorf("demo: temp dir: %w", err)
	}
	keep := c.Bool("keep")
	defer func() {
		if keep {
			step("kept everything in %s (notifier.log, store/, db/)", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()

	step("starting a throwaway MariaDB primary + replica (devdb) ...")
	dbDir := filepath.Join(dir, "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return err
	}
	cluster, err := devdb.Start(ctx, devdb.Options{Dir: dbDir})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// The servers die with this process (devdb sets PR_SET_PDEATHSIG), so they are always
	// stopped; --keep keeps their data directories.
	defer cluster.Stop()
	step("primary %s, replica %s (GTID, binlog ROW/FULL)", cluster.Primary().Addr, cluster.Replica().Addr)

	step("loading %s and the sample rows on the primary", c.String("schema"))
	if err := cluster.Primary().Exec(ctx, splitSQL(string(schema))...); err != nil {
		return fmt.Errorf("demo: schema: %w", err)
	}
	if err := cluster.Primary().Exec(ctx, demoSampleRows...); err != nil {
		return fmt.Errorf("demo: sample rows: %w", err)
	}
	if err := cluster.WaitReplicated(ctx); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	gw, err := startGateway(out, nil)
	if err != nil {
		return err
	}
	defer gw.close()
	step("stand-in SMS gateway listening on %s", gw.URL())

	// The demo config names no real endpoints: point it at this run's replica, store and gateway.
	if err := demoConfig(cfg, dir, cluster, gw); err != nil {
		return err
	}
	if err := seedCheckpoint(ctx, cfg, cluster); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "notifier.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	log, err := newLogger(logf, c.String("log-level"), "text")
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	svcCtx, stopSvc := context.WithCancel(ctx)
	defer stopSvc()
	svcDone := make(chan error, 1)
	go func() { svcDone <- Serve(svcCtx, cfg, ServeOptions{Logger: log}) }()
	step("notifier running: rules %s, store %s", cfg.Rules.Dir, cfg.Store.Dir)

	changes, note := demoChanges(time.Now())
	expected := map[string]int{}
	want := 0
	for _, ch := range changes {
		step("change on the primary: %s", ch.What)
		if err := cluster.Primary().Exec(ctx, ch.SQL...); err != nil {
			return fmt.Errorf("demo: %s: %w", ch.What, err)
		}
		for rule, n := range ch.Expect {
			expected[rule] += n
			want += n
		}
	}
	if note != "" {
		step("note: %s", note)
	}
	step("waiting for %d SMS (the coupon reminder fires about 5 s from now) ...", want)
	deadline := time.Now().Add(c.Duration("timeout"))
	for len(gw.ledger()) < want {
		select {
		case err := <-svcDone:
			keep = true
			return fmt.Errorf("demo: the service stopped: %v (log: %s)", err, logf.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			keep = true
			return fmt.Errorf("demo: %d of %d SMS arrived within %s (log: %s)", len(gw.ledger()), want, c.Duration("timeout"), logf.Name())
		}
	}
	// A moment longer, so a duplicate or an unexpected SMS would show.
	time.Sleep(1500 * time.Millisecond)
	stopSvc()
	if err := <-svcDone; err != nil {
		keep = true
		return fmt.Errorf("demo: service stop: %w (log: %s)", err, logf.Name())
	}

	got := map[string]int{}
	for _, sms := range gw.ledger() {
		got[sms.Rule]++
	}
	var problems []string
	for rule, n := range expected {
		if got[rule] != n {
			problems = append(problems, fmt.Sprintf("rule %s: expected %d SMS, got %d", rule, n, got[rule]))
		}
	}
	for rule, n := range got {
		if _, ok := expected[rule]; !ok {
			problems = append(problems, fmt.Sprintf("rule %s: %d unexpected SMS", rule, n))
		}
	}
	for key, n := range gw.counts() {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("message %s received %d times", key, n))
		}
	}
	if len(problems) > 0 {
		keep = true
		return fmt.Errorf("demo failed:\n  %s", strings.Join(problems, "\n  "))
	}
	printDemoStore(out, cfg.Store.Dir)
	step("demo ok: %d SMS, each exactly once; stopped cleanly", want)
	return nil
}

// printDemoStore lists the messages the run left in the store: what was sent, what waits.
func printDemoStore(out io.Writer, dir string) {
	st, err := state.Open(state.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintf(out, "  (store not readable: %v)\n", err)
		return
	}
	defer st.Close()
	ms, err := st.List(context.Background(), state.Filter{Limit: 100})
	if err != nil {
		return
	}
	fmt.Fprintln(out, "messages in the store:")
	for _, m := range ms {
		line := fmt.Sprintf("  %-10s %s", m.Status, m.Key)
		if !m.Status.Terminal() && !m.DueAt.IsZero() {
			line += "  due " + m.DueAt.UTC().Format(time.RFC3339)
		}
		if m.Reason != "" {
			line += "  (" + m.Reason + ")"
		}
		fmt.Fprintln(out, line)
	}
}

// demoConfig points cfg at this run's replica, store and gateway.
func demoConfig(cfg *Config, dir string, cluster *devdb.Cluster, gw *smsGateway) error {
	pw := filepath.Join(dir, "dbpass")
	if err := os.WriteFile(pw, []byte("notifier\n"), 0o600); err != nil {
		return err
	}
	cfg.Source.Addr = cluster.Replica().Addr
	cfg.Source.User = devdb.NotifierUser
	cfg.Source.PasswordFile = pw
	cfg.Store.Dir = filepath.Join(dir, "store")
	for name, ch := range cfg.Channels {
		if ch.Webhook != nil {
			w := *ch.Webhook
			w.URL = gw.URL()
			ch.Webhook = &w
			cfg.Channels[name] = ch
		}
	}
	cfg.Admin.Listen = ""
	return nil
}

// seedCheckpoint makes the service start at the replica's current position: after the
// schema and the sample rows, before the demo's changes.
func seedCheckpoint(ctx context.Context, cfg *Config, cluster *devdb.Cluster) error {
	gtid, err := cluster.Replica().GTIDBinlogPos(ctx)
	if err != nil {
		return err
	}
	st, err := state.Open(state.Options{Dir: cfg.Store.Dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("demo: store: %w", err)
	}
	defer st.Close()
	return st.SetCheckpoint(ctx, state.Checkpoint{Flavor: cfg.Source.Flavor, Position: cdc.Position{GTID: gtid}.String(),
		CommitTime: time.Now().UTC()})
}

// splitSQL splits a schema file into statements at ';' line ends, dropping comments.
func splitSQL(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") || strings.HasPrefix(t, "#") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// demoSampleRows are loaded before the service starts; they cause nothing (the service starts
// after them).
var demoSampleRows = []string{
	`INSERT INTO lending.contracts (id, customer_id, status, amount, currency, first_name, phone) VALUES
		(1001, 1, 'draft', 1500.00, 'EUR', 'Anna', '0151 23456789'),
		(1002, 2, 'active', 800.00, 'EUR', 'Ben', '+49 160 9876543')`,
	`INSERT INTO crm.customers (id, first_name, phone, email, sms_opt_in) VALUES
		(1, 'Anna', '0151 23456789', 'anna@example.com', 1), (2, 'Ben', '+49 160 9876543', NULL, 0)`,
}

// demoChanges are the changes made while the service runs, with the SMS each must cause, per
// rule. now is the wall clock: the repayment reminder's due date is chosen so that its fire time
// (09:00 Berlin, 3 days before) has just passed, and it is expected now unless Berlin is in the
// rule's quiet hours (21:00–08:00), when it waits for 08:00.
func demoChanges(now time.Time) (changes []demoChange, note string) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	local := now.In(berlin)
	due := local.AddDate(0, 0, 3)
	if local.Hour() < 9 {
		due = local.AddDate(0, 0, 2)
	}
	repayment := 1
	if h := local.Hour(); h >= 21 || h < 8 {
		repayment = 0
		note = "it is quiet time in Berlin (21:00-08:00): the repayment reminder waits for 08:00"
	}
	return []demoChange{
		{What: "contract 1001 (Anna) becomes active",
			SQL:    []string{"UPDATE lending.contracts SET status = 'active' WHERE id = 1001"},
			Expect: map[string]int{"contract-activated": 1}},
		{What: "contract 1002 (Ben, already active) changes its amount: no SMS",
			SQL: []string{"UPDATE lending.contracts SET amount = 900.00 WHERE id = 1002"}},
		{What: "an installment of contract 1001 is due on " + due.Format("2006-01-02") + " (reminder 3 days before, 09:00 Berlin)",
			SQL: []string{fmt.Sprintf(`INSERT INTO lending.installments (contract_id, due_date, amount, currency, first_name, phone)
				VALUES (1001, '%s', 125.00, 'EUR', 'Anna', '0151 23456789')`, due.Format("2006-01-02"))},
			Expect: map[string]int{"repayment-due": repayment}},
		{What: "a coupon can be claimed in 65 s (reminder one minute before)",
			SQL: []string{`INSERT INTO promo.coupon_subscriptions (user_id, phone, coupon_title, claim_at)
				VALUES (1, '0151 23456789', 'Winter sale -20%', UTC_TIMESTAMP() + INTERVAL 65 SECOND)`},
			Expect: map[string]int{"coupon-reminder": 1}},
		{What: "another coupon subscription, cancelled right away: its reminder is withdrawn",
			SQL: []string{`INSERT INTO promo.coupon_subscriptions (id, user_id, phone, coupon_title, claim_at)
				VALUES (77, 2, '+49 160 9876543', 'Winter sale -20%', UTC_TIMESTAMP() + INTERVAL 65 SECOND)`,
				"UPDATE promo.coupon_subscriptions SET cancelled = 1 WHERE id = 77"}},
	}, note
}

// smsGateway is the demo's stand-in SMS provider, and the tests' provider with a ledger: an
// HTTP server on loopback that accepts the webhook channel's default JSON document
// ({key, rule, channel, to, text, ...}, header Idempotency-Key), prints each SMS it receives
// ("SMS to +49*****89: <text>") and records it.
type smsGateway struct {
	srv *http.Server
	ln  net.Listener
	out io.Writer // where received SMS are printed; nil: not printed

	// Answer, if set, decides the response to a request: status and body. Default 200 {"id":…}.
	answer func(sms receivedSMS) (int, string)

	mu       sync.Mutex
	received []receivedSMS
	byKey    map[string]int
}

// receivedSMS is one request the gateway received.
type receivedSMS struct {
	Key     string `json:"key"`
	Rule    string `json:"rule"`
	Channel string `json:"channel"`
	To      string `json:"to"`
	Text    string `json:"text"`
	Subject string `json:"subject,omitempty"`
}

// startGateway listens on 127.0.0.1 (a free port) and serves until close.
func startGateway(out io.Writer, answer func(receivedSMS) (int, string)) (*smsGateway, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sms gateway: listen: %w", err)
	}
	g := &smsGateway{ln: ln, out: out, answer: answer, byKey: make(map[string]int)}
	g.srv = &http.Server{Handler: http.HandlerFunc(g.serve)}
	go func() { _ = g.srv.Serve(ln) }()
	return g, nil
}

// URL is the endpoint to configure as the webhook channel's url.
func (g *smsGateway) URL() string { return "http://" + g.ln.Addr().String() + "/sms" }

func (g *smsGateway) close() error { return g.srv.Close() }

func (g *smsGateway) serve(w http.ResponseWriter, r *http.Request) {
	var sms receivedSMS
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&sms); err != nil {
		http.Error(w, "bad json: "+err.Error(), http.StatusBadRequest)
		return
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" && sms.Key == "" {
		sms.Key = k
	}
	status, body := http.StatusOK, ""
	if g.answer != nil {
		status, body = g.answer(sms)
	}
	if status/100 == 2 {
		g.mu.Lock()
		g.received = append(g.received, sms)
		g.byKey[sms.Key]++
		id := len(g.received)
		g.mu.Unlock()
		if g.out != nil {
			fmt.Fprintf(g.out, "SMS to %s: %s\n", render.Mask(sms.To), sms.Text)
		}
		if body == "" {
			body = fmt.Sprintf(`{"id":"sms-%d"}`, id)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// ledger returns a copy of everything accepted so far, in arrival order.
func (g *smsGateway) ledger() []receivedSMS {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]receivedSMS(nil), g.received...)
}

// counts returns accepted deliveries per key.
func (g *smsGateway) counts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.byKey))
	for k, v := range g.byKey {
		out[k] = v
	}
	return out
}
