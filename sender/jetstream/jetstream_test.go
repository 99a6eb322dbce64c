package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"gopkg.in/yaml.v3"

	"notifier/secret"
	"notifier/state"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func message(key string) *state.Message {
	return &state.Message{Key: key, Rule: "coupon", Channel: "bus", To: "+4915112345689",
		Subject: "S", Text: "Your coupon expires in 1 minute", CreatedAt: t0}
}

func streamConfig(srv *natsServer) Config {
	return Config{URL: srv.URL(), Subject: "notify.out", Stream: "NOTIFY", CreateStream: true, Timeout: 5 * time.Second}
}

func newChannel(t testing.TB, cfg Config, opts ...Option) *Channel {
	t.Helper()
	ch, err := New(cfg, append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func send(t testing.TB, ch *Channel, m *state.Message) {
	t.Helper()
	if retry, err := ch.Send(context.Background(), m); err != nil {
		t.Fatalf("Send %s: retry=%v err=%v", m.Key, retry, err)
	}
}

func TestPublishWritesTheMessageJSONWithItsKeyAsMsgID(t *testing.T) {
	srv := startNATS(t, nil)
	ch := newChannel(t, streamConfig(srv))
	m := message("coupon:7:2026-12-01T10:00")
	m.HTML = "<b>x</b>"
	send(t, ch, m)
	if m.ProviderID != "NOTIFY:1" {
		t.Fatalf("ProviderID = %q, want NOTIFY:1", m.ProviderID)
	}

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	raw, err := nc.Request("$JS.API.STREAM.MSG.GET.NOTIFY", []byte(`{"seq":1}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Message struct {
			Subject string `json:"subject"`
			Data    []byte `json:"data"`
			Hdrs    []byte `json:"hdrs"`
		} `json:"message"`
	}
	if err := json.Unmarshal(raw.Data, &got); err != nil {
		t.Fatal(err)
	}
	want := `{"key":"coupon:7:2026-12-01T10:00","rule":"coupon","channel":"bus","to":"+4915112345689","subject":"S","text":"Your coupon expires in 1 minute","html":"\u003cb\u003ex\u003c/b\u003e","created_at":"2026-11-30T12:00:00Z"}`
	if got.Message.Subject != "notify.out" || string(got.Message.Data) != want {
		t.Fatalf("stored %s %s\nwant %s", got.Message.Subject, got.Message.Data, want)
	}
	if !strings.Contains(string(got.Message.Hdrs), "Nats-Msg-Id: coupon:7:2026-12-01T10:00") {
		t.Fatalf("headers %q lack the msg id", got.Message.Hdrs)
	}
}

func TestSameKeyTwiceIsStoredOnceAndBothSendsSucceed(t *testing.T) {
	srv := startNATS(t, nil)
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprint("async=", async), func(t *testing.T) {
			cfg := streamConfig(srv)
			cfg.Async, cfg.Stream = async, fmt.Sprint("DEDUPE", async)
			cfg.Subject = "dedupe." + fmt.Sprint(async)
			var logs bytes.Buffer
			ch := newChannel(t, cfg, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			a, b := message("k1"), message("k1")
			send(t, ch, a)
			send(t, ch, b)
			if a.ProviderID != b.ProviderID {
				t.Fatalf("duplicate got another sequence: %s vs %s", a.ProviderID, b.ProviderID)
			}
			if n, ids := srv.streamMsgIDs(t, cfg.Stream); n != 1 || ids[0] != "k1" {
				t.Fatalf("stream holds %d messages %v, want just k1", n, ids)
			}
			if !strings.Contains(logs.String(), "duplicate ack") {
				t.Fatalf("duplicate not logged at debug: %s", logs.String())
			}
		})
	}
}

func TestStreamIsCreatedWithTheDuplicateWindow(t *testing.T) {
	srv := startNATS(t, nil)
	ch := newChannel(t, streamConfig(srv))
	send(t, ch, message("k1"))
	info, err := ch.js.Stream(context.Background(), "NOTIFY")
	if err != nil {
		t.Fatal(err)
	}
	if d := info.CachedInfo().Config.Duplicates; d != DefaultDuplicates {
		t.Fatalf("stream duplicates = %s, want %s", d, DefaultDuplicates)
	}
}

// TestServerRestartMidRunEndsWithExactlyNMessages publishes N keys like the sender would:
// each until it succeeds. The server is killed after the first third; while it is down every
// Send reports retry; the publishes buffered during the outage may reach the stream after the
// restart, and their resends are then acked as duplicates.
func TestServerRestartMidRunEndsWithExactlyNMessages(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprint("async=", async), func(t *testing.T) {
			srv := startNATS(t, nil)
			cfg := streamConfig(srv)
			cfg.Async = async
			ch := newChannel(t, cfg)
			const n = 60
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("msg-%03d", i)
			}
			for _, k := range keys[:20] {
				send(t, ch, message(k))
			}
			srv.Stop()
			for _, k := range keys[20:30] {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				retry, err := ch.Send(ctx, message(k))
				cancel()
				// Buffered for the reconnect without an ack (timeout), or failed by the status
				// change (async: nats: server is disconnected); either way it may be stored.
				var e *Error
				if !retry || !errors.As(err, &e) || e.NotSent() ||
					(e.FailureReason() != ReasonTimeout && e.FailureReason() != ReasonConnection) {
					t.Fatalf("Send %s while down: retry=%v err=%v, want a retried, possibly stored failure", k, retry, err)
				}
			}
			srv.Start()
			for _, k := range keys[20:] {
				var err error
				for attempt := 0; attempt < 50; attempt++ {
					var retry bool
					if retry, err = ch.Send(context.Background(), message(k)); err == nil || !retry {
						break
					}
				}
				if err != nil {
					t.Fatalf("Send %s after restart: %v", k, err)
				}
			}
			// Buffered publishes flushed on reconnect may land out of order: compare as sets.
			count, ids := srv.streamMsgIDs(t, "NOTIFY")
			slices.Sort(ids)
			if count != n || !slices.Equal(ids, keys) {
				t.Fatalf("stream holds %d messages %v, want each of the %d keys exactly once", count, ids, n)
			}
		})
	}
}

func TestNoStreamIsRetriedAndNotSent(t *testing.T) {
	srv := startNATS(t, nil)
	ch := newChannel(t, Config{URL: srv.URL(), Subject: "nobody.listens", Timeout: 5 * time.Second})
	retry, err := ch.Send(context.Background(), message("k1"))
	var e *Error
	if !retry || !errors.As(err, &e) || !e.NotSent() || e.FailureReason() != ReasonServer {
		t.Fatalf("retry=%v err=%v, want a retried not-sent server error", retry, err)
	}
}

func TestShortDuplicateWindowOfAnExistingStreamIsWarned(t *testing.T) {
	srv := startNATS(t, nil)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "SHORT", Subjects: []string{"short.out"}}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ch := newChannel(t, Config{URL: srv.URL(), Subject: "short.out", Stream: "SHORT"},
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	send(t, ch, message("k1"))
	send(t, ch, message("k2"))
	if n := strings.Count(logs.String(), "duplicate window is shorter"); n != 1 {
		t.Fatalf("warned %d times, want once: %s", n, logs.String())
	}
}

func TestWrongExpectedStreamIsNotSent(t *testing.T) {
	srv := startNATS(t, nil)
	first := newChannel(t, streamConfig(srv))
	send(t, first, message("k0"))
	cfg := streamConfig(srv)
	cfg.CreateStream, cfg.Stream = false, "OTHER"
	ch := newChannel(t, cfg)
	retry, err := ch.Send(context.Background(), message("k1"))
	var e *Error
	if !retry || !errors.As(err, &e) || !e.NotSent() {
		t.Fatalf("retry=%v err=%v, want a retried not-sent error", retry, err)
	}
}

func TestCredentialsNeverLeak(t *testing.T) {
	const password = "nats-secret-pw-42"
	srv := startNATS(t, []nats.Option{nats.UserInfo("notifier", password)}, "--user", "notifier", "--pass", password)
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	y := fmt.Sprintf("url: %s\nsubject: notify.out\nstream: NOTIFY\ncreate_stream: true\ntimeout: 2s\nuser: notifier\npassword: {file: %s}\n", srv.URL(), file)
	if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ch := newChannel(t, cfg, WithLogger(logger))
	send(t, ch, message("k1")) // the file was read and trimmed

	// A wrong password: Sends fail, and neither password shows anywhere.
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("wrong-"+password), 0o600)
	bad := cfg
	bad.Password = secret.Secret{File: wrong}
	bch := newChannel(t, bad, WithLogger(logger))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	retry, err := bch.Send(ctx, message("k2"))
	if !retry || err == nil {
		t.Fatalf("wrong password: retry=%v err=%v", retry, err)
	}
	dump, _ := yaml.Marshal(cfg)
	for name, out := range map[string]string{
		"error": err.Error(), "logs": logs.String(), "yaml": string(dump),
		"%+v config": fmt.Sprintf("%+v", cfg), "%#v config": fmt.Sprintf("%#v", bad),
	} {
		if strings.Contains(out, password) {
			t.Errorf("%s contains the password: %s", name, out)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Subject: "a.b"}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"no subject":        {func(c *Config) { c.Subject = "" }, "subject"},
		"wildcard subject":  {func(c *Config) { c.Subject = "a.*" }, "subject"},
		"create no stream":  {func(c *Config) { c.CreateStream = true }, "needs stream"},
		"short window":      {func(c *Config) { c.Stream, c.CreateStream, c.Duplicates = "S", true, time.Minute }, "below 1h0m0s"},
		"max age < window":  {func(c *Config) { c.MaxAge = time.Hour }, "max_age"},
		"bad storage":       {func(c *Config) { c.Storage = "disk" }, "storage"},
		"creds in url":      {func(c *Config) { c.URL = "nats://u:p@host:4222" }, "not in the URL"},
		"two auth kinds":    {func(c *Config) { c.Token = secret.Value("t"); c.Creds = secret.Value("c") }, "one of"},
		"user without pw":   {func(c *Config) { c.User = "u" }, "go together"},
		"unreadable secret": {func(c *Config) { c.Token = secret.Secret{File: "/nonexistent"} }, "token"},
		"bad creds":         {func(c *Config) { c.Creds = secret.Value("not a creds file") }, "creds"},
	} {
		c := ok
		tc.mutate(&c)
		_, err := New(c)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig containing %q", name, err, tc.want)
		}
	}
}

// BenchmarkPublish measures acknowledged publishes per second to a local file-backed stream
// from 32 concurrent senders, sync (one request per message) and async (a shared window).
func BenchmarkPublish(b *testing.B) {
	srv := startNATS(b, nil)
	for _, async := range []bool{false, true} {
		b.Run(fmt.Sprint("async=", async), func(b *testing.B) {
			cfg := streamConfig(srv)
			cfg.Async = async
			cfg.Stream = fmt.Sprint("BENCH", async)
			cfg.Subject = fmt.Sprint("bench.", async)
			ch := newChannel(b, cfg)
			var mu sync.Mutex
			seq := 0
			b.SetParallelism(16) // 16×GOMAXPROCS senders
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					seq++
					k := fmt.Sprint("b-", seq)
					mu.Unlock()
					if _, err := ch.Send(context.Background(), message(k)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func TestCredsFileContentIsParsedIntoJWTAndSeed(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	creds := "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.c2ln\n------END NATS USER JWT------\n\n" +
		"************************* IMPORTANT *************************\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(seed) + "\n------END USER NKEY SEED------\n"
	file := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(file, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Subject: "a.b", Creds: secret.Secret{File: file}}
	opts, err := credentials(&cfg)
	if err != nil || len(opts) != 1 {
		t.Fatalf("credentials: %d options, %v", len(opts), err)
	}
	// A seed without a JWT is refused, and the error does not quote the file.
	os.WriteFile(file, []byte("-----BEGIN USER NKEY SEED-----\n"+string(seed)+"\n------END USER NKEY SEED------\n"), 0o600)
	if _, err := credentials(&cfg); !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), string(seed)) {
		t.Fatalf("seed-only creds: %v", err)
	}
}
