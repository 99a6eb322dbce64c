package sender

import (
	"time"

	"notifier/secret"
	"notifier/sender/jetstream"
	"notifier/sender/jsonl"
	"notifier/sender/smtp"
)

// The channel types NewChannel knows.
const (
	TypeWebhook = "webhook" // generic HTTP; "http" is an alias
	TypeHTTP    = "http"
	TypeTwilio  = "twilio" // webhook with the Twilio preset
	TypeVonage  = "vonage" // webhook with the Vonage (Nexmo) SMS API preset
	TypeSMTP    = "smtp"   // e-mail
	TypeNATS    = "nats"   // NATS JetStream publish, message key as the dedupe id
	TypeFile    = "file"   // JSON lines appended to a file ("-" = stdout)
	TypeStdout  = "stdout" // JSON lines on stdout
)

// ChannelConfig is one entry of the `channels:` section of the config file. The common fields
// are the delivery policy the sender applies; the per-type blocks configure the transport.
// Durations are YAML strings ("30s", "24h").
type ChannelConfig struct {
	// Type selects the transport: webhook|http|twilio|vonage|smtp|nats|file|stdout.
	Type string `yaml:"type" json:"type"`

	// Idempotent declares that the provider deduplicates by the message key (an Idempotency-Key
	// header, a client reference it checks, a broker dedupe id). When false (the default), a
	// timeout or broken connection after the request was written makes the message uncertain
	// instead of retrying it, and a crash while sending does the same (DESIGN.md invariant 3).
	Idempotent bool `yaml:"idempotent" json:"idempotent"`
	// Concurrency caps parallel sends on this channel (default 16).
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// RatePerSecond is the token bucket's refill rate; 0 = unlimited.
	RatePerSecond float64 `yaml:"rate_per_second" json:"rate_per_second"`
	// Burst is the token bucket's size (default max(1, ceil(rate_per_second))).
	Burst int `yaml:"burst" json:"burst"`
	// RatePerDay caps sends per calendar day in the channel's time zone; 0 = unlimited. Excess
	// messages are deferred to the next day.
	RatePerDay int `yaml:"rate_per_day" json:"rate_per_day"`
	// PerRecipient caps messages to one recipient per window.
	PerRecipient *PerRecipient `yaml:"per_recipient,omitempty" json:"per_recipient,omitempty"`
	// Timeout bounds one attempt (default 30s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// MaxAttempts: after this many failed attempts the message is dead (default 10).
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// MaxAge: a message created longer ago than this is dead instead of retried (default 24h).
	MaxAge time.Duration `yaml:"max_age" json:"max_age"`
	// Backoff spaces retries: initial·2^(attempt-1), capped at max, with ±20% jitter.
	Backoff Backoff `yaml:"backoff" json:"backoff"`
	// QuietHours: a message due inside the window is deferred to its end.
	QuietHours *QuietHours `yaml:"quiet_hours,omitempty" json:"quiet_hours,omitempty"`
	// Timezone of rate_per_day and quiet_hours when they name none (default UTC).
	Timezone string `yaml:"timezone" json:"timezone"`

	// TLS for the HTTP types (smtp and nats carry their own TLS fields).
	TLS TLSConfig `yaml:"tls" json:"tls"`
	// Webhook configures webhook/http/twilio/vonage.
	Webhook *WebhookConfig `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	// SMTP configures smtp; the fields are package smtp's (host, port, tls: starttls|tls|none,
	// username, password: {env|file}, from, helo, ca_file, …).
	SMTP *smtp.Config `yaml:"smtp,omitempty" json:"smtp,omitempty"`
	// NATS configures nats; the fields are package jetstream's (url, subject, stream, creds:
	// {file: path}, async, …). Set idempotent: true for it: the broker dedupes by message key.
	NATS *jetstream.Config `yaml:"nats,omitempty" json:"nats,omitempty"`
	// File configures file and stdout; the fields are package jsonl's (path ("-" = stdout),
	// sync, mask).
	File *jsonl.Config `yaml:"file,omitempty" json:"file,omitempty"`
}

// PerRecipient caps messages to one recipient: at most Max per Per; the excess is held
// (deferred to the next window) or dropped (cancelled with reason recipient_cap).
type PerRecipient struct {
	Max    int           `yaml:"max" json:"max"`
	Per    time.Duration `yaml:"per" json:"per"`       // default 24h
	Excess string        `yaml:"excess" json:"excess"` // hold (default) | drop
}

// The per_recipient excess policies.
const (
	ExcessHold = "hold"
	ExcessDrop = "drop"
)

// Backoff is the retry spacing.
type Backoff struct {
	Initial time.Duration `yaml:"initial" json:"initial"` // default 5s
	Max     time.Duration `yaml:"max" json:"max"`         // default 10m
}

// QuietHours is a daily window in which nothing is sent, e.g. start "21:00", end "08:00"
// (crossing midnight). Times are wall-clock times in Timezone, so the window follows DST.
type QuietHours struct {
	Start    string `yaml:"start" json:"start"`       // "HH:MM"
	End      string `yaml:"end" json:"end"`           // "HH:MM"
	Timezone string `yaml:"timezone" json:"timezone"` // IANA name; default the channel's
}

// TLSConfig configures the client side of TLS.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file" json:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
}

// WebhookConfig configures an HTTP channel. URL, header values, Body and Form values are Go
// text/templates over the message (fields .Key .Rule .Channel .To .Text .Subject .HTML, and
// .Data, the decoded template data); a missing key is an error (reason template).
// Without Body and Form the request body is the JSON {key, rule, channel, to, text, subject?,
// html?}. Every request carries the header Idempotency-Key: <message key>.
type WebhookConfig struct {
	Preset  string            `yaml:"preset" json:"preset"` // "" | twilio | vonage (implied by type)
	URL     string            `yaml:"url" json:"url"`
	Method  string            `yaml:"method" json:"method"` // default POST
	Headers map[string]string `yaml:"headers" json:"headers"`
	Body    string            `yaml:"body" json:"body"` // JSON body template
	Form    map[string]string `yaml:"form" json:"form"` // form body templates (instead of Body)
	Auth    *AuthConfig       `yaml:"auth,omitempty" json:"auth,omitempty"`
	// IDPath is the dotted path of the provider's message id in a JSON answer, e.g.
	// "messages.0.message-id"; empty = don't extract.
	IDPath string `yaml:"id_path" json:"id_path"`

	// Preset fields. BaseURL replaces the provider's API origin (tests, regional endpoints).
	BaseURL    string        `yaml:"base_url" json:"base_url"`
	From       string        `yaml:"from" json:"from"`               // sender number or name
	AccountSID string        `yaml:"account_sid" json:"account_sid"` // twilio
	AuthToken  secret.Secret `yaml:"auth_token" json:"auth_token"`   // twilio
	APIKey     string        `yaml:"api_key" json:"api_key"`         // vonage
	APISecret  secret.Secret `yaml:"api_secret" json:"api_secret"`   // vonage
	Format     string        `yaml:"format" json:"format"`           // vonage: form (default) | json
	// StatusCallback is sent to the provider as the delivery-receipt URL (twilio
	// StatusCallback, vonage callback), usually this service's ReceiptHandler.
	StatusCallback string `yaml:"status_callback" json:"status_callback"`
}

// AuthConfig is one of bearer, basic or hmac.
type AuthConfig struct {
	Bearer *secret.Secret `yaml:"bearer,omitempty" json:"bearer,omitempty"`
	Basic  *BasicAuth     `yaml:"basic,omitempty" json:"basic,omitempty"`
	HMAC   *HMACConfig    `yaml:"hmac,omitempty" json:"hmac,omitempty"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string        `yaml:"username" json:"username"`
	Password secret.Secret `yaml:"password" json:"password"`
}

// HMACConfig signs the request body: Header = Prefix + hex(HMAC-SHA256(secret, body)).
type HMACConfig struct {
	Secret secret.Secret `yaml:"secret" json:"secret"`
	Header string        `yaml:"header" json:"header"` // default X-Signature-256
	Prefix string        `yaml:"prefix" json:"prefix"` // default "sha256="
}
