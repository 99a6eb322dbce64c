package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"notifier/secret"
	"notifier/sender"
)

// Config is the service's configuration file (configs/notifier.yaml). It is decoded strictly:
// an unknown key, a wrong type or a secret written into the file is an error with its line.
// Secrets never live in the file: the database password comes from an environment variable
// (source.password_env, default NOTIFIER_DB_PASSWORD) or a file (source.password_file);
// channel credentials are secret.Secret values ({env: VAR} or {file: path}).
type Config struct {
	Source   SourceConfig                    `yaml:"source"`
	Store    StoreConfig                     `yaml:"store"`
	Rules    RulesConfig                     `yaml:"rules"`
	Channels map[string]sender.ChannelConfig `yaml:"channels"`
	Sender   SenderConfig                    `yaml:"sender"`
	Admin    AdminConfig                     `yaml:"admin"`
	Log      LogConfig                       `yaml:"log"`
	// Snapshot and Sweeps are described in snapshot.go (issue 7).
	Snapshot SnapshotConfig `yaml:"snapshot"`
	Sweeps   SweepsConfig   `yaml:"sweeps"`

	path string // the file it was read from, for messages and relative paths
}

// SourceConfig is the replica the binlog is read from.
type SourceConfig struct {
	Addr string `yaml:"addr"` // host:port of the replica
	User string `yaml:"user"`
	// PasswordEnv names the environment variable holding the password (default
	// NOTIFIER_DB_PASSWORD); PasswordFile, if set, wins (trailing newline trimmed).
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// Password exists only to refuse it with a clear message (and without repeating it).
	Password *refusedSecret `yaml:"password"`
	Flavor   string         `yaml:"flavor"`    // mariadb (default) | mysql
	ServerID uint32         `yaml:"server_id"` // unique among the source's replicas; required
	// Include and Exclude are "schema.table" patterns ('*' wildcard). Empty Include: the tables
	// the rules name.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// StoreConfig is the Badger store.
type StoreConfig struct {
	Dir           string        `yaml:"dir"`
	DedupeHorizon time.Duration `yaml:"dedupe_horizon"` // default 720h (30 days)
	SyncWrites    *bool         `yaml:"sync_writes"`    // default true
}

// RulesConfig is where the rule files are and how they are reloaded.
type RulesConfig struct {
	Dir string `yaml:"dir"`
	// ReloadInterval polls the directory for changes (0: only on SIGHUP). Default 30s.
	ReloadInterval *time.Duration `yaml:"reload_interval"`
	// DefaultTimezone and DefaultRegion are the rules' defaults (rules.Options).
	DefaultTimezone string `yaml:"default_timezone"`
	DefaultRegion   string `yaml:"default_region"`
	// DefaultMaxPerMinute is the blast-radius limit of rules without max_per_minute
	// (0: none). Default 1000.
	DefaultMaxPerMinute *int `yaml:"default_max_per_minute"`
}

// SenderConfig is the delivery loop.
type SenderConfig struct {
	Concurrency int `yaml:"concurrency"` // parallel sends over all channels (default 32)
	ClaimBatch  int `yaml:"claim_batch"` // messages claimed per store transaction (0: sender.DefaultClaimBatch)
	// ClaimAhead claims messages this long before their due time and holds them until it
	// (sender.Options.ClaimAhead; default 5s, 0s = off).
	ClaimAhead   *time.Duration `yaml:"claim_ahead"`
	MaxAhead     int            `yaml:"max_ahead"`     // most messages claimed ahead (0: sender.DefaultMaxAhead)
	DrainTimeout time.Duration  `yaml:"drain_timeout"` // how long a stop waits for in-flight sends (default 30s)
	// DigestInterval is how often closed digest windows are flushed (default 1s).
	DigestInterval time.Duration `yaml:"digest_interval"`
	// Receipts, when set, mounts the providers' delivery-status callbacks on the admin server.
	Receipts *ReceiptsConfig `yaml:"receipts"`
}

// ReceiptsConfig is POST /receipts on the admin server: delivery reports from the providers
// (our JSON, Twilio status callbacks, Vonage DLRs). It is not behind the admin token: every
// request must carry Secret in the X-Notifier-Token header or the token query parameter.
type ReceiptsConfig struct {
	Secret secret.Secret `yaml:"secret"` // {env: VAR} or {file: path}; required
}

// AdminConfig is the admin/metrics HTTP server.
type AdminConfig struct {
	Listen    string `yaml:"listen"`     // empty: no admin server
	TokenFile string `yaml:"token_file"` // bearer token for mutating endpoints
	TokenEnv  string `yaml:"token_env"`  // default NOTIFIER_ADMIN_TOKEN
}

// LogConfig is the structured log.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info (default) | warn | error
	Format string `yaml:"format"` // json (default) | text
}

// refusedSecret is a config key that must not hold a secret: decoding records where it was,
// never its value.
type refusedSecret struct{ Line int }

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *refusedSecret) UnmarshalYAML(n *yaml.Node) error {
	r.Line = n.Line
	return nil
}

// Defaults used when a field is absent.
const (
	defaultPasswordEnv  = "NOTIFIER_DB_PASSWORD"
	defaultAdminToken   = "NOTIFIER_ADMIN_TOKEN"
	defaultMaxPerMinute = 1000
	// defaultClaimAhead: long enough to hold a burst of 200k reminders due at one instant
	// before it (about 2 s of claims on a 2-core pod: BENCHMARKS.md).
	defaultClaimAhead = 5 * time.Second
)

// LoadConfig reads and validates a config file. Errors name the file and the line.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return ParseConfig(path, data)
}

