package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secret is a credential named by an environment variable ({env: VAR}) or a file
// ({file: path}). The zero Secret names no source (IsZero). It prints and marshals as
// "<secret>"; Resolve reads the value.
type Secret struct {
	// Env is the environment variable holding the value.
	Env string
	// File is the file holding the value (e.g. a mounted Kubernetes secret).
	File string
	// value is set only by Value (tests, values resolved elsewhere), never from a config file.
	value string
}

// Mask is what a Secret prints and marshals as.
const Mask = "<secret>"

// Value returns a Secret holding v, for tests and programmatic configs. Config files cannot
// produce one: UnmarshalYAML refuses inline values.
func Value(v string) Secret { return Secret{value: v} }

// IsZero reports whether no source is set.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" && s.value == "" }

// Resolve returns the value: the environment variable's or the file's content, less one
// trailing newline ("\n" or "\r\n"). An unset or empty variable, an unreadable or empty file,
// or a Secret naming no source is an error naming the variable or file, never the value.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if v = trimNewline(v); !ok || v == "" {
			return "", fmt.Errorf("secret from env %s: %w", s.Env, ErrEmpty)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			// *fs.PathError: op, path and errno; a read error carries no content.
			return "", fmt.Errorf("secret from file: %w", err)
		}
		v := trimNewline(string(b))
		if v == "" {
			return "", fmt.Errorf("secret from file %s: %w", s.File, ErrEmpty)
		}
		return v, nil
	case s.value != "":
		return s.value, nil
	}
	return "", fmt.Errorf("secret: no env or file: %w", ErrEmpty)
}

// trimNewline removes one trailing "\n" or "\r\n": the newline editors and `echo` add to a
// secret file. Other whitespace is part of the value.
func trimNewline(v string) string {
	if strings.HasSuffix(v, "\n") {
		return strings.TrimSuffix(v[:len(v)-1], "\r")
	}
	return v
}

// String returns "<secret>".
func (s Secret) String() string { return Mask }

// GoString returns "<secret>".
func (s Secret) GoString() string { return Mask }

// LogValue returns "<secret>" (log/slog).
func (s Secret) LogValue() slog.Value { return slog.StringValue(Mask) }

// MarshalYAML returns "<secret>".
func (s Secret) MarshalYAML() (any, error) { return Mask, nil }

// MarshalJSON returns "<secret>".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Mask) }

// UnmarshalYAML accepts only {env: VAR} or {file: path}. A scalar (a value written into the
// config file) is an *InlineError; the value is not kept.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return &InlineError{Line: n.Line, Column: n.Column}
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: secret: %w", n.Line, ErrSource)
	}
	var src Secret
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: secret: %s is not a string: %w", v.Line, k.Value, ErrSource)
		}
		switch k.Value {
		case "env":
			src.Env = v.Value
		case "file":
			src.File = v.Value
		default:
			return fmt.Errorf("line %d: secret: unknown key %q: %w", k.Line, k.Value, ErrSource)
		}
	}
	if (src.Env == "") == (src.File == "") {
		return fmt.Errorf("line %d: secret: %w", n.Line, ErrSource)
	}
	*s = src
	return nil
}

// NameKey completes an *InlineError in err (from decoding the YAML document src) with the
// dotted path of the key whose value it is, so the message says which key to fix. Other errors,
// and documents it cannot parse, are returned unchanged.
func NameKey(src []byte, err error) error {
	var ie *InlineError
	if !errors.As(err, &ie) || ie.Key != "" {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(src, &root) != nil {
		return err
	}
	ie.Key = keyAt(&root, ie.Line, ie.Column, "")
	return err
}

// keyAt returns the dotted key path of the value node at line:col under n ("" if none).
func keyAt(n *yaml.Node, line, col int, path string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := keyAt(c, line, col, path); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if v.Line == line && v.Column == col {
				return p
			}
			if q := keyAt(v, line, col, p); q != "" {
				return q
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if c.Line == line && c.Column == col {
				return fmt.Sprintf("%s[%d]", path, i)
			}
			if q := keyAt(c, line, col, fmt.Sprintf("%s[%d]", path, i)); q != "" {
				return q
			}
		}
	}
	return ""
}
