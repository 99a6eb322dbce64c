package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const minimalConfig = `source:
  addr: 127.0.0.1:3306
  user: notifier
  server_id: 7
store:
  dir: data
rules:
  dir: rules
channels:
  sms:
    type: stdout
`

func TestConfigDefaultsAndPathsRelativeToTheFile(t *testing.T) {
	c, err := ParseConfig("/etc/notifier/notifier.yaml", []byte(minimalConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Dir != "/etc/notifier/data" || c.Rules.Dir != "/etc/notifier/rules" {
		t.Errorf("paths: store %q rules %q, want them relative to the config file", c.Store.Dir, c.Rules.Dir)
	}
	if c.Source.Flavor != "mariadb" || c.Source.PasswordEnv != "NOTIFIER_DB_PASSWORD" || !*c.Store.SyncWrites ||
		c.Sender.DrainTimeout.String() != "30s" || *c.Rules.DefaultMaxPerMinute != 1000 || c.Log.Format != "json" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestConfigIsDecodedStrictlyWithLineNumbers(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown key", strings.Replace(minimalConfig, "  user: notifier\n", "  user: notifier\n  usr: x\n", 1),
			"cfg.yaml:4: field usr not found"},
		{"wrong type", strings.Replace(minimalConfig, "server_id: 7", "server_id: seven", 1),
			"cfg.yaml:4: cannot unmarshal"},
		{"password in the file", strings.Replace(minimalConfig, "  user: notifier\n", "  user: notifier\n  password: hunter2\n", 1),
			"cfg.yaml:4: source.password: the password is never written in the config file"},
		{"missing server id", strings.Replace(minimalConfig, "  server_id: 7\n", "", 1),
			"source.server_id is required"},
		{"bad channel field", strings.Replace(minimalConfig, "    type: stdout\n", "    type: stdout\n    colour: red\n", 1),
			"cfg.yaml:12: field colour not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("cfg.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error repeats the secret: %v", err)
			}
		})
	}
}

func TestThePasswordComesFromTheFileOrTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600))
	c, err := ParseConfig(filepath.Join(dir, "n.yaml"), []byte(strings.Replace(minimalConfig, "  server_id: 7\n", "  server_id: 7\n  password_file: pw\n", 1)))
	must(t, err)
	if pw, err := c.Source.password(); err != nil || pw != "s3cret" {
		t.Fatalf("password_file: %q, %v", pw, err)
	}
	c, err = ParseConfig("n.yaml", []byte(strings.Replace(minimalConfig, "  server_id: 7\n", "  server_id: 7\n  password_env: TEST_NOTIFIER_PW\n", 1)))
	must(t, err)
	if _, err := c.Source.password(); err == nil || !strings.Contains(err.Error(), "TEST_NOTIFIER_PW is not set") {
		t.Fatalf("unset variable: %v", err)
	}
	t.Setenv("TEST_NOTIFIER_PW", "from-env")
	if pw, err := c.Source.password(); err != nil || pw != "from-env" {
		t.Fatalf("password_env: %q, %v", pw, err)
	}
}

func TestTheShippedConfigsAndRulesAreValid(t *testing.T) {
	for _, cfg := range []string{"../../configs/notifier.yaml", "../../configs/demo.yaml"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"notifier", "rules", "check", "--channels-from", cfg, "../../configs/rules"}, &stdout, &stderr)
		if code != 0 {
			t.Errorf("rules check with %s: exit %d\n%s", cfg, code, stderr.String())
		}
	}
	// The demo's config is complete as shipped (the shipped service config needs its secrets:
	// TestConfigCheckAcceptsTheShippedConfig).
	var stdout, stderr bytes.Buffer
	if code := run([]string{"notifier", "config", "check", "--config", "../../configs/demo.yaml"}, &stdout, &stderr); code != 0 {
		t.Errorf("config check of configs/demo.yaml: exit %d\n%s", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"notifier", "rules", "test", "--fixtures", "../../configs/fixtures/rules_test.yaml", "../../configs/rules"}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), " passed, 0 failed") {
		t.Fatalf("rules test --fixtures: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

func TestRulesTestShowsTheRenderedMessageOfOneChange(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"notifier", "rules", "test", "--table", "lending.contracts", "--op", "update",
		"--old", `{"id":7,"status":"draft","amount":1500.00,"currency":"EUR","first_name":"Anna","phone":"0170 1234567"}`,
		"--new", `{"id":7,"status":"active","amount":1500.00,"currency":"EUR","first_name":"Anna","phone":"0170 1234567"}`,
		"../../configs/rules"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := "send contract-activated key=\"contract-activated:7\" channel=sms to=+49*******67\n" +
		"  text: Hallo Anna, Ihr Vertrag 7 über 1.500,00 € ist jetzt aktiv.\n"
	if !strings.HasPrefix(stdout.String(), want) {
		t.Fatalf("output:\n%s\nwant it to start with:\n%s", stdout.String(), want)
	}
}

func TestReceiptsConfigNeedsASecretSourceAndTheAdminServer(t *testing.T) {
	withReceipts := func(body string) string {
		return minimalConfig + "sender:\n  receipts:\n" + body + "admin:\n  listen: 127.0.0.1:0\n"
	}
	c, err := ParseConfig("/etc/notifier/n.yaml", []byte(withReceipts("    secret: {file: receipts.secret}\n")))
	must(t, err)
	if r := c.Sender.Receipts; r == nil || r.Secret.File != "/etc/notifier/receipts.secret" {
		t.Fatalf("sender.receipts = %+v, want the secret file relative to the config file", r)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"inline secret", withReceipts("    secret: hunter2\n"), "inline secret refused"},
		{"no secret", withReceipts("    {}\n"), "sender.receipts.secret: required"},
		{"no admin server", minimalConfig + "sender:\n  receipts:\n    secret: {env: X}\n", "sender.receipts: needs admin.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("cfg.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error repeats the secret: %v", err)
			}
		})
	}
}
