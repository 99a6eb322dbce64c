package sender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"notifier/secret"
	"notifier/state"
)

const channelsYAML = `
sms:
  type: twilio
  concurrency: 8
  rate_per_second: 20
  burst: 5
  rate_per_day: 100000
  per_recipient: {max: 3, per: 24h, excess: drop}
  timeout: 10s
  max_attempts: 5
  max_age: 6h
  backoff: {initial: 2s, max: 5m}
  quiet_hours: {start: "21:00", end: "08:00", timezone: Europe/Berlin}
  webhook:
    base_url: http://127.0.0.1:1
    account_sid: AC123
    auth_token: {env: TEST_TWILIO_TOKEN}
    from: "+15005550006"
hook:
  type: webhook
  idempotent: true
  tls: {ca_file: "", insecure_skip_verify: false}
  webhook:
    url: https://hooks.example/notify
    method: POST
    headers: {X-Source: notifier}
    body: '{"to": {{json .To}}, "text": {{json .Text}}}'
    auth: {hmac: {secret: {file: SECRET_FILE}, header: X-Sig}}
    id_path: data.id
mail:
  type: smtp
  smtp: {host: 127.0.0.1, port: 2525, tls: none, from: "n@example.com", helo: notifier}
audit:
  type: file
  file: {path: AUDIT_FILE}
`

