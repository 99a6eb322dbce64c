package jetstream

import (
	"fmt"
	"strings"
	"time"

	"notifier/secret"
)

// Config is the YAML configuration of a nats (JetStream) channel.
type Config struct {
	// URL is the server list, comma-separated (default nats://127.0.0.1:4222). Put no
	// credentials in it: use User/Password, Token or Creds.
	URL string `yaml:"url" json:"url"`
	// Subject every message is published to; required. It must be bound to a stream.
	Subject string `yaml:"subject" json:"subject"`
	// Stream, when set, is the stream the publish must land in (checked by the server), and the
	// name CreateStream creates.
	Stream string `yaml:"stream" json:"stream"`
	// CreateStream creates the stream, or updates it to this config, on first use
	// (CreateOrUpdateStream): this config then owns the stream. Needs Stream.
	CreateStream bool `yaml:"create_stream" json:"create_stream"`
	// Duplicates is the stream's dedupe window for created streams (default 2h, at least 1h).
	Duplicates time.Duration `yaml:"duplicates" json:"duplicates"`
	// Storage of a created stream: file (default) or memory.
	Storage string `yaml:"storage" json:"storage"`
	// Replicas of a created stream (default 1).
	Replicas int `yaml:"replicas" json:"replicas"`
	// MaxAge of a created stream's messages (default unlimited); must not be below Duplicates.
	MaxAge time.Duration `yaml:"max_age" json:"max_age"`
	// Async publishes with PublishAsync: concurrent Sends share one pipeline of at most
	// MaxPending unacknowledged messages; each Send still waits for its own ack.
	Async bool `yaml:"async" json:"async"`
	// MaxPending bounds unacknowledged async publishes (default 256).
	MaxPending int `yaml:"max_pending" json:"max_pending"`
	// Timeout bounds one Send when ctx has no deadline (default 10s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// Name is the connection name shown by the server (default "notifier").
	Name string `yaml:"name" json:"name"`
	// User and Password, Token, or Creds (the content of a .creds file, usually {file: path})
	// authenticate; at most one kind.
	User     string        `yaml:"user" json:"user"`
	Password secret.Secret `yaml:"password" json:"password"`
	Token    secret.Secret `yaml:"token" json:"token"`
	Creds    secret.Secret `yaml:"creds" json:"creds"`
	// CAFile is a PEM bundle to trust for tls:// servers.
	CAFile string `yaml:"ca_file" json:"ca_file"`
}

// Defaults.
const (
	DefaultURL        = "nats://127.0.0.1:4222"
	DefaultDuplicates = 2 * time.Hour
	DefaultMaxPending = 256
	DefaultTimeout    = 10 * time.Second
	// MinDuplicates is the shortest dedupe window accepted for a created stream. The window
	// must outlast the longest gap between a publish whose ack was lost (crash, timeout,
	// broker restart) and its resend: the sender settles such a message and resends it on
	// restart or after its retry backoff, so the gap is the downtime of this service plus the
	// backoff (≤ 10m by default). One hour covers a restart, a rollout or a node move; raise
	// it if the service can stay down longer, or a late resend is stored twice.
	MinDuplicates = time.Hour
)

func (c *Config) validate() error {
	if c.Subject == "" || strings.ContainsAny(c.Subject, " \t\r\n*>") {
		return fmt.Errorf("%w: subject %q: a literal subject is required", ErrConfig, c.Subject)
	}
	if c.CreateStream && c.Stream == "" {
		return fmt.Errorf("%w: create_stream needs stream", ErrConfig)
	}
	if strings.ContainsAny(c.Stream, " \t\r\n.*>") {
		return fmt.Errorf("%w: stream %q", ErrConfig, c.Stream)
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.CreateStream && c.Duplicates < MinDuplicates {
		return fmt.Errorf("%w: duplicates %s is below %s, shorter than a crash-to-resend gap", ErrConfig, c.Duplicates, MinDuplicates)
	}
	if c.MaxAge != 0 && c.MaxAge < c.Duplicates {
		return fmt.Errorf("%w: max_age %s is below duplicates %s", ErrConfig, c.MaxAge, c.Duplicates)
	}
	switch strings.ToLower(c.Storage) {
	case "", "file", "memory":
	default:
		return fmt.Errorf("%w: storage %q: want file or memory", ErrConfig, c.Storage)
	}
	if c.Replicas < 0 || c.MaxPending < 0 || c.Timeout < 0 {
		return fmt.Errorf("%w: replicas, max_pending and timeout must not be negative", ErrConfig)
	}
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if strings.Contains(c.URL, "@") {
		return fmt.Errorf("%w: url: put credentials in user/password, token or creds, not in the URL", ErrConfig)
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Name == "" {
		c.Name = "notifier"
	}
	kinds := 0
	for _, set := range []bool{c.User != "" || !c.Password.IsZero(), !c.Token.IsZero(), !c.Creds.IsZero()} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return fmt.Errorf("%w: use one of user/password, token or creds", ErrConfig)
	}
	if (c.User == "") != c.Password.IsZero() {
		return fmt.Errorf("%w: user and password go together", ErrConfig)
	}
	return nil
}
