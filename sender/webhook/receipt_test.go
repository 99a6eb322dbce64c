package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"notifier/state"
)

type recorded struct{ key, status, providerID, detail string }

type receiptStore struct {
	mu   sync.Mutex
	got  []recorded
	keys map[string]bool
}

func (s *receiptStore) RecordReceipt(_ context.Context, key, status, providerID, detail string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keys[key] {
		return state.ErrNotFound
	}
	s.got = append(s.got, recorded{key, status, providerID, detail})
	return nil
}

func TestReceiptHandler(t *testing.T) {
	const secret = "cb-secret"
	cases := []struct {
		name, method, target, ctype, body string
		header                            map[string]string
		code                              int
		want                              *recorded
	}{
		{"ours json", "POST", "/r", "application/json", `{"key":"k1","status":"delivered","provider_id":"p1"}`,
			map[string]string{"X-Notifier-Token": secret}, 204, &recorded{"k1", "delivered", "p1", ""}},
		{"twilio form", "POST", "/r?key=k1&token=" + secret, "application/x-www-form-urlencoded",
			"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003&To=%2B4917612345689", nil, 204,
			&recorded{"k1", "failed", "SM1", "30003"}},
		{"twilio intermediate", "POST", "/r?key=k1&token=" + secret, "application/x-www-form-urlencoded",
			"MessageSid=SM1&MessageStatus=sent", nil, 204, nil},
		{"vonage json", "POST", "/r?token=" + secret, "application/json",
			`{"msisdn":"4917612345689","to":"ACME","messageId":"0A01","status":"delivered","err-code":"0","client-ref":"k1"}`,
			nil, 204, &recorded{"k1", "delivered", "0A01", "delivered"}},
		{"vonage get", "GET", "/r?token=" + secret + "&messageId=0A02&status=expired&err-code=5&client-ref=k1", "", "",
			nil, 204, &recorded{"k1", "failed", "0A02", "expired err-code 5"}},
		{"bad token", "POST", "/r?token=nope", "application/json", `{"key":"k1","status":"delivered"}`, nil, 401, nil},
		{"no token", "POST", "/r", "application/json", `{"key":"k1","status":"delivered"}`, nil, 401, nil},
		{"unknown key", "POST", "/r?token=" + secret, "application/json", `{"key":"zz","status":"delivered"}`, nil, 404, nil},
		{"bad status", "POST", "/r?token=" + secret, "application/json", `{"key":"k1","status":"great"}`, nil, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &receiptStore{keys: map[string]bool{"k1": true}}
			h := ReceiptHandler(st, secret)
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("code %d (%s), want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.want == nil && len(st.got) != 0 || tc.want != nil && (len(st.got) != 1 || st.got[0] != *tc.want) {
				t.Errorf("recorded %+v, want %+v", st.got, tc.want)
			}
		})
	}
}

func TestReceiptKeyRoundTripsThroughTwilioCallback(t *testing.T) {
	// The StatusCallback NewTwilio sends carries the key; the handler reads it back.
	cb, err := withQuery("https://n.example/r?token=x", "key", "rule/a b:1")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cb)
	if u.Query().Get("key") != "rule/a b:1" || u.Query().Get("token") != "x" {
		t.Errorf("callback %s", cb)
	}
	_ = http.MethodPost
}
