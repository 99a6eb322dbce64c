// Package jetstream is a channel that publishes each message to a NATS JetStream subject for a
// fleet of delivery workers, with the message key as the JetStream msg id.
//
// Guarantees: Send returns nil only after the stream acknowledged the message. Every attempt of
// a message carries the same msg id (Nats-Msg-Id = message key), so the stream stores it once
// within its duplicate window however often it is resent (after a timeout, a broker restart or
// a crash of this service); an ack flagged Duplicate counts as sent. The channel is therefore
// idempotent within that window: configure it so (idempotent: true) and keep the window longer
// than any crash-to-resend gap (MinDuplicates). A failure is classified (*Error): a timeout
// without an ack may have stored the message (NotSent false); a JetStream error answer, no
// stream, or no connection did not.
//
// Credentials never appear in errors or logs; the recipient is not logged.
package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"notifier/state"
)

// Payload is the JSON body of each published message.
type Payload struct {
	Key       string    `json:"key"`
	Rule      string    `json:"rule"`
	Channel   string    `json:"channel"`
	To        string    `json:"to"`
	Subject   string    `json:"subject,omitempty"`
	Text      string    `json:"text"`
	HTML      string    `json:"html,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Option changes a Channel built by New.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Channel publishes messages to one subject. It is safe for concurrent use.
type Channel struct {
	cfg Config
	log *slog.Logger
	nc  *nats.Conn
	js  jetstream.JetStream

	ensureMu sync.Mutex
	ensured  bool

	closeOnce sync.Once
	closed    chan struct{}
}

// New validates cfg, resolves credentials and connects. The connection retries in the
// background forever (also when the server is down at start), so New fails only on
// configuration errors; Sends fail with retry until the server is back.
func New(cfg Config, opts ...Option) (*Channel, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	log := o.logger.With("channel_type", "nats", "subject", cfg.Subject)
	nopts := []nats.Option{
		nats.Name(cfg.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.Timeout(cfg.Timeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on Close
				log.Warn("nats: disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats: reconnected") }),
	}
	auth, err := credentials(&cfg)
	if err != nil {
		return nil, err
	}
	nopts = append(nopts, auth...)
	if cfg.CAFile != "" {
		nopts = append(nopts, nats.RootCAs(cfg.CAFile))
	}
	nc, err := nats.Connect(cfg.URL, nopts...)
	if err != nil {
		// With RetryOnFailedConnect only option errors come here (e.g. an unreadable CA file).
		return nil, fmt.Errorf("%w: connect: %w", ErrConfig, err)
	}
	jsopts := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		// Forget an async publish that got no ack by then, so a lost ack cannot pin the window.
		jetstream.WithPublishAsyncTimeout(cfg.Timeout),
	}
	js, err := jetstream.New(nc, jsopts...)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: jetstream: %w", ErrConfig, err)
	}
	return &Channel{cfg: cfg, log: log, nc: nc, js: js, closed: make(chan struct{})}, nil
}

// credentials turns the configured secret into connect options.
func credentials(cfg *Config) ([]nats.Option, error) {
	switch {
	case cfg.User != "":
		pw, err := cfg.Password.Resolve()
		if err != nil {
			return nil, fmt.Errorf("%w: password: %w", ErrConfig, err)
		}
		return []nats.Option{nats.UserInfo(cfg.User, pw)}, nil
	case !cfg.Token.IsZero():
		tok, err := cfg.Token.Resolve()
		if err != nil {
			return nil, fmt.Errorf("%w: token: %w", ErrConfig, err)
		}
		return []nats.Option{nats.Token(tok)}, nil
	case !cfg.Creds.IsZero():
		creds, err := cfg.Creds.Resolve()
		if err != nil {
			return nil, fmt.Errorf("%w: creds: %w", ErrConfig, err)
		}
		jwt, err := nkeys.ParseDecoratedJWT([]byte(creds))
		if err != nil || jwt == "" || jwt == creds {
			return nil, fmt.Errorf("%w: creds: no user JWT found", ErrConfig)
		}
		kp, err := nkeys.ParseDecoratedUserNKey([]byte(creds))
		if err != nil {
			return nil, fmt.Errorf("%w: creds: no user nkey seed found", ErrConfig) // never the content
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("%w: creds: no user nkey seed found", ErrConfig)
		}
		return []nats.Option{nats.UserJWTAndSeed(jwt, string(seed))}, nil
	}
	return nil, nil
}

// Send publishes m with its key as msg id and waits for the stream's ack. On success
// m.ProviderID is "<stream>:<sequence>".
func (c *Channel) Send(ctx context.Context, m *state.Message) (retry bool, err error) {
	fail := func(reason string, sent bool, err error) (bool, error) {
		return reason != ReasonTemplate, &Error{Subject: c.cfg.Subject, Key: m.Key, Reason: reason, Sent: sent, Err: err}
	}
	select {
	case <-c.closed:
		return fail(ReasonShutdown, false, ErrClosed)
	default:
	}
	if m.Key == "" {
		return fail(ReasonTemplate, false, errors.New("empty message key (it is the msg id)"))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.cfg.Timeout, errors.New("jetstream publish timeout"))
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return fail(ReasonTimeout, false, context.Cause(ctx))
	}
	if err := c.ensureStream(ctx); err != nil {
		return fail(classify(ctx, err))
	}
	data, err := json.Marshal(Payload{Key: m.Key, Rule: m.Rule, Channel: m.Channel, To: m.To,
		Subject: m.Subject, Text: m.Text, HTML: m.HTML, CreatedAt: m.CreatedAt})
	if err != nil {
		return fail(ReasonTemplate, false, fmt.Errorf("encode: %w", err))
	}
	if int64(len(data)) > c.nc.MaxPayload() && c.nc.MaxPayload() > 0 {
		return fail(ReasonTemplate, false, fmt.Errorf("%d bytes: %w", len(data), nats.ErrMaxPayload))
	}
	pubOpts := []jetstream.PublishOpt{jetstream.WithMsgID(m.Key)}
	if c.cfg.Stream != "" {
		pubOpts = append(pubOpts, jetstream.WithExpectStream(c.cfg.Stream))
	}
	var ack *jetstream.PubAck
	if c.cfg.Async {
		ack, err = c.publishAsync(ctx, data, pubOpts)
	} else {
		ack, err = c.js.Publish(ctx, c.cfg.Subject, data, pubOpts...)
	}
	if err != nil {
		return fail(classify(ctx, err))
	}
	m.ProviderID = fmt.Sprintf("%s:%d", ack.Stream, ack.Sequence)
	if ack.Duplicate {
		c.log.Debug("nats: duplicate ack; already in the stream", "key", m.Key, "stream", ack.Stream, "seq", ack.Sequence)
	}
	return false, nil
}

// publishAsync publishes through the shared async pipeline and waits for this message's ack.
func (c *Channel) publishAsync(ctx context.Context, data []byte, opts []jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if d, ok := ctx.Deadline(); ok {
		// How long to wait for room in a full window (at most MaxPending in flight).
		if wait := time.Until(d); wait > 0 {
			opts = append(opts, jetstream.WithStallWait(wait))
		}
	}
	f, err := c.js.PublishMsgAsync(&nats.Msg{Subject: c.cfg.Subject, Data: data}, opts...)
	if err != nil {
		return nil, err
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// ensureStream, on first use, creates or updates the stream when configured to, or else checks
// the named stream's duplicate window and warns when it is shorter than MinDuplicates (a resend
// after a longer gap would be stored twice). A failed check is retried on the next Send and
// does not stop sending.
func (c *Channel) ensureStream(ctx context.Context) error {
	if c.cfg.Stream == "" {
		return nil
	}
	c.ensureMu.Lock()
	defer c.ensureMu.Unlock()
	if c.ensured {
		return nil
	}
	if !c.cfg.CreateStream {
		st, err := c.js.Stream(ctx, c.cfg.Stream)
		if err != nil {
			c.log.Debug("nats: cannot check the stream's duplicate window yet", "stream", c.cfg.Stream, "error", err)
			return nil
		}
		if d := st.CachedInfo().Config.Duplicates; d < MinDuplicates {
			c.log.Warn("nats: stream duplicate window is shorter than a crash-to-resend gap; a late resend may be stored twice",
				"stream", c.cfg.Stream, "duplicates", d, "want_at_least", MinDuplicates)
		}
		c.ensured = true
		return nil
	}
	sc := jetstream.StreamConfig{
		Name: c.cfg.Stream, Subjects: []string{c.cfg.Subject}, Duplicates: c.cfg.Duplicates,
		Storage: jetstream.FileStorage, Replicas: max(c.cfg.Replicas, 1), MaxAge: c.cfg.MaxAge,
	}
	if strings.EqualFold(c.cfg.Storage, "memory") {
		sc.Storage = jetstream.MemoryStorage
	}
	if _, err := c.js.CreateOrUpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("create or update stream %q: %w", c.cfg.Stream, err)
	}
	c.ensured = true
	c.log.Info("nats: stream ready", "stream", c.cfg.Stream, "duplicates", c.cfg.Duplicates)
	return nil
}

// classify maps a publish error to a reason and whether the message may be stored.
func classify(ctx context.Context, err error) (reason string, sent bool, _ error) {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr):
		return ReasonServer, false, err // JetStream answered: not stored
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return ReasonServer, false, err
	case errors.Is(err, nats.ErrMaxPayload):
		return ReasonTemplate, false, err
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return ReasonTimeout, false, err // never handed to the connection
	case errors.Is(err, nats.ErrInvalidConnection), errors.Is(err, nats.ErrReconnectBufExceeded):
		// Refused by the client before writing (a full reconnect buffer while disconnected).
		// Not nats.ErrConnectionClosed: Close during the wait for an ack also returns it.
		return ReasonConnection, false, err
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		// Written (or buffered for the reconnect) without an ack: the stream may have it.
		return ReasonTimeout, true, err
	}
	// E.g. nats.ErrDisconnected failing a pending async publish: it was written, and may be
	// stored or still buffered for the reconnect.
	return ReasonConnection, true, err
}

// Close drains nothing (every Send has its own result) and closes the connection. Idempotent.
func (c *Channel) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.nc.Close()
	})
	return nil
}
