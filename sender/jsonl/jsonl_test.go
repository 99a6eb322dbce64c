package jsonl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"notifier/render"
	"notifier/state"
)

var fixedNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func message(i int) *state.Message {
	return &state.Message{
		Key: fmt.Sprintf("rule-a:%d", i), Rule: "rule-a", Channel: "audit", To: "+4915112345689",
		Subject: "Hi", Text: "Hällo \"world\"\nline 2", CreatedAt: fixedNow.Add(-time.Minute),
	}
}

func newChannel(t *testing.T, cfg Config, opts ...Option) *Channel {
	t.Helper()
	ch, err := New(cfg, append([]Option{WithNow(func() time.Time { return fixedNow })}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func readLines(t *testing.T, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d %q: %v", len(out)+1, sc.Text(), err)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSendAppendsOneExactLinePerMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(path, []byte(`{"key":"earlier"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := newChannel(t, Config{Path: path})
	for i := range 2 {
		if retry, err := ch.Send(context.Background(), message(i)); err != nil || retry {
			t.Fatalf("Send %d: retry=%v err=%v", i, retry, err)
		}
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := `{"key":"earlier"}` + "\n" +
		`{"key":"rule-a:0","rule":"rule-a","channel":"audit","to":"+4915112345689","subject":"Hi","text":"Hällo \"world\"\nline 2","created_at":"2026-11-30T11:59:00Z","sent_at":"2026-11-30T12:00:00Z"}` + "\n" +
		`{"key":"rule-a:1","rule":"rule-a","channel":"audit","to":"+4915112345689","subject":"Hi","text":"Hällo \"world\"\nline 2","created_at":"2026-11-30T11:59:00Z","sent_at":"2026-11-30T12:00:00Z"}` + "\n"
	if string(got) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}
}

func TestConcurrentSendsNeverInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	no := false
	ch := newChannel(t, Config{Path: path, Sync: &no})
	const workers, each = 8, 50
	big := strings.Repeat("x", 16<<10) // lines larger than PIPE_BUF and a page
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := message(w*each + i)
				m.Text = big
				if _, err := ch.Send(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	lines := readLines(t, path)
	if len(lines) != workers*each {
		t.Fatalf("got %d lines, want %d", len(lines), workers*each)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if l.Text != big || seen[l.Key] {
			t.Fatalf("bad or repeated line %q", l.Key)
		}
		seen[l.Key] = true
	}
}

func TestMaskUsesRenderMaskByDefault(t *testing.T) {
	var buf bytes.Buffer
	ch := newChannel(t, Config{Path: "-", Mask: true}, WithStdout(&buf))
	if _, err := ch.Send(context.Background(), message(1)); err != nil {
		t.Fatal(err)
	}
	want := `"to":` + strconv.Quote(render.Mask("+4915112345689"))
	if got := buf.String(); !strings.Contains(got, want) || strings.Contains(got, "12345689") {
		t.Fatalf("line %s does not hold %s", got, want)
	}
}

func TestStdoutAndMask(t *testing.T) {
	var buf bytes.Buffer
	ch := newChannel(t, Config{Path: "-", Mask: true}, WithStdout(&buf),
		WithMask(func(s string) string { return s[:3] + "***" }))
	if _, err := ch.Send(context.Background(), message(1)); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.Contains(got, `"to":"+49***"`) || strings.Contains(got, "12345689") {
		t.Fatalf("stdout line does not mask the recipient: %s", got)
	}
}

func TestConfigAndLifecycleErrors(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("empty path: %v, want ErrConfig", err)
	}
	if _, err := New(Config{Path: "-", Mask: true}, WithMask(nil)); !errors.Is(err, ErrConfig) {
		t.Fatalf("mask without function: %v, want ErrConfig", err)
	}
	if _, err := New(Config{Path: filepath.Join(t.TempDir(), "no", "dir", "x.jsonl")}); err == nil {
		t.Fatal("unwritable path accepted")
	}
	ch := newChannel(t, Config{Path: filepath.Join(t.TempDir(), "x.jsonl")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if retry, err := ch.Send(ctx, message(1)); !retry || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: retry=%v err=%v", retry, err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := ch.Send(context.Background(), message(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
}

// BenchmarkSend measures appends per second with fsync per line (the default).
func BenchmarkSend(b *testing.B) {
	ch, err := New(Config{Path: filepath.Join(b.TempDir(), "b.jsonl")})
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	m := message(1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := ch.Send(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