func decodeChannels(t *testing.T, src string) map[string]ChannelConfig {
	t.Helper()
	var out map[string]ChannelConfig
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

func TestChannelConfigDecodesAndBuilds(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hmac")
	os.WriteFile(secretFile, []byte("hmac-secret-value\n"), 0o600)
	t.Setenv("TEST_TWILIO_TOKEN", "twilio-token-value")
	src := strings.NewReplacer("SECRET_FILE", secretFile, "AUDIT_FILE", filepath.Join(dir, "audit.jsonl")).Replace(channelsYAML)
	cfgs := decodeChannels(t, src)

	sms := cfgs["sms"]
	if sms.Type != TypeTwilio || sms.Concurrency != 8 || sms.RatePerSecond != 20 || sms.Burst != 5 || sms.RatePerDay != 100000 ||
		*sms.PerRecipient != (PerRecipient{Max: 3, Per: 24 * time.Hour, Excess: ExcessDrop}) || sms.Timeout != 10*time.Second ||
		sms.MaxAttempts != 5 || sms.MaxAge != 6*time.Hour || sms.Backoff != (Backoff{2 * time.Second, 5 * time.Minute}) ||
		sms.QuietHours.Timezone != "Europe/Berlin" || sms.Webhook.AuthToken.Env != "TEST_TWILIO_TOKEN" {
		t.Errorf("sms decoded as %+v", sms)
	}
	if h := cfgs["hook"]; !h.Idempotent || h.Webhook.Auth.HMAC.Secret.File != secretFile || h.Webhook.IDPath != "data.id" {
		t.Errorf("hook decoded as %+v", h)
	}
	rts, err := Build(cfgs, Deps{Logger: quietLog})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer func() {
		for _, rt := range rts {
			rt.Close()
		}
	}()
	if len(rts) != 4 || rts["mail"].Config().Concurrency != DefaultChannelConcurrency || rts["hook"].Config().Timeout != DefaultTimeout {
		t.Errorf("runtimes %v", rts)
	}
}

func TestChannelConfigErrorsAreAllReported(t *testing.T) {
	cfgs := map[string]ChannelConfig{
		"a": {Type: "pigeon"},
		"b": {Type: TypeWebhook},
		"c": {Type: TypeTwilio, Webhook: &WebhookConfig{AccountSID: "AC1", From: "+1", AuthToken: secret.Secret{Env: "TEST_UNSET_VAR_X"}}},
		"d": {Type: TypeWebhook, Webhook: &WebhookConfig{URL: "http://x"}, PerRecipient: &PerRecipient{Max: 1, Excess: "ignore"}},
		"e": {Type: TypeWebhook, Webhook: &WebhookConfig{URL: "http://x"}, QuietHours: &QuietHours{Start: "8", End: "9"}},
	}
	_, err := Build(cfgs, Deps{})
	if !errors.Is(err, ErrUnknownType) || !errors.Is(err, ErrConfig) || !errors.Is(err, secret.ErrEmpty) {
		t.Fatalf("Build: %v", err)
	}
	for _, name := range []string{`"a"`, `"b"`, `"c"`, `"d"`, `"e"`} {
		if !strings.Contains(err.Error(), "channel "+name) {
			t.Errorf("error does not name channel %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "TEST_UNSET_VAR_X") == false {
		t.Errorf("error should name the env var that is unset: %v", err)
	}
}

func TestSecretNeverPrintsOrMarshalsItsValue(t *testing.T) {
	const v = "super-secret-value"
	cfg := ChannelConfig{Type: TypeWebhook, Webhook: &WebhookConfig{URL: "http://x",
		Auth: &AuthConfig{Bearer: ptr(secret.Value(v)), Basic: &BasicAuth{Username: "u", Password: secret.Value(v)}}, APISecret: secret.Value(v)}}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"yaml": string(y), "json": string(j),
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", *cfg.Webhook), "%#v": fmt.Sprintf("%#v", *cfg.Webhook.Auth.Basic)} {
		if strings.Contains(out, v) {
			t.Errorf("%s output leaks the secret: %s", name, out)
		}
	}
	if !strings.Contains(string(y), "<secret>") {
		t.Errorf("yaml has no <secret> mask: %s", y)
	}
}

// TestInlineChannelSecretIsRefusedNamingTheKey: a credential written into the channels section
// is a decode error naming its key, and the value is not repeated.
func TestInlineChannelSecretIsRefusedNamingTheKey(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"sms:\n  type: twilio\n  webhook: {account_sid: AC1, auth_token: tw-4711}\n", "line 3: sms.webhook.auth_token: inline secret refused"},
		{"hook:\n  type: webhook\n  webhook:\n    auth:\n      basic: {username: u, password: pw-4711}\n", "line 5: hook.webhook.auth.basic.password: inline secret refused"},
		{"mail:\n  type: smtp\n  smtp:\n    password: pw-4711\n", "line 4: mail.smtp.password: inline secret refused"},
		{"bus:\n  type: nats\n  nats: {token: tok-4711}\n", "line 3: bus.nats.token: inline secret refused"},
	} {
		var out map[string]ChannelConfig
		dec := yaml.NewDecoder(strings.NewReader(tc.src))
		dec.KnownFields(true)
		err := secret.NameKey([]byte(tc.src), dec.Decode(&out))
		if !errors.Is(err, secret.ErrInline) || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "4711") {
			t.Errorf("decode error = %v\nwant prefix %q", err, tc.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestSecretsAndRecipientsNeverReachLogsOrStoredErrors runs a message through a provider that
// echoes the request (auth header included) into a 400 answer.
func TestSecretsAndRecipientsNeverReachLogsOrStoredErrors(t *testing.T) {
	const bearer = "bearer-secret-4711"
	const to = "+4917612345689"
	st := openStore(t, nil)
	prov := newLedger(t, time.Now, func(_ int, w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(400)
		fmt.Fprintf(w, "bad request from %v for to=%s (%s)", r.Header, to, strings.TrimPrefix(to, "+"))
		return false
	})
	t.Setenv("TEST_BEARER", bearer)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rts, err := Build(map[string]ChannelConfig{"hook": {Type: TypeWebhook, Webhook: &WebhookConfig{URL: prov.URL,
		Auth: &AuthConfig{Bearer: &secret.Secret{Env: "TEST_BEARER"}}}}}, Deps{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	m := messages(1, "hook", time.Now())[0]
	m.To = to
	insert(t, st, []*state.Message{m})
	s, _ := New(Options{Store: st, Channels: rts, Logger: logger})
	stop := run(t, s)
	waitFor(t, "dead", func() bool { return counts(t, st)[state.StatusDead] == 1 })
	stop()
	rec := get(t, st, m.Key)
	if strings.Contains(rec.LastError, bearer) || !strings.Contains(rec.LastError, "Bearer <secret>") {
		t.Errorf("stored error: %s", rec.LastError)
	}
	out := logs.String()
	if !strings.Contains(out, "message dead") {
		t.Fatalf("no log line for the dead message:\n%s", out)
	}
	for _, leak := range []string{bearer, to, strings.TrimPrefix(to, "+")} {
		if strings.Contains(out, leak) {
			t.Errorf("logs contain %q:\n%s", leak, out)
		}
	}
}

func TestRegistryPresetsResolveSecretsAndSend(t *testing.T) {
	var got []*http.Request
	prov := newLedger(t, time.Now, func(_ int, w http.ResponseWriter, r *http.Request) bool {
		got = append(got, r)
		if strings.HasPrefix(r.URL.Path, "/sms") {
			fmt.Fprint(w, `{"message-count":"1","messages":[{"message-id":"V1","status":"0"}]}`)
		} else {
			w.WriteHeader(201)
			fmt.Fprint(w, `{"sid":"SM1"}`)
		}
		return true
	})
	t.Setenv("TEST_TW_TOKEN", "tw-token-value")
	t.Setenv("TEST_VN_SECRET", "vn-secret-value")
	cfgs := decodeChannels(t, strings.ReplaceAll(`
tw:
  type: twilio
  webhook: {base_url: BASE, account_sid: AC9, auth_token: {env: TEST_TW_TOKEN}, from: "+15005550006"}
vn:
  type: vonage
  webhook: {base_url: BASE, api_key: k1, api_secret: {env: TEST_VN_SECRET}, from: ACME, format: json}
`, "BASE", prov.URL))
	rts, err := Build(cfgs, Deps{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tw", "vn"} {
		m := messages(1, name, time.Now())[0]
		if _, err := rts[name].Channel().Send(t.Context(), m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.ProviderID == "" {
			t.Errorf("%s: no provider id", name)
		}
	}
	if u, p, _ := got[0].BasicAuth(); got[0].URL.Path != "/2010-04-01/Accounts/AC9/Messages.json" || u != "AC9" || p != "tw-token-value" {
		t.Errorf("twilio request %s auth %s:%s", got[0].URL.Path, u, p)
	}
	if got[1].URL.Path != "/sms/json" || got[1].Header.Get("Content-Type") != "application/json" {
		t.Errorf("vonage request %s %s", got[1].URL.Path, got[1].Header.Get("Content-Type"))
	}
}
