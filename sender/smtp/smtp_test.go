package smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"notifier/render"
	"notifier/secret"
	"notifier/state"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// clock is an injectable clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func baseConfig(ts *testServer) Config {
	return Config{Host: "127.0.0.1", Port: ts.Port, CAFile: ts.CAFile, From: "Notifier <noreply@example.com>", Connections: 2}
}

func newChannel(t *testing.T, cfg Config, opts ...Option) *Channel {
	t.Helper()
	ch, err := New(cfg, append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func mailMessage(key, to string) *state.Message {
	return &state.Message{Key: key, Rule: "welcome", Channel: "email", To: to,
		Subject: "Hello", Text: "Hi there.\nSee you."}
}

func send(t *testing.T, ch *Channel, m *state.Message) {
	t.Helper()
	if retry, err := ch.Send(context.Background(), m); err != nil {
		t.Fatalf("Send %s: retry=%v err=%v", m.Key, retry, err)
	}
}

func TestSendWritesExactMultipartMessageOverStartTLSWithAuthPlain(t *testing.T) {
	ts := startServer(t, serverOpts{user: "mailer", pass: "s3cr3t-pw"})
	cfg := baseConfig(ts)
	cfg.Username, cfg.Password = "mailer", secret.Value("s3cr3t-pw")
	cfg.MessageIDDomain = "mail.example.com"
	clk := &clock{now: t0}
	ch := newChannel(t, cfg, WithNow(clk.Now))

	m := mailMessage("contract:42:2026-12-01", "Jürgen Müller <juergen@example.org>")
	m.Subject = "Ihr Vertrag ist aktiv – willkommen, Jürgen! Bitte lesen Sie die Hinweise zur Zahlung"
	m.Text = "Grüße,\nIhr Team = Support"
	m.HTML = "<p>Grüße,<br>Ihr Team</p>"
	send(t, ch, m)

	_, _, _, msgs := ts.snapshot()
	if len(msgs) != 1 {
		t.Fatalf("server accepted %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "noreply@example.com" || got.To != "juergen@example.org" || got.User != "mailer" || !got.TLS {
		t.Fatalf("envelope/session = %+v", got)
	}
	wantID := MessageID(m.Key, "mail.example.com")
	if len(wantID) != len("<@mail.example.com>")+32 {
		t.Fatalf("MessageID %q: want 32 hex chars", wantID)
	}
	b := boundaryFor(m)
	want := "From: \"Notifier\" <noreply@example.com>\r\n" +
		"To: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n" +
		"Subject: =?UTF-8?q?Ihr_Vertrag_ist_aktiv_=E2=80=93_willkommen,_J=C3=BCrgen!_Bitte_?=\r\n" +
		" =?UTF-8?q?lesen_Sie_die_Hinweise_zur_Zahlung?=\r\n" +
		"Date: Mon, 30 Nov 2026 12:00:00 +0000\r\n" +
		"Message-ID: " + wantID + "\r\n" +
		"Auto-Submitted: auto-generated\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"" + b + "\"\r\n" +
		"\r\n" +
		"--" + b + "\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Gr=C3=BC=C3=9Fe,\r\nIhr Team =3D Support\r\n" +
		"--" + b + "\r\n" +
		"Content-Type: text/html; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"<p>Gr=C3=BC=C3=9Fe,<br>Ihr Team</p>\r\n" +
		"--" + b + "--\r\n"
	if got.Data != want {
		t.Fatalf("message:\n%s\nwant:\n%s", got.Data, want)
	}

	// And a standard parser reads it back to the original parts.
	pm, err := mail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Fatalf("decoded subject %q (%v), want %q", subject, err, m.Subject)
	}
	_, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	mr := multipart.NewReader(pm.Body, params["boundary"])
	for _, wantBody := range []string{"Grüße,\r\nIhr Team = Support", m.HTML} {
		p, err := mr.NextPart() // decodes quoted-printable
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		if string(body) != wantBody {
			t.Fatalf("part body %q, want %q", body, wantBody)
		}
	}
}

func TestTextOnlyMessageIsSinglePart(t *testing.T) {
	ts := startServer(t, serverOpts{})
	ch := newChannel(t, baseConfig(ts), WithNow(func() time.Time { return t0 }))
	send(t, ch, mailMessage("k1", "a@example.org"))
	_, _, _, msgs := ts.snapshot()
	want := "From: \"Notifier\" <noreply@example.com>\r\n" +
		"To: <a@example.org>\r\n" +
		"Subject: Hello\r\n" +
		"Date: Mon, 30 Nov 2026 12:00:00 +0000\r\n" +
		"Message-ID: " + MessageID("k1", DefaultMessageIDDomain) + "\r\n" +
		"Auto-Submitted: auto-generated\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Hi there.\r\nSee you.\r\n"
	if len(msgs) != 1 || msgs[0].Data != want {
		t.Fatalf("messages %+v, want one:\n%s", msgs, want)
	}
}

func TestMessageIDIsDerivedFromTheKeyOnly(t *testing.T) {
	a, b := MessageID("rule:1", "x.test"), MessageID("rule:1", "x.test")
	if a != b || a == MessageID("rule:2", "x.test") || !strings.HasSuffix(a, "@x.test>") {
		t.Fatalf("MessageID not a function of the key: %s %s", a, b)
	}
	if got := MessageID("", "notifier.local"); got != "<e3b0c44298fc1c149afbf4c8996fb924@notifier.local>" {
		t.Fatalf("MessageID(\"\") = %s", got) // sha256("") prefix
	}
}

func TestSequentialSendsReuseOneConnectionWithRSET(t *testing.T) {
	ts := startServer(t, serverOpts{user: "u", pass: "p"})
	cfg := baseConfig(ts)
	cfg.Username, cfg.Password = "u", secret.Value("p")
	ch := newChannel(t, cfg)
	for i := range 10 {
		send(t, ch, mailMessage(fmt.Sprint("k", i), "a@example.org"))
	}
	conns, resets, _, msgs := ts.snapshot()
	if len(msgs) != 10 || conns != 1 {
		t.Fatalf("messages=%d connections=%d, want 10 over 1", len(msgs), conns)
	}
	if resets < 9 {
		t.Fatalf("RSET seen %d times, want at least one between each of 10 messages", resets)
	}
}

func TestConcurrentSendsOpenAtMostOneConnectionPerSlot(t *testing.T) {
	ts := startServer(t, serverOpts{})
	cfg := baseConfig(ts)
	cfg.Connections = 3
	ch := newChannel(t, cfg)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := ch.Send(context.Background(), mailMessage(fmt.Sprint(w, "/", i), "a@example.org")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	conns, _, _, msgs := ts.snapshot()
	if len(msgs) != 60 || conns < 1 || conns > 3 {
		t.Fatalf("messages=%d connections=%d, want 60 over at most 3", len(msgs), conns)
	}
}

func TestEveryThirdMessage451IsRetriedAndTheConnectionKept(t *testing.T) {
	ts := startServer(t, serverOpts{failEvery: 3})
	ch := newChannel(t, baseConfig(ts))
	var retried []string
	for i := range 9 {
		m := mailMessage(fmt.Sprint("k", i), "a@example.org")
		retry, err := ch.Send(context.Background(), m)
		if err == nil {
			continue
		}
		var e *Error
		if !retry || !errors.As(err, &e) || e.Code != 451 || e.FailureReason() != ReasonTransient || !e.NotSent() {
			t.Fatalf("Send %s: retry=%v err=%#v", m.Key, retry, err)
		}
		if !strings.Contains(err.Error(), "try again later") {
			t.Fatalf("error %q lacks the server's reply text", err)
		}
		retried = append(retried, m.Key)
	}
	conns, _, _, msgs := ts.snapshot()
	if strings.Join(retried, ",") != "k2,k5,k8" || len(msgs) != 6 || conns != 1 {
		t.Fatalf("retried %v, accepted %d, connections %d; want k2,k5,k8, 6, 1", retried, len(msgs), conns)
	}
}

func TestPermanent550IsDeadWithTheReplyText(t *testing.T) {
	ts := startServer(t, serverOpts{})
	ch := newChannel(t, baseConfig(ts))
	retry, err := ch.Send(context.Background(), mailMessage("k1", "unknown@example.org"))
	var e *Error
	if retry || !errors.As(err, &e) || e.Code != 550 || e.Stage != "rcpt" || e.FailureReason() != ReasonRefused {
		t.Fatalf("retry=%v err=%#v, want dead 550 at rcpt", retry, err)
	}
	if want := "<" + render.Mask("unknown@example.org") + ">: mailbox unavailable"; !strings.Contains(err.Error(), want) ||
		strings.Contains(err.Error(), "unknown@example.org") {
		t.Fatalf("error %q: want the reply text %q with the recipient masked", err, want)
	}
	// The connection stays usable for the next message.
	send(t, ch, mailMessage("k2", "a@example.org"))
	if conns, _, _, msgs := ts.snapshot(); conns != 1 || len(msgs) != 1 {
		t.Fatalf("connections=%d accepted=%d, want 1 and 1", conns, len(msgs))
	}
}

func TestConnectionRefusedIsRetriedAndKnownNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ch := newChannel(t, Config{Host: "127.0.0.1", Port: port, TLS: TLSNone, From: "n@example.com"})
	retry, err := ch.Send(context.Background(), mailMessage("k1", "a@example.org"))
	var e *Error
	var op *net.OpError
	if !retry || !errors.As(err, &e) || e.FailureReason() != ReasonConnection || !e.NotSent() ||
		!errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("retry=%v err=%#v, want a retried dial failure", retry, err)
	}
}

func TestTimeoutAfterEndOfDataIsReportedUncertain(t *testing.T) {
	ts := startServer(t, serverOpts{})
	ch := newChannel(t, baseConfig(ts))
	send(t, ch, mailMessage("k0", "a@example.org")) // warm: the slot holds an open connection
	ts.blockData()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	retry, err := ch.Send(ctx, mailMessage("k1", "a@example.org"))
	var e *Error
	if !retry || !errors.Is(err, ErrUncertain) || !errors.As(err, &e) || e.NotSent() ||
		e.FailureReason() != ReasonTimeout || e.Stage != stageEndOfData {
		t.Fatalf("retry=%v err=%#v, want uncertain timeout after end of data", retry, err)
	}
	ts.unblock()
	// The broken connection was dropped; the next Send dials anew and succeeds.
	send(t, ch, mailMessage("k2", "a@example.org"))
	if conns, _, _, msgs := ts.snapshot(); conns != 2 || len(msgs) != 2 || !strings.Contains(msgs[1].Data, MessageID("k2", DefaultMessageIDDomain)) {
		t.Fatalf("connections=%d accepted=%d, want 2 and k0, k2", conns, len(msgs))
	}
}

func TestCancelAfterEndOfDataIsUncertainShutdown(t *testing.T) {
	ts := startServer(t, serverOpts{})
	ch := newChannel(t, baseConfig(ts))
	ts.blockData()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-ts.gotData // the server holds the whole message and has not answered
		cancel()
	}()
	retry, err := ch.Send(ctx, mailMessage("k1", "a@example.org"))
	var e *Error
	if !retry || !errors.Is(err, ErrUncertain) || !errors.As(err, &e) || e.NotSent() ||
		e.FailureReason() != ReasonShutdown {
		t.Fatalf("retry=%v err=%#v, want uncertain shutdown after end of data", retry, err)
	}
}