var lineRE = regexp.MustCompile(`line (\d+): `)

// ParseConfig decodes data (read from path, used in messages and to resolve relative paths)
// strictly and validates it.
func ParseConfig(path string, data []byte) (*Config, error) {
	c := &Config{path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, configDecodeError(path, secret.NameKey(data, err))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// configDecodeError turns yaml.v3's "line N: msg" errors into "file:N: msg", one per line.
func configDecodeError(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			errs = append(errs, fmt.Errorf("%s", positioned(path, e)))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s", positioned(path, strings.TrimPrefix(err.Error(), "yaml: ")))
}

func positioned(path, msg string) string {
	if m := lineRE.FindStringSubmatchIndex(msg); m != nil {
		return path + ":" + msg[m[2]:m[3]] + ": " + msg[m[1]:]
	}
	return path + ": " + msg
}

func (c *Config) validate() error {
	var errs []error
	bad := func(line int, format string, args ...any) {
		loc := c.path
		if line > 0 {
			loc = fmt.Sprintf("%s:%d", c.path, line)
		}
		errs = append(errs, fmt.Errorf("%s: %s", loc, fmt.Sprintf(format, args...)))
	}
	s := &c.Source
	if s.Password != nil {
		bad(s.Password.Line, "source.password: the password is never written in the config file; use password_env (default %s) or password_file", defaultPasswordEnv)
	}
	if s.Addr == "" {
		bad(0, "source.addr is required (host:port of the replica)")
	}
	if s.User == "" {
		bad(0, "source.user is required")
	}
	if s.Flavor == "" {
		s.Flavor = "mariadb"
	}
	if s.Flavor != "mariadb" && s.Flavor != "mysql" {
		bad(0, "source.flavor %q: want mariadb or mysql", s.Flavor)
	}
	if s.ServerID == 0 {
		bad(0, "source.server_id is required: a number unique among the source's replicas, stable per instance")
	}
	if s.PasswordEnv == "" {
		s.PasswordEnv = defaultPasswordEnv
	}
	if c.Store.Dir == "" {
		bad(0, "store.dir is required")
	}
	if c.Store.DedupeHorizon == 0 {
		c.Store.DedupeHorizon = 30 * 24 * time.Hour
	}
	if c.Store.SyncWrites == nil {
		t := true
		c.Store.SyncWrites = &t
	}
	if c.Rules.Dir == "" {
		bad(0, "rules.dir is required")
	}
	if c.Rules.ReloadInterval == nil {
		d := 30 * time.Second
		c.Rules.ReloadInterval = &d
	}
	if c.Rules.DefaultMaxPerMinute == nil {
		n := defaultMaxPerMinute
		c.Rules.DefaultMaxPerMinute = &n
	}
	if len(c.Channels) == 0 {
		bad(0, "channels: at least one channel is required")
	}
	if c.Sender.Concurrency <= 0 {
		c.Sender.Concurrency = 32
	}
	if c.Sender.ClaimAhead == nil {
		d := defaultClaimAhead
		c.Sender.ClaimAhead = &d
	} else if *c.Sender.ClaimAhead < 0 {
		bad(0, "sender.claim_ahead: %s is negative (0s turns claiming ahead off)", *c.Sender.ClaimAhead)
	}
	if c.Sender.MaxAhead < 0 {
		bad(0, "sender.max_ahead: %d is negative", c.Sender.MaxAhead)
	}
	if c.Sender.DrainTimeout <= 0 {
		c.Sender.DrainTimeout = 30 * time.Second
	}
	if c.Sender.DigestInterval <= 0 {
		c.Sender.DigestInterval = time.Second
	}
	if c.Admin.TokenEnv == "" {
		c.Admin.TokenEnv = defaultAdminToken
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		bad(0, "log.level: %v", err)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "json"
	case "json", "text":
	default:
		bad(0, "log.format %q: want json or text", c.Log.Format)
	}
	c.Store.Dir = c.resolve(c.Store.Dir)
	c.Rules.Dir = c.resolve(c.Rules.Dir)
	if s.PasswordFile != "" {
		s.PasswordFile = c.resolve(s.PasswordFile)
	}
	if c.Admin.TokenFile != "" {
		c.Admin.TokenFile = c.resolve(c.Admin.TokenFile)
	}
	if r := c.Sender.Receipts; r != nil {
		if r.Secret.IsZero() {
			bad(0, "sender.receipts.secret: required ({env: VAR} or {file: path})")
		}
		if c.Admin.Listen == "" {
			bad(0, "sender.receipts: needs admin.listen (the callbacks are served by the admin server)")
		}
		r.Secret.File = c.resolve(r.Secret.File)
	}
	return errors.Join(errs...)
}

// resolve makes a relative path in the config relative to the config file's directory (as
// Prometheus does), so the service finds its rules wherever it is started from.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
}

// password returns the replica password from password_file or password_env. An empty value is
// allowed only when the variable is set to the empty string on purpose (a test server); an
// unset variable or unreadable file is an error that names the source, never the value.
func (s SourceConfig) password() (string, error) {
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("source.password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	v, ok := os.LookupEnv(s.PasswordEnv)
	if !ok {
		return "", fmt.Errorf("source password: environment variable %s is not set (set it, or use source.password_file)", s.PasswordEnv)
	}
	return v, nil
}

// token returns the admin bearer token ("" = none configured).
func (a AdminConfig) token() (string, error) {
	if a.TokenFile != "" {
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return "", fmt.Errorf("admin.token_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return os.Getenv(a.TokenEnv), nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger builds the service's slog logger.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}
