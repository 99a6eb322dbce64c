package secret

import (
	"errors"
	"fmt"
)

// Sentinel errors of package secret.
var (
	// ErrInline: a config file wrote the secret's value instead of naming where it lives.
	ErrInline = errors.New("inline secret refused: secrets never live in config files; write {env: VAR} or {file: path}")
	// ErrSource: a secret must name exactly one of env or file.
	ErrSource = errors.New("secret needs exactly one of env or file")
	// ErrEmpty: a secret's variable is unset or empty, its file is empty, or it names no source.
	ErrEmpty = errors.New("secret is unset or empty")
)

// InlineError is the error of a YAML scalar decoded into a Secret. Line and Column locate the
// value; Key is the dotted path of its key ("channels.sms.webhook.auth.bearer") once NameKey
// found it. The value itself is never kept.
type InlineError struct {
	Line, Column int
	Key          string
}

// Error returns "line N: KEY: inline secret refused: ..." (yaml.v3's "line N: " prefix, so
// config loaders position it like any decode error).
func (e *InlineError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("line %d: column %d: %v", e.Line, e.Column, ErrInline)
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, e.Key, ErrInline)
}

// Unwrap returns ErrInline.
func (e *InlineError) Unwrap() error { return ErrInline }
