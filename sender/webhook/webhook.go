// Package webhook is the HTTP channel: a generic webhook (JSON or form body from templates,
// bearer/basic/HMAC auth, custom CA) and presets for two SMS APIs, Twilio and Vonage (Nexmo),
// plus the handler for their delivery receipts.
//
// Guarantees: Send makes at most one HTTP request per call (the transport's own silent replay
// of a request is disabled unless the channel is idempotent), bounded by ctx and Options.Timeout
// (context.WithTimeoutCause). Every request carries "Idempotency-Key: <message key>". Errors
// never contain a secret, a URL's query or user info, and classify the failure with a
// sender.Reason value: 2xx sent; 429 rate_limited (retry, with Retry-After); 5xx provider_5xx
// (retry); other 4xx provider_4xx (final, answer kept); transport failures timeout/connection
// (retry; the sender decides whether a non-idempotent channel may resend).
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"notifier/render"
	"notifier/state"
)

// Options configures a generic webhook channel. URL, header values, Body and Form values are
// text/templates over the message (see Data); a missing key fails the message (reason
// template). Secrets are passed resolved; they never appear in errors.
type Options struct {
	Name    string            // channel name, for errors
	URL     string            // required; template
	Method  string            // default POST
	Headers map[string]string // extra headers; values are templates
	Body    string            // JSON body template; empty = the default JSON document
	Form    map[string]string // form fields (templates) instead of a JSON body

	Bearer        string // Authorization: Bearer <token>
	BasicUser     string // basic auth, with BasicPassword
	BasicPassword string
	HMACSecret    string // HMACHeader: HMACPrefix + hex(HMAC-SHA256(secret, body))
	HMACHeader    string // default X-Signature-256
	HMACPrefix    string // default "sha256="

	// IDPath is the dotted path of the provider's message id in a JSON answer
	// ("messages.0.message-id"); empty = none. The id is stored as the message's ProviderID.
	IDPath string

	// Idempotent allows the HTTP transport to replay a request on a reused connection that
	// broke; leave false unless the receiver deduplicates by Idempotency-Key.
	Idempotent bool

	CAFile             string // PEM bundle trusted in addition to the system roots
	InsecureSkipVerify bool
	// Timeout bounds one request (0 = only ctx bounds it).
	Timeout time.Duration
	// Client replaces the client built from the TLS and pool settings (tests, proxies).
	Client *http.Client
	// Now is the clock for Retry-After dates (default time.Now).
	Now func() time.Time
}

// Channel sends messages over HTTP. It is safe for concurrent use.
type Channel struct {
	name       string
	method     string
	url        *tmpl
	headers    []header
	build      func(m *state.Message, d *data) (body []byte, contentType string, err error)
	auth       func(req *http.Request, body []byte)
	idPath     []string
	check      func(body []byte) error // a preset's verdict on a 2xx answer
	idempotent bool
	client     *http.Client
	timeout    time.Duration
	now        func() time.Time
	secrets    []string

	timeoutCause error
}

type header struct {
	name  string
	value *tmpl
}

// New builds a generic webhook channel.
func New(o Options) (*Channel, error) {
	c, err := newChannel(o)
	if err != nil {
		return nil, err
	}
	switch {
	case o.Body != "" && len(o.Form) > 0:
		return nil, fmt.Errorf("webhook %s: body and form both set: %w", o.Name, ErrConfig)
	case o.Body != "":
		t, err := parse(o.Name, "body", o.Body)
		if err != nil {
			return nil, err
		}
		c.build = jsonBody(t)
	case len(o.Form) > 0:
		f, err := parseForm(o.Name, o.Form)
		if err != nil {
			return nil, err
		}
		c.build = f.build
	default:
		c.build = defaultBody
	}
	return c, nil
}

// newChannel sets up everything but the body.
func newChannel(o Options) (*Channel, error) {
	if o.URL == "" {
		return nil, fmt.Errorf("webhook %s: url is required: %w", o.Name, ErrConfig)
	}
	u, err := parse(o.Name, "url", o.URL)
	if err != nil {
		return nil, err
	}
	c := &Channel{
		name: o.Name, method: strings.ToUpper(o.Method), url: u, idempotent: o.Idempotent,
		timeout: o.Timeout, now: o.Now, client: o.Client,
	}
	if c.method == "" {
		c.method = http.MethodPost
	}
	c.timeoutCause = fmt.Errorf("webhook %s: no answer within %s: %w", o.Name, o.Timeout, context.DeadlineExceeded)
	if c.now == nil {
		c.now = time.Now
	}
	for name, v := range o.Headers {
		t, err := parse(o.Name, "header "+name, v)
		if err != nil {
			return nil, err
		}
		c.headers = append(c.headers, header{name: http.CanonicalHeaderKey(name), value: t})
	}
	if o.IDPath != "" {
		c.idPath = strings.Split(o.IDPath, ".")
	}
	if c.auth, c.secrets, err = authFunc(o); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", o.Name, err)
	}
	if pu, err := url.Parse(o.URL); err == nil && pu.User != nil { // credentials in the URL
		if pass, ok := pu.User.Password(); ok && pass != "" {
			c.secrets = append(c.secrets, pass, url.QueryEscape(pass), url.PathEscape(pass),
				base64.StdEncoding.EncodeToString([]byte(pu.User.Username()+":"+pass)))
		}
	}
	if c.client == nil {
		if c.client, err = newClient(o.CAFile, o.InsecureSkipVerify); err != nil {
			return nil, fmt.Errorf("webhook %s: %w", o.Name, err)
		}
	}
	return c, nil
}

