// Package smtp is the e-mail channel: it submits each message to one SMTP server (STARTTLS,
// implicit TLS or plain; AUTH PLAIN or LOGIN) as a text/plain or multipart/alternative
// text+HTML message.
//
// Guarantees:
//   - Send returns nil only after the server answered 250 to the end of the message data.
//   - Every attempt of a message carries the same Message-ID, derived from the message key
//     (MessageID), so a provider or mailbox that deduplicates by Message-ID drops a resend.
//   - A failure is classified (*Error): an SMTP 4xx reply or a connection failure is retried; a
//     5xx reply to MAIL, RCPT or DATA is final (dead, with the reply text); a failure while
//     connecting (dial, TLS, greeting, AUTH, even a 535) concerns the channel, not the message,
//     and is retried; an invalid To is final without connecting; a timeout or broken
//     connection after the end of data was written, without a reply, wraps ErrUncertain and
//     reports NotSent()=false, so the sender makes the message uncertain on a non-idempotent
//     channel. Everything before that point reports NotSent()=true.
//   - The password is never part of an error or a log line; recipients are not logged, and a
//     server reply that quotes the recipient is masked (render.Mask) in the error.
//
// Connections are reused: Config.Connections are kept open (one per concurrency slot), RSET
// before each reuse, NOOP when idle longer than Config.IdleCheck, redialled after any failure.
package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"notifier/render"
	"notifier/state"
)

// Option changes a Channel built by New.
type Option func(*options)

type options struct {
	now    func() time.Time
	logger *slog.Logger
	dialer *net.Dialer
}

// WithNow sets the clock for the Date header and idle tracking (default time.Now).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger (default slog.Default()). Recipients are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Channel sends e-mail through one SMTP server. It is safe for concurrent use; at most
// Config.Connections Sends run at once, the others wait for a connection (or their ctx).
type Channel struct {
	s      *settings
	now    func() time.Time
	log    *slog.Logger
	dialer *net.Dialer

	slots chan struct{} // one token per connection slot: at most Connections Sends at once
	mu    sync.Mutex
	idle  []*conn // open connections not in use, most recently used last (reused first)
	done  chan struct{}
	once  sync.Once
}

// conn is one open, greeted (and authenticated) connection.
type conn struct {
	c        *gosmtp.Client
	raw      net.Conn // the TCP connection under any TLS, closed to interrupt a blocked call
	lastUsed time.Time
}

// New validates cfg, resolves the password and returns a Channel. It does not connect: the
// first Send of each slot dials.
func New(cfg Config, opts ...Option) (*Channel, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	o := options{now: time.Now, logger: slog.Default(), dialer: &net.Dialer{}}
	for _, opt := range opts {
		opt(&o)
	}
	ch := &Channel{s: s, now: o.now, log: o.logger.With("channel_type", "smtp", "server", s.addr),
		dialer: o.dialer, slots: make(chan struct{}, s.connections), done: make(chan struct{})}
	return ch, nil
}

