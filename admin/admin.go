// Package admin is the operator's window on a running notifier: an HTTP server with /metrics,
// /healthz, /readyz, POST /-/reload and a JSON API over the state store (status, messages,
// timers, dead letters, checkpoint, export), and a Client for that API.
//
// Guarantees: every route under /api/ and /-/reload requires the bearer token when one is
// configured (compared in constant time; /metrics, /healthz and /readyz stay open for probes and
// scrapers); recipients are masked in every answer unless the caller asks for unmask=1; a
// mutating call (cancel, resend, drop, dead retry/drop, checkpoint, reload) is logged with the
// message key and never with the recipient; the same views are produced by Local on an opened
// store, so the CLI prints the same thing whether it talks to the service or to the store.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/state"
)

// DefaultListen is the admin address when none is configured: loopback only. In a pod, listen
// on ":9464" so that probes and scrapers reach it, and set a token.
const DefaultListen = "127.0.0.1:9464"

// Options configures a Server. Store is required; the rest has defaults.
type Options struct {
	// Listen is the TCP address to serve on; default DefaultListen.
	Listen string
	// Token, when not empty, is the bearer token required on /api/ and /-/reload. See LoadToken.
	Token string
	// Store is the open state store.
	Store Store
	// Status reports the running service (binlog connection, lag, rules). nil: /readyz checks
	// only the store and /api/v1/status has no service part.
	Status func() Status
	// Reload re-reads the rules; nil: POST /-/reload answers 501. An error that wraps a list of
	// errors (errors.Join, as rules.LoadDir returns) is a refused configuration (400, one line
	// per error); any other error is a failure of the service (500).
	Reload func(ctx context.Context) error
	// Rewind moves the checkpoint of the running pipeline (stop ingest, set it, resume from it);
	// nil: PUT /api/v1/checkpoint answers 501 and the operator stops the service first.
	Rewind func(ctx context.Context, cp state.Checkpoint) error
	// Snapshot and Sweeps add the snapshot run and the sweeps to the status (see Local);
	// nil: not reported.
	Snapshot func() (*SnapshotView, error)
	Sweeps   func() ([]SweepView, error)
	// Extra routes, pattern → handler (e.g. "GET /debug/pprof/" for profiling). They are behind
	// the token when their pattern's path starts with /api/ or /-/.
	Extra map[string]http.Handler
	// Version is published as notifier_build_info{version}.
	Version string
	// MaxLag is the replication lag above which /readyz fails; default 5 minutes.
	MaxLag time.Duration
	// StatsTTL is how long store statistics (counts by state, due index) are cached for
	// /metrics; default 5 seconds, so a scrape every few seconds costs one count.
	StatsTTL time.Duration
	// ShutdownTimeout bounds the graceful shutdown of the HTTP server; default 5 seconds.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	Now             func() time.Time
}

func (o *Options) validate() error {
	if o.Store == nil {
		return errors.New("admin options: Store is required")
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return fmt.Errorf("admin options: listen %q: %w", o.Listen, err)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 5 * time.Minute
	}
	if o.StatsTTL <= 0 {
		o.StatsTTL = 5 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Server is the admin HTTP server. Create it with New, serve with Run (or Serve), stop it by
// cancelling Run's context or with Close.
type Server struct {
	opts    Options
	local   *Local
	handler http.Handler
	set     *metrics.Set
	stats   statsCache

	mu     sync.Mutex
	srv    *http.Server
	addr   net.Addr
	closed bool
}

// New validates opts, builds the routes and registers the store metrics in the default
// registry (unregistered by Close).
func New(opts Options) (*Server, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts}
	s.local = &Local{Store: opts.Store, Service: opts.Status, Rewind: opts.Rewind, Running: true, Actor: "api",
		Snapshot: opts.Snapshot, Sweeps: opts.Sweeps}
	if host, _, _ := net.SplitHostPort(opts.Listen); opts.Token == "" && !isLoopback(host) {
		// Anyone who reaches the port could cancel, resend and unmask: say so loudly.
		opts.Logger.Warn("admin API has no token but listens beyond loopback; set "+TokenEnv+" or admin.token_file",
			"listen", opts.Listen)
	}
	s.handler = s.routes()
	s.set = s.newMetrics()
	metrics.RegisterSet(s.set)
	return s, nil
}

// Handler returns the server's routes, for tests (httptest) or to mount elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on Options.Listen and serves until ctx is done or Close is called; then it shuts
// down gracefully within ShutdownTimeout. It returns nil after a normal stop.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", s.opts.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (and Serve closes).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// No WriteTimeout: an export streams for as long as it takes; ctx bounds it.
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.srv, s.addr = srv, ln.Addr()
	s.mu.Unlock()
	s.opts.Logger.Info("admin server listening", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("admin serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.shutdown()
	<-errc
	return nil
}

// Addr is the address the server listens on, nil before Run/Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		// A long export still streaming: cut it.
		srv.Close()
	}
}

// Close stops serving (gracefully, within ShutdownTimeout) and unregisters the metrics. It is
// idempotent; close the server before the store it reads.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.shutdown()
	metrics.UnregisterSet(s.set, true)
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