// newClient builds a client with a connection pool sized for the sender's concurrency.
func newClient(caFile string, insecure bool) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	tr.IdleConnTimeout = 90 * time.Second
	if caFile != "" || insecure {
		tc := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // explicitly configured
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("tls ca_file %s: %w", caFile, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls ca_file %s: no PEM certificate: %w", caFile, ErrConfig)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{
		Transport: tr,
		// A redirect would replay the body elsewhere; providers answer directly.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// Send makes one request for m. See the package comment for the classification.
func (c *Channel) Send(ctx context.Context, m *state.Message) (retry bool, err error) {
	d := newData(m)
	rawURL, err := c.url.exec(d)
	if err != nil {
		return false, c.fail("", 0, reasonTemplate, fmt.Errorf("%w: url: %w", ErrTemplate, err))
	}
	body, ctype, err := c.build(m, d)
	if err != nil {
		return false, c.fail(redact(rawURL), 0, reasonTemplate, fmt.Errorf("%w: %w", ErrTemplate, err))
	}
	if err := ctx.Err(); err != nil { // nothing sent yet
		return true, c.fail(redact(rawURL), 0, reasonTimeout, context.Cause(ctx))
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, c.timeoutCause)
		defer cancel()
	}
	// Whether the whole request was written decides, for a failed call on a non-idempotent
	// channel, between "retry" (the provider cannot have acted on it) and "uncertain". An
	// idempotent channel does not need to know: count the request as written.
	var wrote atomic.Bool
	if c.idempotent {
		wrote.Store(true)
	} else {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		}})
	}
	req, err := http.NewRequestWithContext(ctx, c.method, rawURL, bytes.NewReader(body))
	if err != nil {
		return false, c.fail(redact(rawURL), 0, reasonTemplate, fmt.Errorf("%w: %w", ErrTemplate, redactErr(err)))
	}
	if !c.idempotent {
		// Without GetBody, net/http never replays the POST on its own after a broken reused
		// connection: the request might have reached the provider (invariant 3).
		req.GetBody = nil
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("User-Agent", "notifier")
	req.Header.Set("Idempotency-Key", m.Key)
	for _, h := range c.headers {
		v, err := h.value.exec(d)
		if err != nil {
			return false, c.fail(redact(rawURL), 0, reasonTemplate, fmt.Errorf("%w: header %s: %w", ErrTemplate, h.name, err))
		}
		req.Header.Set(h.name, v)
	}
	if c.auth != nil {
		c.auth(req, body)
	}
	return c.do(req, m, &wrote)
}

// do runs the request and classifies the answer. The redacted URL is only computed for errors.
func (c *Channel) do(req *http.Request, m *state.Message, wrote *atomic.Bool) (bool, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		reason := reasonConnection
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			reason = reasonTimeout
		}
		e := c.fail(redact(req.URL.String()), 0, reason, redactErr(err))
		e.Written = wrote.Load()
		return true, e
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil && resp.StatusCode/100 == 2 {
		// The provider answered 2xx, so it took the message; only the id is lost.
		raw = nil
	}
	switch code := resp.StatusCode; {
	case code/100 == 2:
		if c.check != nil {
			if err := c.check(raw); err != nil {
				where := redact(req.URL.String())
				var e *Error
				if errors.As(err, &e) {
					e.Channel, e.Method, e.URL, e.Status = c.name, req.Method, where, code
					e.Body = c.scrub(render.Clip(string(raw), 1024))
					return e.Reason == reasonRateLimited, e
				}
				return false, c.failBody(where, code, reasonRejected, raw, err)
			}
		}
		if len(c.idPath) > 0 {
			m.ProviderID = lookupID(raw, c.idPath)
		}
		return false, nil
	case code == http.StatusTooManyRequests:
		e := c.failBody(redact(req.URL.String()), code, reasonRateLimited, raw, ErrStatus)
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.now())
		return true, e
	case code/100 == 5:
		e := c.failBody(redact(req.URL.String()), code, reasonProvider5xx, raw, ErrStatus)
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.now())
		return true, e
	default:
		return false, c.failBody(redact(req.URL.String()), code, reasonProvider4xx, raw, ErrStatus)
	}
}

func (c *Channel) fail(where string, status int, reason string, err error) *Error {
	return &Error{Channel: c.name, Method: c.method, URL: where, Status: status, Reason: reason, Err: c.scrubErr(err)}
}

func (c *Channel) failBody(where string, status int, reason string, body []byte, err error) *Error {
	e := c.fail(where, status, reason, err)
	e.Body = c.scrub(render.Clip(string(body), 1024))
	return e
}

// scrub replaces every configured secret in s. Values under 4 bytes are left alone: they are
// no secret worth the name, and replacing them would garble every answer.
func (c *Channel) scrub(s string) string {
	for _, sec := range c.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "<secret>")
		}
	}
	return s
}

// scrubErr keeps err's chain (errors.Is/As still work) but scrubs its text.
func (c *Channel) scrubErr(err error) error {
	if err == nil {
		return nil
	}
	if t := err.Error(); c.scrub(t) != t {
		return scrubbed{text: c.scrub(t), err: err}
	}
	return err
}

type scrubbed struct {
	text string
	err  error
}

func (s scrubbed) Error() string { return s.text }
func (s scrubbed) Unwrap() error { return s.err }

// redact drops the query, fragment and user info of a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable url>"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// redactErr redacts the URL inside a *url.Error, keeping its cause.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		cp := *ue
		cp.URL = redact(ue.URL)
		return &cp
	}
	return err
}

// retryAfter parses Retry-After as seconds or an HTTP date; 0 when absent or invalid.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
