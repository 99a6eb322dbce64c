package sender

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"notifier/render"
	"notifier/sender/jetstream"
	"notifier/sender/jsonl"
	"notifier/sender/smtp"
	"notifier/sender/webhook"
)

// Deps are what NewChannel hands to the transports.
type Deps struct {
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
	// HTTPClient replaces the client the HTTP types build (tests, proxies).
	HTTPClient *http.Client
}

// NewChannel builds the transport of one configured channel: it switches on cfg.Type, resolves
// the secrets and calls the channel package's constructor. Errors name the channel.
func NewChannel(name string, cfg ChannelConfig, deps Deps) (Channel, error) {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	var (
		ch  Channel
		err error
	)
	switch cfg.Type {
	case TypeWebhook, TypeHTTP, TypeTwilio, TypeVonage:
		ch, err = newHTTPChannel(name, cfg, deps)
	case TypeSMTP:
		if cfg.SMTP == nil {
			return nil, fmt.Errorf("channel %q: type smtp needs an smtp block: %w", name, ErrConfig)
		}
		c := *cfg.SMTP
		if c.Connections == 0 {
			c.Connections = withDefaults(cfg).Concurrency
		}
		ch, err = smtp.New(c, smtp.WithNow(deps.Now), smtp.WithLogger(deps.Logger.With("channel", name)))
	case TypeFile, TypeStdout:
		c := jsonl.Config{Path: "-"}
		if cfg.File != nil {
			c = *cfg.File
		}
		if cfg.Type == TypeStdout {
			c.Path = "-"
		}
		ch, err = jsonl.New(c, jsonl.WithNow(deps.Now), jsonl.WithMask(render.Mask))
	case TypeNATS:
		if cfg.NATS == nil {
			return nil, fmt.Errorf("channel %q: type nats needs a nats block: %w", name, ErrConfig)
		}
		ch, err = jetstream.New(*cfg.NATS, jetstream.WithLogger(deps.Logger.With("channel", name)))
	default:
		return nil, fmt.Errorf("channel %q: type %q (want webhook, http, twilio, vonage, smtp, nats, file or stdout): %w",
			name, cfg.Type, ErrUnknownType)
	}
	if err != nil {
		return nil, fmt.Errorf("channel %q: %w", name, err)
	}
	return ch, nil
}

// newHTTPChannel maps the webhook block (and the preset implied by the type) to package webhook.
func newHTTPChannel(name string, cfg ChannelConfig, deps Deps) (Channel, error) {
	w := cfg.Webhook
	if w == nil {
		return nil, fmt.Errorf("type %s needs a webhook block: %w", cfg.Type, ErrConfig)
	}
	preset := w.Preset
	if cfg.Type == TypeTwilio || cfg.Type == TypeVonage {
		preset = cfg.Type
	}
	o := webhook.Options{
		Name: name, URL: w.URL, Method: w.Method, Headers: w.Headers, Body: w.Body, Form: w.Form,
		IDPath: w.IDPath, Idempotent: cfg.Idempotent, CAFile: cfg.TLS.CAFile,
		InsecureSkipVerify: cfg.TLS.InsecureSkipVerify, Client: deps.HTTPClient, Now: deps.Now,
		// No Timeout: the sender bounds every attempt with the channel's timeout already.
	}
	if a := w.Auth; a != nil {
		var err error
		switch {
		case a.Bearer != nil:
			o.Bearer, err = a.Bearer.Resolve()
		case a.Basic != nil:
			o.BasicUser = a.Basic.Username
			o.BasicPassword, err = a.Basic.Password.Resolve()
		case a.HMAC != nil:
			o.HMACHeader, o.HMACPrefix = a.HMAC.Header, a.HMAC.Prefix
			o.HMACSecret, err = a.HMAC.Secret.Resolve()
		}
		if err != nil {
			return nil, fmt.Errorf("webhook auth: %w", err)
		}
	}
	switch preset {
	case "":
		return webhook.New(o)
	case TypeTwilio:
		tok, err := w.AuthToken.Resolve()
		if err != nil {
			return nil, fmt.Errorf("twilio auth_token: %w", err)
		}
		return webhook.NewTwilio(o, webhook.Twilio{BaseURL: w.BaseURL, AccountSID: w.AccountSID, AuthToken: tok,
			From: w.From, StatusCallback: w.StatusCallback})
	case TypeVonage:
		sec, err := w.APISecret.Resolve()
		if err != nil {
			return nil, fmt.Errorf("vonage api_secret: %w", err)
		}
		if w.Format != "" && w.Format != "form" && w.Format != "json" {
			return nil, fmt.Errorf("vonage format %q (want form or json): %w", w.Format, ErrConfig)
		}
		return webhook.NewVonage(o, webhook.Vonage{BaseURL: w.BaseURL, APIKey: w.APIKey, APISecret: sec,
			From: w.From, StatusCallback: w.StatusCallback, JSON: w.Format == "json"})
	}
	return nil, fmt.Errorf("webhook preset %q (want twilio or vonage): %w", preset, ErrConfig)
}

// Build makes the Runtime of every configured channel (NewChannel + NewRuntime). It returns
// all errors joined, and closes what it built if any failed.
func Build(cfgs map[string]ChannelConfig, deps Deps) (map[string]*Runtime, error) {
	names := make([]string, 0, len(cfgs))
	for n := range cfgs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]*Runtime, len(cfgs))
	var errs []error
	for _, n := range names {
		ch, err := NewChannel(n, cfgs[n], deps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rt, err := NewRuntime(n, cfgs[n], ch)
		if err != nil {
			errs = append(errs, err)
			closeChannel(ch)
			continue
		}
		out[n] = rt
	}
	if len(errs) > 0 {
		for _, rt := range out {
			rt.Close()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Close releases the transport's resources (open files, connections), if it holds any.
func (r *Runtime) Close() error {
	if err := closeChannel(r.channel); err != nil {
		return fmt.Errorf("channel %q: close: %w", r.name, err)
	}
	return nil
}

func closeChannel(ch Channel) error {
	if c, ok := ch.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