// Send submits m to the server. See the package documentation for the classification of
// failures. ctx bounds the whole attempt (Config.Timeout when it has no deadline).
func (ch *Channel) Send(ctx context.Context, m *state.Message) (retry bool, err error) {
	fail := func(stage, reason string, sent bool, err error) (bool, error) {
		return reason != ReasonTemplate, &Error{Addr: ch.s.addr, Key: m.Key, Stage: stage, Reason: reason, Sent: sent, Err: err}
	}
	to, err := recipient(m.To)
	if err != nil {
		// The address itself is not repeated: it is in the message record.
		return fail("recipient", ReasonTemplate, false, ErrRecipient)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, ch.s.timeout, errors.New("smtp send timeout"))
		defer cancel()
	}
	select {
	case <-ch.done:
		return fail("acquire", ReasonShutdown, false, ErrClosed)
	case <-ctx.Done():
		return fail("acquire", lostReason(ctx, nil), false, context.Cause(ctx))
	case ch.slots <- struct{}{}:
	}
	cn := ch.take()
	defer func() { ch.put(cn) }()

	cn, err = ch.ready(ctx, cn)
	if err != nil {
		return true, err.(*Error).with(m.Key)
	}
	var buf bytes.Buffer
	buildMessage(&buf, ch.s, to, m, ch.now())
	stage, err := ch.transaction(ctx, cn, to.Address, buf.Bytes())
	if err == nil {
		cn.lastUsed = ch.now()
		return false, nil
	}
	var reply *gosmtp.SMTPError
	if errors.As(err, &reply) && reply.Code >= 400 {
		if reply.Code == 421 { // the server is closing the connection
			cn = ch.drop(cn)
		} else {
			cn.lastUsed = ch.now()
		}
		// Servers quote the recipient in replies ("<a@b>: user unknown"); the error reaches logs.
		masked := *reply
		masked.Message = strings.ReplaceAll(masked.Message, to.Address, render.Mask(to.Address))
		e := &Error{Addr: ch.s.addr, Key: m.Key, Stage: stage, Code: reply.Code, Reason: ReasonTransient, Err: &masked}
		if reply.Code >= 500 {
			e.Reason = ReasonRefused
			return false, e
		}
		return true, e
	}
	// No reply: the connection is broken or timed out.
	cn = ch.drop(cn)
	reason := lostReason(ctx, err)
	if stage == stageEndOfData {
		ch.log.Warn("smtp: no reply after end of data; delivery uncertain", "key", m.Key, "reason", reason)
		// Sent: the sender makes the message uncertain unless the channel is declared idempotent.
		return fail(stage, reason, true, fmt.Errorf("%w: %w", ErrUncertain, err))
	}
	return fail(stage, reason, false, err)
}

const stageEndOfData = "end of data"

// transaction runs MAIL, RCPT, DATA and the end of data on cn, and returns the stage reached.
func (ch *Channel) transaction(ctx context.Context, cn *conn, to string, msg []byte) (stage string, err error) {
	stop := ch.bind(ctx, cn)
	defer stop()
	if err := cn.c.Mail(ch.s.from.Address, nil); err != nil {
		return "mail", err
	}
	if err := cn.c.Rcpt(to, nil); err != nil {
		return "rcpt", err
	}
	w, err := cn.c.Data()
	if err != nil {
		return "data", err
	}
	if _, err := w.Write(msg); err != nil {
		return "data", err
	}
	// Close writes the terminating dot and waits for the reply: from here on a missing reply
	// means the server may have the whole message.
	return stageEndOfData, w.Close()
}

// ready returns an open connection for a transaction: the slot's own after RSET (and NOOP when
// it was idle), or a fresh one. Its errors are *Error without a key.
func (ch *Channel) ready(ctx context.Context, cn *conn) (*conn, error) {
	if cn != nil {
		stop := ch.bind(ctx, cn)
		err := error(nil)
		if ch.now().Sub(cn.lastUsed) > ch.s.idleCheck {
			err = cn.c.Noop()
		}
		if err == nil {
			err = cn.c.Reset()
		}
		stop()
		if err == nil {
			return cn, nil
		}
		ch.log.Debug("smtp: reused connection failed; redialling", "error", err)
		ch.drop(cn)
	}
	return ch.dial(ctx)
}