func TestCancelledWaitForASlotIsNotSent(t *testing.T) {
	ts := startServer(t, serverOpts{})
	cfg := baseConfig(ts)
	cfg.Connections = 1
	ch := newChannel(t, cfg)
	ts.blockData()
	first := make(chan error, 1)
	go func() {
		_, err := ch.Send(context.Background(), mailMessage("k1", "a@example.org"))
		first <- err
	}()
	<-ts.gotData // the first Send holds the only slot: its DATA has reached the server
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	retry, err := ch.Send(ctx, mailMessage("k2", "a@example.org"))
	var e *Error
	if !retry || !errors.As(err, &e) || !e.NotSent() || !errors.Is(err, context.Canceled) {
		t.Fatalf("retry=%v err=%v, want a not-sent retry", retry, err)
	}
	ts.unblock()
	if err := <-first; err == nil || !strings.Contains(err.Error(), "too late") {
		t.Fatalf("first Send: %v, want the 451 it got", err)
	}
}

func TestIdleConnectionIsCheckedAndRedialledWhenDead(t *testing.T) {
	ts := startServer(t, serverOpts{})
	clk := &clock{now: t0}
	ch := newChannel(t, baseConfig(ts), WithNow(clk.Now))
	send(t, ch, mailMessage("k1", "a@example.org"))
	ts.killConnections()
	clk.Advance(31 * time.Second)
	send(t, ch, mailMessage("k2", "a@example.org")) // NOOP fails, redial, deliver
	clk.Advance(31 * time.Second)
	send(t, ch, mailMessage("k3", "a@example.org")) // NOOP passes, reuse
	if conns, _, _, msgs := ts.snapshot(); conns != 2 || len(msgs) != 3 {
		t.Fatalf("connections=%d accepted=%d, want 2 and 3", conns, len(msgs))
	}
}

