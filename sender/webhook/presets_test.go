package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTwilioSendsTheDocumentedRequest(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		io.WriteString(w, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}`)
	})
	c, err := NewTwilio(Options{Name: "sms"}, Twilio{BaseURL: p.URL, AccountSID: "AC123", AuthToken: "tw-token",
		From: "+15005550006", StatusCallback: "https://notifier.example/receipts?token=cb"})
	if err != nil {
		t.Fatal(err)
	}
	m := msg()
	if retry, err := c.Send(context.Background(), m); err != nil || retry {
		t.Fatalf("Send = %v, %v", retry, err)
	}
	r := p.requests()[0]
	if r.Method != "POST" || r.Path != "/2010-04-01/Accounts/AC123/Messages.json" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if got, want := r.Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte("AC123:tw-token")); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	form, _ := url.ParseQuery(r.Body)
	want := url.Values{"To": {"+4917612345689"}, "From": {"+15005550006"}, "Body": {"Hello Anna"},
		"StatusCallback": {"https://notifier.example/receipts?key=r1%3A42&token=cb"}}
	if form.Encode() != want.Encode() {
		t.Errorf("form\n got %s\nwant %s", form.Encode(), want.Encode())
	}
	if m.ProviderID != "SM0123456789abcdef0123456789abcdef" {
		t.Errorf("ProviderID = %q", m.ProviderID)
	}
}

func TestTwilioInvalidNumberIsDeadWithAnswer(t *testing.T) {
	body := `{"code": 21211, "message": "The 'To' number +49 is not a valid phone number.", "status": 400}`
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.WriteHeader(400)
		io.WriteString(w, body)
	})
	c, _ := NewTwilio(Options{Name: "sms"}, Twilio{BaseURL: p.URL, AccountSID: "AC1", AuthToken: "0123456789abcdef", From: "+1"})
	retry, err := c.Send(context.Background(), msg())
	var e *Error
	if retry || !errors.As(err, &e) || e.Reason != reasonProvider4xx || e.Body != body {
		t.Fatalf("Send = %v, %v", retry, err)
	}
}

func TestVonageSendsTheDocumentedRequest(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		io.WriteString(w, `{"message-count":"1","messages":[{"to":"4917612345689","message-id":"0A0000000123ABCD1","status":"0","remaining-balance":"3.14","message-price":"0.03","network":"26201"}]}`)
	})
	c, err := NewVonage(Options{Name: "sms"}, Vonage{BaseURL: p.URL, APIKey: "abcd1234", APISecret: "vn-secret", From: "ACME"})
	if err != nil {
		t.Fatal(err)
	}
	m := msg()
	if retry, err := c.Send(context.Background(), m); err != nil || retry {
		t.Fatalf("Send = %v, %v", retry, err)
	}
	r := p.requests()[0]
	if r.Method != "POST" || r.Path != "/sms/json" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("request %s %s %s", r.Method, r.Path, r.Header.Get("Content-Type"))
	}
	form, _ := url.ParseQuery(r.Body)
	want := url.Values{"api_key": {"abcd1234"}, "api_secret": {"vn-secret"}, "from": {"ACME"},
		"to": {"4917612345689"}, "text": {"Hello Anna"}, "client-ref": {"r1:42"}}
	if form.Encode() != want.Encode() {
		t.Errorf("form\n got %s\nwant %s", form.Encode(), want.Encode())
	}
	if m.ProviderID != "0A0000000123ABCD1" {
		t.Errorf("ProviderID = %q", m.ProviderID)
	}
}

func TestVonageUnicodeTextSetsTypeUnicode(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		io.WriteString(w, `{"message-count":"1","messages":[{"message-id":"X1","status":"0"}]}`)
	})
	c, _ := NewVonage(Options{Name: "sms"}, Vonage{BaseURL: p.URL, APIKey: "k", APISecret: "s", From: "ACME",
		StatusCallback: "https://notifier.example/dlr"})
	m := msg()
	m.Text = "Привет, Анна"
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	form, _ := url.ParseQuery(p.requests()[0].Body)
	if form.Get("type") != "unicode" || form.Get("text") != "Привет, Анна" || form.Get("callback") != "https://notifier.example/dlr" {
		t.Errorf("form %v", form)
	}
}

func TestVonageStatusCodes(t *testing.T) {
	cases := []struct {
		body   string
		retry  bool
		reason string
	}{
		{`{"message-count":"1","messages":[{"status":"1","error-text":"Throughput Rate Exceeded - please wait [ 30 ] and retry"}]}`, true, reasonRateLimited},
		{`{"message-count":"1","messages":[{"status":"4","error-text":"Bad Credentials"}]}`, false, reasonRejected},
		{`{"message-count":"1","messages":[{"status":"3","error-text":"Invalid Message"}]}`, false, reasonRejected},
		{`{"message-count":"2","messages":[{"status":"0","message-id":"a"},{"status":"15","error-text":"Illegal Sender Address - rejected"}]}`, false, reasonRejected},
		{`not json`, false, reasonRejected},
	}
	for _, tc := range cases {
		p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) { io.WriteString(w, tc.body) })
		c, _ := NewVonage(Options{Name: "sms"}, Vonage{BaseURL: p.URL, APIKey: "k", APISecret: "vn-secret", From: "ACME"})
		retry, err := c.Send(context.Background(), msg())
		var e *Error
		if !errors.As(err, &e) || retry != tc.retry || e.Reason != tc.reason || !errors.Is(err, ErrRejected) || e.Status != 200 {
			t.Errorf("%s: Send = %v, %v", tc.body, retry, err)
			continue
		}
		if strings.Contains(err.Error(), "vn-secret") {
			t.Errorf("error leaks the api secret: %v", err)
		}
	}
}

func TestClientRefOfLongKeyIsHashed(t *testing.T) {
	long := strings.Repeat("k", 101)
	if got := ClientRef(long); len(got) != 64 || got == long {
		t.Errorf("ClientRef(101 chars) = %q", got)
	}
	if got := ClientRef("short"); got != "short" {
		t.Errorf("ClientRef(short) = %q", got)
	}
}

func TestVonageJSONBody(t *testing.T) {
	p := newProvider(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
		io.WriteString(w, `{"message-count":"1","messages":[{"message-id":"X1","status":"0"}]}`)
	})
	c, _ := NewVonage(Options{Name: "sms"}, Vonage{BaseURL: p.URL, APIKey: "abcd1234", APISecret: "vn-secret", From: "ACME", JSON: true})
	if _, err := c.Send(context.Background(), msg()); err != nil {
		t.Fatal(err)
	}
	r := p.requests()[0]
	want := `{"api_key":"abcd1234","api_secret":"vn-secret","client-ref":"r1:42","from":"ACME","text":"Hello Anna","to":"4917612345689"}`
	if r.Path != "/sms/json" || r.Header.Get("Content-Type") != "application/json" || r.Body != want {
		t.Errorf("request %s %s\n got %s\nwant %s", r.Path, r.Header.Get("Content-Type"), r.Body, want)
	}
}
