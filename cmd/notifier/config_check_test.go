package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// configCheckEnv sets the variables the testdata/config files name: the database password and
// a channel token are set, TEST_CONFIG_CHECK_UNSET is not. It returns the values that must
// never be printed.
func configCheckEnv(t *testing.T) []string {
	t.Helper()
	t.Setenv("TEST_CONFIG_CHECK_DB_PASSWORD", "db-pw-hunter2")
	t.Setenv("TEST_CONFIG_CHECK_TOKEN", "token-hunter2")
	t.Setenv("TEST_CONFIG_CHECK_UNSET", "") // restored after the test
	must(t, os.Unsetenv("TEST_CONFIG_CHECK_UNSET"))
	return []string{"hunter2"}
}

// runConfigCheck runs `notifier config check --config path` and returns the exit code and output.
func runConfigCheck(t *testing.T, path string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run([]string{"notifier", "config", "check", "--config", path}, &out, &errOut)
	return code, out.String(), errOut.String()
}

// The shipped configs/notifier.yaml checks ok once its secrets and its store's volume exist
// (here: in a temp dir), and neither the password nor the credentials are printed.
func TestConfigCheckAcceptsTheShippedConfig(t *testing.T) {
	src, err := os.ReadFile("../../configs/notifier.yaml")
	must(t, err)
	dir := t.TempDir()
	rulesDir, err := filepath.Abs("../../configs/rules")
	must(t, err)
	smtpPassword := filepath.Join(dir, "smtp-password")
	must(t, os.WriteFile(smtpPassword, []byte("smtp-pw-hunter2\n"), 0o600))
	cfg := string(src)
	for _, r := range [][2]string{
		{"/run/secrets/smtp-password", smtpPassword},
		{"/var/lib/notifier", filepath.Join(dir, "store")},
		{"dir: rules ", "dir: " + rulesDir + " "},
	} {
		if strings.Count(cfg, r[0]) != 1 {
			t.Fatalf("configs/notifier.yaml no longer has %q once: update the test", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	path := filepath.Join(dir, "notifier.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o644))
	t.Setenv("NOTIFIER_DB_PASSWORD", "db-pw-hunter2")
	t.Setenv("NOTIFIER_SMS_TOKEN", "sms-token-hunter2")

	code, stdout, stderr := runConfigCheck(t, path)
	want := regexp.MustCompile(`^ok: ` + regexp.QuoteMeta(path) +
		`: 2 channels \(email, sms\), \d+ rules, \d+ sweeps in \d+ files \(hash [0-9a-f]{12}\)\n$`)
	if code != 0 || !want.MatchString(stdout) || stderr != "" {
		t.Fatalf("exit %d\nstdout: %q\nstderr: %q\nwant exit 0 and stdout matching %s", code, stdout, stderr, want)
	}
	if strings.Contains(stdout+stderr, "hunter2") {
		t.Fatalf("a secret value was printed:\n%s%s", stdout, stderr)
	}
}

// Each testdata/config/*.bad.yaml is refused with exit 2 and exactly the problems its
// "# error: " header lines list, one line each, positioned where the loader knows the
// position; no secret value appears in the output.
func TestConfigCheckReportsEveryProblem(t *testing.T) {
	secrets := configCheckEnv(t)
	files, err := filepath.Glob("testdata/config/*.bad.yaml")
	must(t, err)
	if len(files) < 4 {
		t.Fatalf("testdata/config has %d bad files, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			must(t, err)
			var want []string
			for line := range strings.Lines(string(src)) {
				if msg, ok := strings.CutPrefix(line, "# error: "); ok {
					want = append(want, msg)
				}
			}
			code, stdout, stderr := runConfigCheck(t, f)
			if code != 2 || stdout != "" || stderr != strings.Join(want, "") {
				t.Errorf("exit %d\nstdout: %q\nstderr:\n%s\nwant exit 2, no stdout, stderr:\n%s", code, stdout, stderr, strings.Join(want, ""))
			}
			for _, s := range secrets {
				if strings.Contains(stdout+stderr, s) {
					t.Errorf("the output repeats a secret value (%q):\n%s", s, stderr)
				}
			}
		})
	}
}