func TestImplicitTLSWithAuthLogin(t *testing.T) {
	ts := startServer(t, serverOpts{implicitTLS: true, user: "u", pass: "pw"})
	cfg := baseConfig(ts)
	cfg.TLS, cfg.Auth, cfg.Username, cfg.Password, cfg.HELO = TLSImplicit, AuthLogin, "u", secret.Value("pw"), "notifier.example.com"
	ch := newChannel(t, cfg)
	send(t, ch, mailMessage("k1", "a@example.org"))
	if _, _, _, msgs := ts.snapshot(); len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != "u" {
		t.Fatalf("accepted %+v, want one over TLS as u", msgs)
	}
}

func TestPlainConnectionWithInsecureAuthAllowed(t *testing.T) {
	ts := startServer(t, serverOpts{noTLS: true, user: "u", pass: "pw"})
	cfg := Config{Host: "127.0.0.1", Port: ts.Port, TLS: TLSNone, From: "n@example.com",
		Username: "u", Password: secret.Value("pw"), AllowInsecureAuth: true}
	ch := newChannel(t, cfg)
	send(t, ch, mailMessage("k1", "a@example.org"))
	if _, _, _, msgs := ts.snapshot(); len(msgs) != 1 || msgs[0].TLS || msgs[0].User != "u" {
		t.Fatalf("accepted %+v, want one in clear as u", msgs)
	}
}

