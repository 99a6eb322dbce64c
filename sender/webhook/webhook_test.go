package webhook

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"notifier/state"
)

// captured is one request as the provider saw it.
type captured struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

// provider is a loopback HTTP server that records requests and answers with reply.
type provider struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []captured
	reply func(w http.ResponseWriter, r *http.Request, body string)
}

func newProvider(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, body string)) *provider {
	t.Helper()
	p := &provider{reply: reply}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.reqs = append(p.reqs, captured{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		p.mu.Unlock()
		if p.reply != nil {
			p.reply(w, r, string(b))
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) requests() []captured {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]captured(nil), p.reqs...)
}

func msg() *state.Message {
	return &state.Message{Key: "r1:42", Rule: "r1", Channel: "hook", To: "+4917612345689",
		Text: "Hello Anna", Data: []byte(`{"new":{"id":42,"name":"Anna"}}`)}
}

func TestWebhookDefaultJSONBodyAndIdempotencyKey(t *testing.T) {
	p := newProvider(t, nil)
	c, err := New(Options{Name: "hook", URL: p.URL + "/hook", Headers: map[string]string{"X-Rule": "{{.Rule}}"}})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := c.Send(context.Background(), msg())
	if err != nil || retry {
		t.Fatalf("Send = %v, %v", retry, err)
	}
	r := p.requests()[0]
	if r.Method != "POST" || r.Path != "/hook" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	want := `{"key":"r1:42","rule":"r1","channel":"hook","to":"+4917612345689","text":"Hello Anna"}`
	if r.Body != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	for h, v := range map[string]string{"Idempotency-Key": "r1:42", "Content-Type": "application/json", "X-Rule": "r1"} {
		if got := r.Header.Get(h); got != v {
			t.Errorf("header %s = %q, want %q", h, got, v)
		}
	}
}

func TestWebhookBodyTemplateOverData(t *testing.T) {
	p := newProvider(t, nil)
	c, err := New(Options{Name: "hook", URL: p.URL + "/u/{{.Data.new.id}}", Method: "put",
		Body: `{"name": {{json .Data.new.name}}, "msg": {{json .Text}}}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	r := p.requests()[0]
	if r.Method != "PUT" || r.Path != "/u/42" || r.Body != `{"name": "Anna", "msg": "Hello Anna"}` {
		t.Errorf("got %s %s %s", r.Method, r.Path, r.Body)
	}
}

func TestWebhookFormBody(t *testing.T) {
	p := newProvider(t, nil)
	c, err := New(Options{Name: "hook", URL: p.URL, Form: map[string]string{"to": "{{.To}}", "text": "{{.Text}}", "src": "notifier"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	r := p.requests()[0]
	if r.Body != "src=notifier&text=Hello+Anna&to=%2B4917612345689" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("got %q %q", r.Body, r.Header.Get("Content-Type"))
	}
}

func TestWebhookMissingTemplateKeyIsFinalAndSendsNothing(t *testing.T) {
	p := newProvider(t, nil)
	c, err := New(Options{Name: "hook", URL: p.URL, Body: `{"x": {{json .Data.new.missing}}}`})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := c.Send(context.Background(), msg())
	var e *Error
	if retry || !errors.As(err, &e) || e.Reason != reasonTemplate || !errors.Is(err, ErrTemplate) || !e.NotSent() {
		t.Fatalf("Send = %v, %v; want final template error", retry, err)
	}
	if n := len(p.requests()); n != 0 {
		t.Errorf("provider got %d requests", n)
	}
	// A body that is not JSON is refused too.
	c, _ = New(Options{Name: "hook", URL: p.URL, Body: `{"x": {{.Text}}}`})
	if retry, err := c.Send(context.Background(), msg()); retry || !errors.Is(err, ErrTemplate) {
		t.Fatalf("Send = %v, %v; want template error for invalid JSON", retry, err)
	}
}

func TestWebhookAuth(t *testing.T) {
	p := newProvider(t, nil)
	cases := []struct {
		name string
		o    Options
		want func(r captured) bool
	}{
		{"bearer", Options{Bearer: "tok-123"}, func(r captured) bool { return r.Header.Get("Authorization") == "Bearer tok-123" }},
		{"basic", Options{BasicUser: "u", BasicPassword: "p@ss"}, func(r captured) bool {
			return r.Header.Get("Authorization") == "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p@ss"))
		}},
		{"hmac", Options{HMACSecret: "k3y"}, func(r captured) bool {
			return r.Header.Get("X-Signature-256") == "sha256="+Sign([]byte("k3y"), []byte(r.Body))
		}},
		{"hmac custom header", Options{HMACSecret: "k3y", HMACHeader: "X-Sig", HMACPrefix: "v1="}, func(r captured) bool {
			return r.Header.Get("X-Sig") == "v1="+Sign([]byte("k3y"), []byte(r.Body))
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Name, tc.o.URL = "hook", p.URL
			c, err := New(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Send(context.Background(), msg()); err != nil {
				t.Fatal(err)
			}
			if r := p.requests()[i]; !tc.want(r) {
				t.Errorf("request headers %v", r.Header)
			}
		})
	}
	if _, err := New(Options{Name: "x", URL: p.URL, Bearer: "a", HMACSecret: "b"}); !errors.Is(err, ErrConfig) {
		t.Errorf("two auth methods: err = %v", err)
	}
}

func TestWebhookExtractsProviderID(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		io.WriteString(w, `{"message-count":"1","messages":[{"message-id":"0A00000012","status":"0"}]}`)
	})
	c, _ := New(Options{Name: "hook", URL: p.URL, IDPath: "messages.0.message-id"})
	m := msg()
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if m.ProviderID != "0A00000012" {
		t.Errorf("ProviderID = %q", m.ProviderID)
	}
}

func TestWebhookStatusClassification(t *testing.T) {
	long := strings.Repeat("x", 3000)
	cases := []struct {
		status     int
		header     string
		body       string
		retry      bool
		reason     string
		retryAfter time.Duration
	}{
		{400, "", `{"error":"invalid number"}`, false, reasonProvider4xx, 0},
		{404, "", long, false, reasonProvider4xx, 0},
		{429, "7", "slow down", true, reasonRateLimited, 7 * time.Second},
		{429, time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC).Format(http.TimeFormat), "", true, reasonRateLimited, 30 * time.Second},
		{500, "", "oops", true, reasonProvider5xx, 0},
		{503, "2", "", true, reasonProvider5xx, 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			now := func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }
			c, _ := New(Options{Name: "hook", URL: p.URL, Now: now})
			retry, err := c.Send(context.Background(), msg())
			var e *Error
			if !errors.As(err, &e) || retry != tc.retry || e.Reason != tc.reason || e.RetryDelay() != tc.retryAfter || e.Status != tc.status {
				t.Fatalf("Send = %v, %#v", retry, err)
			}
			if len(e.Body) > 1024 || !strings.HasPrefix(tc.body, strings.TrimSuffix(e.Body, "…")) {
				t.Errorf("kept body %d bytes: %.40q", len(e.Body), e.Body)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("status %d", tc.status)) {
				t.Errorf("error text %q", err)
			}
		})
	}
}

func TestWebhookTimeoutAfterWriteIsRetriableButMaybeSent(t *testing.T) {
	release := make(chan struct{})
	p := newProvider(t, func(http.ResponseWriter, *http.Request, string) { <-release })
	defer close(release)
	c, _ := New(Options{Name: "hook", URL: p.URL, Timeout: 100 * time.Millisecond})
	retry, err := c.Send(context.Background(), msg())
	var e *Error
	if !retry || !errors.As(err, &e) || e.Reason != reasonTimeout || e.NotSent() {
		t.Fatalf("Send = %v, %v (NotSent %v); want retriable timeout that may have been sent", retry, err, e != nil && e.NotSent())
	}
}

func TestWebhookRefusedConnectionIsNotSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := New(Options{Name: "hook", URL: "http://" + addr + "/x"})
	retry, err := c.Send(context.Background(), msg())
	var e *Error
	var oe *net.OpError
	if !retry || !errors.As(err, &e) || e.Reason != reasonConnection || !e.NotSent() || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("Send = %v, %v; want retriable not-sent dial error", retry, err)
	}
}

func TestWebhookErrorsRedactURLAndSecrets(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	// The provider echoes everything it got, headers included, into a 400 answer.
	p := newProvider(t, func(w http.ResponseWriter, r *http.Request, body string) {
		w.WriteHeader(400)
		fmt.Fprintf(w, "%s %s %v %s", r.URL.RequestURI(), body, r.Header, r.URL.User)
	})
	u, _ := url.Parse(p.URL)
	u.User = url.UserPassword("user", secret)
	u.RawQuery = "token=" + secret
	for _, o := range []Options{
		{URL: u.String(), Bearer: secret},
		{URL: u.String(), BasicUser: "u", BasicPassword: secret},
		{URL: u.String(), HMACSecret: secret},
	} {
		o.Name = "hook"
		c, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Send(context.Background(), msg())
		if err == nil || strings.Contains(err.Error(), secret) || !strings.HasPrefix(err.Error(), "webhook hook: POST "+p.URL+": status 400") {
			t.Errorf("error leaks: %v", err)
		}
		if b64 := base64.StdEncoding.EncodeToString([]byte("u:" + secret)); strings.Contains(err.Error(), b64) {
			t.Errorf("error leaks basic auth: %v", err)
		}
	}
	// A transport error carries the URL too: redacted.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c, _ := New(Options{Name: "hook", URL: "http://user:" + secret + "@" + addr + "/x?token=" + secret})
	if _, err := c.Send(context.Background(), msg()); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("transport error leaks: %v", err)
	}
}

func TestWebhookCustomCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Name: "hook", URL: srv.URL, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), msg()); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	c, _ = New(Options{Name: "hook", URL: srv.URL})
	retry, err := c.Send(context.Background(), msg())
	var e *Error
	if err == nil || !retry || !errors.As(err, &e) || !e.NotSent() {
		t.Fatalf("without ca_file: %v, %v; want retriable not-sent TLS failure", retry, err)
	}
	if _, err := New(Options{Name: "hook", URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("missing ca_file accepted")
	}
}
