package jetstream

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secret is a credential named by an environment variable ({env: VAR}) or a file
// ({file: path}, read by Resolve and trimmed of trailing newlines). It prints and marshals as
// "<secret>", so a config dump, log line or error never shows it.
//
// It mirrors sender.Secret, which this package cannot import (sender imports it); the sender
// converts with SecretValue(resolved value).
type Secret struct {
	Env   string
	File  string
	value string
}

const secretMask = "<secret>"

// SecretValue returns a Secret holding a literal value (resolved by the caller, or tests).
func SecretValue(v string) Secret { return Secret{value: v} }

// IsZero reports whether no source is set.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" && s.value == "" }

// Resolve returns the value. An unset variable, an unreadable file or an empty value is an
// error that names the source, never the value.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("secret from env %s: %w", s.Env, ErrSecretEmpty)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("secret from file %s: %w", s.File, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret from file %s: %w", s.File, ErrSecretEmpty)
		}
		return v, nil
	case s.value != "":
		return s.value, nil
	}
	return "", ErrSecretEmpty
}

// String returns "<secret>".
func (s Secret) String() string { return secretMask }

// GoString returns "<secret>".
func (s Secret) GoString() string { return secretMask }

// MarshalYAML returns "<secret>".
func (s Secret) MarshalYAML() (any, error) { return secretMask, nil }

// MarshalJSON returns "<secret>".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(secretMask) }

// UnmarshalYAML accepts only {env: VAR} or {file: path}: a password inline in a config file is
// refused.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return fmt.Errorf("line %d: secret: inline value refused: %w", n.Line, ErrSecretSource)
	}
	var src struct {
		Env  string `yaml:"env"`
		File string `yaml:"file"`
	}
	if err := n.Decode(&src); err != nil {
		return err
	}
	if (src.Env == "") == (src.File == "") {
		return fmt.Errorf("line %d: secret: %w", n.Line, ErrSecretSource)
	}
	*s = Secret{Env: src.Env, File: src.File}
	return nil
}