// dial connects, greets, upgrades to TLS and authenticates.
func (ch *Channel) dial(ctx context.Context) (*conn, error) {
	fail := func(stage string, err error) (*conn, error) {
		reason := ReasonConnection
		var reply *gosmtp.SMTPError
		switch {
		case errors.As(err, &reply):
			reason = ReasonTransient
			if reply.Code >= 500 {
				reason = ReasonRefused
			}
		default:
			reason = lostReason(ctx, err)
		}
		return nil, &Error{Addr: ch.s.addr, Stage: stage, Code: replyCode(err), Reason: reason, Err: err}
	}
	tcp, err := ch.dialer.DialContext(ctx, "tcp", ch.s.addr)
	if err != nil {
		return fail("dial", err)
	}
	raw := tcp
	if ch.s.mode == TLSImplicit {
		tc := tls.Client(raw, ch.s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return fail("tls", err)
		}
		raw = tc
	}
	// A cancelled ctx closes the connection, which interrupts whatever go-smtp is blocked on.
	stop := context.AfterFunc(ctx, func() { tcp.Close() })
	defer stop()
	var c *gosmtp.Client
	if ch.s.mode == TLSStartTLS {
		// Greets and says EHLO as "localhost", then STARTTLS (refused when not offered); our
		// HELO name goes into the EHLO over TLS below.
		if c, err = gosmtp.NewClientStartTLS(raw, ch.s.tls); err != nil {
			raw.Close()
			return fail("tls", err)
		}
	} else {
		c = gosmtp.NewClient(raw)
	}
	cn := &conn{c: c, raw: tcp}
	defer ch.bind(ctx, cn)()
	if err := cn.c.Hello(ch.s.helo); err != nil {
		cn.c.Close()
		// After STARTTLS the handshake runs on this first write.
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return fail("tls", err)
		}
		return fail("hello", err)
	}
	if ch.s.username != "" {
		var a sasl.Client
		if ch.s.auth == AuthLogin {
			a = sasl.NewLoginClient(ch.s.username, ch.s.password)
		} else {
			a = sasl.NewPlainClient("", ch.s.username, ch.s.password)
		}
		if err := cn.c.Auth(a); err != nil {
			cn.c.Close()
			// The server's reply, never the credentials (go-smtp does not echo them).
			return fail("auth", err)
		}
	}
	cn.lastUsed = ch.now()
	return cn, nil
}

// bind makes cn's commands honour ctx: go-smtp sets its own deadline per command from
// CommandTimeout and SubmissionTimeout, so both are set to the time left, and a cancelled ctx
// closes the connection, which interrupts a blocked read or write (the connection is dropped
// after any failure anyway). stop undoes the hook.
func (ch *Channel) bind(ctx context.Context, cn *conn) (stop func() bool) {
	left := ch.s.timeout
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d) // a network deadline: real time, not the injected clock
	}
	if left <= 0 {
		left = time.Nanosecond
	}
	cn.c.CommandTimeout, cn.c.SubmissionTimeout = left, left
	return context.AfterFunc(ctx, func() { cn.raw.Close() })
}

// take returns the most recently used idle connection, or nil.
func (ch *Channel) take() *conn {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n := len(ch.idle)
	if n == 0 {
		return nil
	}
	cn := ch.idle[n-1]
	ch.idle = ch.idle[:n-1]
	return cn
}

// put keeps cn (if still open) for reuse and frees the slot.
func (ch *Channel) put(cn *conn) {
	if cn != nil {
		ch.mu.Lock()
		ch.idle = append(ch.idle, cn)
		ch.mu.Unlock()
	}
	<-ch.slots
}

// drop closes cn and returns nil (the slot's new, empty content).
func (ch *Channel) drop(cn *conn) *conn {
	if cn != nil {
		cn.c.Close()
	}
	return nil
}

// Close waits for running Sends, then says QUIT on every open connection (bounded by 5 s each).
// Later Sends fail with ErrClosed. Idempotent.
func (ch *Channel) Close() error {
	ch.once.Do(func() {
		close(ch.done)
		for range ch.s.connections { // wait for running Sends
			ch.slots <- struct{}{}
		}
		ch.mu.Lock()
		defer ch.mu.Unlock()
		for _, cn := range ch.idle {
			cn.c.CommandTimeout = 5 * time.Second
			if err := cn.c.Quit(); err != nil {
				cn.c.Close()
			}
		}
		ch.idle = nil
	})
	return nil
}

func (e *Error) with(key string) *Error { e.Key = key; return e }

// lostReason classifies a failure without a reply: shutdown when ctx was cancelled (the
// sender is stopping), timeout when its deadline passed or the socket timed out, else
// connection.
func lostReason(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return ReasonShutdown
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	}
	return ReasonConnection
}

func replyCode(err error) int {
	var reply *gosmtp.SMTPError
	if errors.As(err, &reply) {
		return reply.Code
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code
	}
	return 0
}
