package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestResolveReadsEnvAndFileLessOneTrailingNewline(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("SECRET_TEST_PLAIN", "from-env")
	t.Setenv("SECRET_TEST_NL", "from-env\n")
	for name, tc := range map[string]struct {
		s    Secret
		want string
	}{
		"env":               {Secret{Env: "SECRET_TEST_PLAIN"}, "from-env"},
		"env newline":       {Secret{Env: "SECRET_TEST_NL"}, "from-env"},
		"file":              {Secret{File: write("a", "pw")}, "pw"},
		"file newline":      {Secret{File: write("b", "pw\n")}, "pw"},
		"file crlf":         {Secret{File: write("c", "pw\r\n")}, "pw"},
		"only one newline":  {Secret{File: write("d", "pw\n\n")}, "pw\n"},
		"inner whitespace":  {Secret{File: write("e", " p w \n")}, " p w "},
		"programmatic only": {Value("v"), "v"},
	} {
		got, err := tc.s.Resolve()
		if err != nil || got != tc.want {
			t.Errorf("%s: Resolve() = %q, %v; want %q", name, got, err, tc.want)
		}
	}
}

func TestResolveFailsLoudlyNamingTheSourceNeverTheValue(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRET_TEST_EMPTY", "")
	for name, tc := range map[string]struct {
		s        Secret
		is       error
		mentions string
	}{
		"unset env":    {Secret{Env: "SECRET_TEST_NOT_SET_X"}, ErrEmpty, "SECRET_TEST_NOT_SET_X"},
		"empty env":    {Secret{Env: "SECRET_TEST_EMPTY"}, ErrEmpty, "SECRET_TEST_EMPTY"},
		"missing file": {Secret{File: filepath.Join(dir, "nope")}, os.ErrNotExist, filepath.Join(dir, "nope")},
		"empty file":   {Secret{File: empty}, ErrEmpty, empty},
		"no source":    {Secret{}, ErrEmpty, "no env or file"},
	} {
		_, err := tc.s.Resolve()
		if !errors.Is(err, tc.is) || !strings.Contains(fmt.Sprint(err), tc.mentions) {
			t.Errorf("%s: Resolve() error = %v; want %v naming %q", name, err, tc.is, tc.mentions)
		}
	}
}

func TestUnmarshalYAMLAcceptsOnlyEnvOrFile(t *testing.T) {
	for src, want := range map[string]error{
		"p: {env: A}":          nil,
		"p: {file: /run/x}":    nil,
		"p: hunter2":           ErrInline,
		`p: "hunter2"`:         ErrInline,
		"p: 4711":              ErrInline,
		"p: {env: A, file: B}": ErrSource,
		"p: {}":                ErrSource,
		"p: {env: A, x: B}":    ErrSource,
		"p: {env: [A]}":        ErrSource,
		"p: [A]":               ErrSource,
	} {
		var cfg struct{ P Secret }
		err := yaml.Unmarshal([]byte(src), &cfg)
		if !errors.Is(err, want) || (want == nil && cfg.P.IsZero()) {
			t.Errorf("%s: %v, want %v", src, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error repeats the value: %v", src, err)
		}
	}
}

// TestInlineSecretErrorNamesTheKey is what a config loader shows for an inline value:
// decode, then NameKey with the same document.
func TestInlineSecretErrorNamesTheKey(t *testing.T) {
	type auth struct {
		Bearer *Secret `yaml:"bearer"`
	}
	type channel struct {
		Type string `yaml:"type"`
		Auth auth   `yaml:"auth"`
	}
	var cfg struct {
		Channels map[string]channel `yaml:"channels"`
		Hooks    []channel          `yaml:"hooks"`
	}
	for src, want := range map[string]string{
		"channels:\n  sms:\n    type: webhook\n    auth:\n      bearer: hunter2\n": "line 5: channels.sms.auth.bearer: inline secret refused: secrets never live in config files; write {env: VAR} or {file: path}",
		"hooks:\n  - auth: {bearer: hunter2}\n":                                    "line 2: hooks[0].auth.bearer: inline secret refused: secrets never live in config files; write {env: VAR} or {file: path}",
	} {
		err := NameKey([]byte(src), yaml.Unmarshal([]byte(src), &cfg))
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant    %s", err, want)
		}
	}
	other := errors.New("line 1: something else")
	if NameKey([]byte("a: b"), other) != other {
		t.Error("NameKey changed an unrelated error")
	}
}

// TestSecretNeverReachesOutput: every way a config is dumped or logged shows "<secret>".
func TestSecretNeverReachesOutput(t *testing.T) {
	const v = "super-secret-value-4711"
	type cfg struct {
		User     string  `yaml:"user" json:"user"`
		Password Secret  `yaml:"password" json:"password"`
		Token    *Secret `yaml:"token" json:"token"`
	}
	tok := Value(v)
	c := cfg{User: "u", Password: Value(v), Token: &tok}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "cfg", c, "pw", c.Password)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", "cfg", c, "pw", c.Password)
	for name, out := range map[string]string{"yaml": string(y), "json": string(j), "slog": logs.String(),
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "%s": fmt.Sprintf("%s", c.Password)} {
		if strings.Contains(out, v) {
			t.Errorf("%s output leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, Mask) && !strings.Contains(out, `\u003csecret\u003e`) {
			t.Errorf("%s output has no %s mask: %s", name, Mask, out)
		}
	}
}