func TestUntrustedCertificateFailsAsConnectionError(t *testing.T) {
	ts := startServer(t, serverOpts{})
	cfg := baseConfig(ts)
	cfg.CAFile = startServer(t, serverOpts{}).CAFile // another server's CA
	ch := newChannel(t, cfg)
	retry, err := ch.Send(context.Background(), mailMessage("k1", "a@example.org"))
	var e *Error
	if !retry || !errors.As(err, &e) || e.Stage != "tls" || !e.NotSent() {
		t.Fatalf("retry=%v err=%v, want a retried tls failure", retry, err)
	}
}

func TestPasswordNeverLeaksIntoErrorsLogsOrDumps(t *testing.T) {
	const password = "hunter2-very-secret"
	ts := startServer(t, serverOpts{user: "u", pass: "another"})
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	y := fmt.Sprintf("host: 127.0.0.1\nport: %d\nca_file: %s\nfrom: n@example.com\nusername: u\npassword: {file: %s}\n", ts.Port, ts.CAFile, file)
	if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ch := newChannel(t, cfg, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	retry, err := ch.Send(context.Background(), mailMessage("k1", "a@example.org"))
	var e *Error
	if !retry || !errors.As(err, &e) || e.Stage != "auth" || e.Code != 535 {
		t.Fatalf("retry=%v err=%v, want a retried auth failure 535", retry, err)
	}
	dump, _ := yaml.Marshal(cfg)
	for name, out := range map[string]string{
		"error": err.Error(), "logs": logs.String(), "yaml dump": string(dump),
		"%+v config": fmt.Sprintf("%+v", cfg), "%#v config": fmt.Sprintf("%#v", cfg), "%+v channel": fmt.Sprintf("%+v", ch),
	} {
		if strings.Contains(out, password) {
			t.Errorf("%s contains the password: %s", name, out)
		}
	}
	// The file really was read (and trimmed): with the right password the server accepts.
	ts.mu.Lock()
	ts.pass = password
	ts.mu.Unlock()
	send(t, ch, mailMessage("k2", "a@example.org"))
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Host: "mx", From: "n@example.com"}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"no host":           {func(c *Config) { c.Host = "" }, "host is required"},
		"no from":           {func(c *Config) { c.From = "" }, "from is required"},
		"bad from":          {func(c *Config) { c.From = "not an address" }, "from"},
		"bad tls":           {func(c *Config) { c.TLS = "ssl" }, "want starttls, tls or none"},
		"bad auth":          {func(c *Config) { c.Auth = "cram-md5"; c.Username = "u"; c.Password = secret.Value("p") }, "want plain or login"},
		"user without pw":   {func(c *Config) { c.Username = "u" }, "go together"},
		"auth in clear":     {func(c *Config) { c.TLS = TLSNone; c.Username = "u"; c.Password = secret.Value("p") }, "allow_insecure_auth"},
		"missing ca":        {func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "ca_file"},
		"bad port":          {func(c *Config) { c.Port = 70000 }, "out of range"},
		"negative":          {func(c *Config) { c.Connections = -1 }, "negative"},
		"bad id domain":     {func(c *Config) { c.MessageIDDomain = "a b" }, "message_id_domain"},
		"unset pw env":      {func(c *Config) { c.Username = "u"; c.Password = secret.Secret{Env: "NOTIFIER_NOT_SET_Y"} }, "password"},
		"unreadable pw":     {func(c *Config) { c.Username = "u"; c.Password = secret.Secret{File: "/nonexistent"} }, "password"},
		"injection in helo": {func(c *Config) { c.HELO = "x\r\nRCPT TO:<a@b>" }, "helo"},
	} {
		c := ok
		tc.mutate(&c)
		_, err := New(c)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig containing %q", name, err, tc.want)
		}
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestBadRecipientIsDeadWithoutConnecting(t *testing.T) {
	ts := startServer(t, serverOpts{})
	ch := newChannel(t, baseConfig(ts))
	for _, to := range []string{"", "not an address", "a@example.org\r\nBcc: x@example.org"} {
		retry, err := ch.Send(context.Background(), mailMessage("k1", to))
		if retry || !errors.Is(err, ErrRecipient) {
			t.Errorf("To %q: retry=%v err=%v, want dead ErrRecipient", to, retry, err)
		}
	}
	if conns, _, _, _ := ts.snapshot(); conns != 0 {
		t.Fatalf("connected %d times for invalid recipients", conns)
	}
}

func TestSendAfterCloseFails(t *testing.T) {
	ts := startServer(t, serverOpts{})
	ch := newChannel(t, baseConfig(ts))
	send(t, ch, mailMessage("k1", "a@example.org"))
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Send(context.Background(), mailMessage("k2", "a@example.org")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// BenchmarkSend measures messages per second over reused STARTTLS connections to the
// in-process server (4 connections, parallel senders).
func BenchmarkSend(b *testing.B) {
	ts := startServer(b, serverOpts{})
	cfg := baseConfig(ts)
	cfg.Connections = 4
	ch, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	b.SetParallelism(2) // 2×GOMAXPROCS senders
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := ch.Send(context.Background(), mailMessage(fmt.Sprint("b", i), "a@example.org")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
