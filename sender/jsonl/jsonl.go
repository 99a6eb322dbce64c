// Package jsonl is a channel that appends each message as one JSON line to a file, or to
// standard output, for development and audits.
//
// Guarantee: when Send returns nil, the whole line is in the file and, unless Config.Sync is
// false, fsynced. Lines of concurrent Sends never interleave: one line is one write under a
// lock. A failed write is truncated away (regular files) so the file never holds a torn line,
// and Send reports retry. The channel is not idempotent: a message resent after a crash between
// the write and the outcome appears twice, with the same key, which an audit reader can dedupe.
//
// Recipients are written as they are (the file is the output); Config.Mask masks them.
package jsonl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"notifier/render"
	"notifier/state"
)

// Config is the YAML configuration of a jsonl channel.
//
//	path: /var/lib/notifier/audit.jsonl   # "-" = standard output
//	sync: true                            # fsync after every line (default true)
//	mask: false                           # mask recipients in the file (default false)
type Config struct {
	// Path is the file to append to, created with mode 0640 when absent; "-" is standard output.
	Path string `yaml:"path" json:"path"`
	// Sync fsyncs the file after each line; nil means true. Ignored for standard output.
	Sync *bool `yaml:"sync" json:"sync"`
	// Mask writes recipients masked (render.Mask) instead of in full.
	Mask bool `yaml:"mask" json:"mask"`
}

func (c *Config) validate() error {
	if c.Path == "" {
		return fmt.Errorf("%w: path is required (a file, or \"-\" for standard output)", ErrConfig)
	}
	return nil
}

// Line is the JSON object written for each message, one per line.
type Line struct {
	Key       string    `json:"key"`
	Rule      string    `json:"rule"`
	Channel   string    `json:"channel"`
	To        string    `json:"to"`
	Subject   string    `json:"subject,omitempty"`
	Text      string    `json:"text"`
	HTML      string    `json:"html,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	SentAt    time.Time `json:"sent_at"`
}

// Option changes a Channel built by New.
type Option func(*options)

type options struct {
	now    func() time.Time
	mask   func(string) string
	stdout io.Writer
}

// WithNow sets the clock used for Line.SentAt (default time.Now).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMask replaces the function that masks recipients when Config.Mask is true (default
// render.Mask).
func WithMask(mask func(string) string) Option { return func(o *options) { o.mask = mask } }

// WithStdout sets the writer used for path "-" (default os.Stdout); for tests.
func WithStdout(w io.Writer) Option { return func(o *options) { o.stdout = w } }

// Channel appends messages to one file. It is safe for concurrent use.
type Channel struct {
	path string
	sync bool
	mask func(string) string
	now  func() time.Time

	mu     sync.Mutex
	w      io.Writer
	f      *os.File // nil for standard output
	size   int64    // bytes of whole lines in f, to truncate a torn write
	buf    []byte
	closed bool
}

// New opens (creating or appending to) the configured file.
func New(cfg Config, opts ...Option) (*Channel, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := options{now: time.Now, stdout: os.Stdout, mask: render.Mask}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.Mask && o.mask == nil {
		return nil, fmt.Errorf("%w: mask: true with a nil mask function", ErrConfig)
	}
	c := &Channel{path: cfg.Path, sync: cfg.Sync == nil || *cfg.Sync, now: o.now}
	if cfg.Mask {
		c.mask = o.mask
	}
	if cfg.Path == "-" {
		c.w, c.sync = o.stdout, false
		return c, nil
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("jsonl channel: open %q: %w", cfg.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("jsonl channel: stat %q: %w", cfg.Path, err)
	}
	c.w, c.f, c.size = f, f, st.Size()
	return c, nil
}

// Send appends m as one line and, if configured, fsyncs. retry is true for write failures
// (disk full, I/O error); nothing is retried for a message that cannot be encoded.
func (c *Channel) Send(ctx context.Context, m *state.Message) (retry bool, err error) {
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("jsonl channel %q: message %q: %w", c.path, m.Key, context.Cause(ctx))
	}
	to := m.To
	if c.mask != nil {
		to = c.mask(to)
	}
	line := Line{Key: m.Key, Rule: m.Rule, Channel: m.Channel, To: to, Subject: m.Subject,
		Text: m.Text, HTML: m.HTML, CreatedAt: m.CreatedAt, SentAt: c.now()}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return true, fmt.Errorf("jsonl channel %q: %w", c.path, ErrClosed)
	}
	b, err := json.Marshal(&line)
	if err != nil {
		return false, fmt.Errorf("jsonl channel %q: encode message %q: %w", c.path, m.Key, err)
	}
	c.buf = append(append(c.buf[:0], b...), '\n')
	n, err := c.w.Write(c.buf)
	if err != nil {
		c.rollback()
		return true, fmt.Errorf("jsonl channel %q: message %q: %w: %w", c.path, m.Key, ErrWrite, err)
	}
	if c.sync && c.f != nil {
		if err := c.f.Sync(); err != nil {
			c.rollback()
			return true, fmt.Errorf("jsonl channel %q: fsync message %q: %w: %w", c.path, m.Key, ErrWrite, err)
		}
	}
	c.size += int64(n)
	return false, nil
}

// rollback cuts a torn or unsynced line off a regular file. Best effort: when it fails too, the
// next successful line still starts on a fresh line only if the torn one ended with '\n', so an
// audit reader must skip lines that do not parse.
func (c *Channel) rollback() {
	if c.f != nil {
		_ = c.f.Truncate(c.size)
	}
}

// Close syncs and closes the file; later Sends fail with ErrClosed. Idempotent.
func (c *Channel) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.f == nil {
		return nil
	}
	serr := c.f.Sync()
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("jsonl channel %q: close: %w", c.path, err)
	}
	if serr != nil {
		return fmt.Errorf("jsonl channel %q: sync on close: %w", c.path, serr)
	}
	return nil
}
