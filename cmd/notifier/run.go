package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/urfave/cli/v2"

	"notifier/admin"
	"notifier/cdc"
	"notifier/ingest"
	"notifier/rules"
	"notifier/sender"
	"notifier/sender/webhook"
	"notifier/state"
	"notifier/sweep"
)

// runCommands: run and demo. Owned by the integration work.
func runCommands() []*cli.Command { return []*cli.Command{runCommand(), demoCommand()} }

// configFlag and logLevelFlag are declared on every command that reads the config, because
// urfave/cli only parses a flag on the command that declares it (LIBRARY-NOTES D).
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Value: "configs/notifier.yaml",
		EnvVars: []string{"NOTIFIER_CONFIG"}, TakesFile: true, Usage: "config `FILE`"}
}

func logLevelFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-level", EnvVars: []string{"NOTIFIER_LOG_LEVEL"},
		Usage: "debug|info|warn|error (overrides log.level)"}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "tail the replica's binlog, turn row changes into messages and send them",
		Description: "Opens the store, settles messages a crash left in sending, starts the sender, " +
			"then reads the binlog from the stored checkpoint. SIGTERM/SIGINT stops reading, commits " +
			"what was read, lets in-flight sends finish within sender.drain_timeout and closes the " +
			"store. SIGHUP (and rules.reload_interval) reloads the rules.",
		Flags: []cli.Flag{
			configFlag(), logLevelFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "evaluate and render only: log what would be sent and write it to --dry-run-out; send nothing, write no state, move no checkpoint"},
			&cli.StringFlag{Name: "dry-run-out", Value: "notifier-dry-run.jsonl", TakesFile: true, Usage: "JSON lines `FILE` of --dry-run"},
			&cli.BoolFlag{Name: "unmask", Usage: "--dry-run only: write recipients unmasked into --dry-run-out (the log stays masked)"},
			&cli.StringFlag{Name: "from", Usage: "--dry-run only: start at this binlog `POSITION` (default: the store's checkpoint if readable, else the server's current position)"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := LoadConfig(c.String("config"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if lvl := c.String("log-level"); lvl != "" {
				cfg.Log.Level = lvl
			}
			log, err := newLogger(c.App.ErrWriter, cfg.Log.Level, cfg.Log.Format)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if c.Bool("dry-run") {
				return dryRun(c.Context, cfg, log, c.String("dry-run-out"), c.String("from"), c.Bool("unmask"))
			}
			return Serve(c.Context, cfg, ServeOptions{Logger: log})
		},
	}
}

// ServeOptions are the in-process knobs of Serve that are not in the config file.
type ServeOptions struct {
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// service is one running notifier: the components in start order. stop runs the teardown
// stack (LIFO).
type service struct {
	cfg    *Config
	log    *slog.Logger
	now    func() time.Time
	store  *state.Store
	ing    *ingest.Ingester
	snd    *sender.Sender
	sweeps *sweep.Scheduler
	start  time.Time
	reader atomic.Pointer[cdc.Reader] // the pipeline's current binlog reader (status)

	reloadMu        sync.Mutex
	lastReload      time.Time
	lastReloadError string
	tables          []string // cdc include patterns in force

	restart chan restartRequest // pipeline restarts (rewind, changed tables)
	stack   teardown            // stop functions, run in reverse order by Serve
}

// restartRequest asks the pipeline to stop reading, commit, and resume from the store's
// checkpoint, after optionally setting it (rewind).
type restartRequest struct {
	checkpoint *state.Checkpoint
	done       chan error
}

// Serve runs the service until ctx is done, then shuts it down in order (STYLE 6):
// stop reading the binlog → let ingest commit what it has → let the sender finish in-flight
// sends within drain_timeout → close the store (last). Each start step pushes its stop onto a
// LIFO stack.
func Serve(ctx context.Context, cfg *Config, opts ServeOptions) (err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &service{cfg: cfg, log: log, now: now, start: now(), restart: make(chan restartRequest)}
	defer func() {
		if terr := s.stack.run(); terr != nil && err == nil {
			err = terr
		}
	}()

	set, err := s.loadRules()
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	password, err := cfg.Source.password()
	if err != nil {
		return err
	}
	runtimes, err := sender.Build(cfg.Channels, sender.Deps{Logger: log.With("component", "channel"), Now: now})
	if err != nil {
		return cli.Exit(fmt.Sprintf("channels: %v", err), 2)
	}
	s.stack.push("channels", func() error {
		var errs []error
		for _, rt := range runtimes {
			errs = append(errs, rt.Close())
		}
		return errors.Join(errs...)
	})
	if err := s.openStore(ctx, runtimes, len(set.Rules)); err != nil { // 1. store, checkpoint, settle
		return err
	}
	ing, err := ingest.New(ingest.Options{Store: s.store, Rules: set, Flavor: cfg.Source.Flavor, // 2. ingest
		DefaultMaxPerMinute: *cfg.Rules.DefaultMaxPerMinute, Kick: s.kick, Now: now,
		Logger: log.With("component", "ingest")})
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	s.ing = ing
	s.stack.push("ingest metrics", func() error { ing.Close(); return nil })
	if err := s.startSender(ctx, runtimes, password); err != nil { // 3. sender
		return err
	}
	// 4. A snapshot first: an interrupted one is finished, and on a first start (no checkpoint)
	// the tables whose rules opt in to op `snapshot` are read; its position becomes the
	// checkpoint the binlog is read from (snapshot.go).
	if err := SnapshotBeforeStreaming(ctx, cfg, cfg.Snapshot, s.store, set, log.With("component", "snapshot"), s.kick); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped during the snapshot; it resumes at the next start", "error", err)
			return nil
		}
		return fmt.Errorf("snapshot: %w", err)
	}
	bgCtx, err := s.startBackground(ctx, set) // 5. digests, sweeps, rule reloads
	if err != nil {
		return err
	}
	if err := s.startAdmin(bgCtx); err != nil { // 6. admin server
		return err
	}
	// 7. The pipeline: cdc from the checkpoint → ingest, restartable.
	return s.pipeline(ctx, cdc.Options{Addr: cfg.Source.Addr, User: cfg.Source.User, Password: password,
		Flavor: cfg.Source.Flavor, ServerID: cfg.Source.ServerID, Exclude: cfg.Source.Exclude,
		Now: now, Logger: log.With("component", "cdc")})
}

// openStore opens the store and settles the messages a crash left in `sending`: ready again on
// an idempotent channel, uncertain otherwise (invariant 3).
func (s *service) openStore(ctx context.Context, runtimes map[string]*sender.Runtime, rules int) error {
	st, err := state.Open(state.Options{Dir: s.cfg.Store.Dir, NoSync: !*s.cfg.Store.SyncWrites,
		DedupeHorizon: s.cfg.Store.DedupeHorizon, Logger: s.log.With("component", "state"), Now: s.now})
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.cfg.Store.Dir, err)
	}
	s.store = st
	s.stack.push("store", st.Close)
	cp, hasCP, err := st.Checkpoint()
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	idempotent := func(ch string) bool {
		rt, ok := runtimes[ch]
		return ok && rt.Idempotent()
	}
	ready, uncertain, err := st.Settle(ctx, idempotent)
	if err != nil {
		return fmt.Errorf("settle messages left sending: %w", err)
	}
	s.log.Info("store open", "dir", s.cfg.Store.Dir, "checkpoint", cp.Position, "has_checkpoint", hasCP,
		"settled_ready", ready, "settled_uncertain", uncertain, "rules", rules)
	return nil
}

// startSender starts the delivery loop. It claims through the fire gate (the rules' misfire,
// quiet hours and recheck) and runs on its own context: it is stopped after the pipeline has
// committed, and then drains in-flight sends within drain_timeout.
func (s *service) startSender(ctx context.Context, runtimes map[string]*sender.Runtime, password string) error {
	set := metrics.NewSet()
	metrics.RegisterSet(set)
	s.stack.push("sender metrics", func() error { metrics.UnregisterSet(set, true); return nil })
	rows := &ingest.ReplicaRows{Addr: s.cfg.Source.Addr, User: s.cfg.Source.User, Password: password}
	snd, err := sender.New(sender.Options{Store: ingest.NewFireGate(s.store, s.ing, rows), Channels: runtimes,
		Concurrency: s.cfg.Sender.Concurrency, ClaimBatch: s.cfg.Sender.ClaimBatch,
		ClaimAhead: *s.cfg.Sender.ClaimAhead, MaxAhead: s.cfg.Sender.MaxAhead,
		DrainTimeout: s.cfg.Sender.DrainTimeout, Now: s.now, Logger: s.log.With("component", "sender"), Metrics: set})
	if err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	s.snd = snd
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	sendDone := make(chan error, 1)
	go func() { sendDone <- snd.Run(sendCtx) }()
	s.stack.push("sender", func() error {
		stopSend()
		return <-sendDone
	})
	return nil
}

// startBackground starts the digest flusher, the sweep scheduler and the rule reloader; they
// stop with the returned context (cancelled by the teardown).
func (s *service) startBackground(ctx context.Context, set *rules.Set) (context.Context, error) {
	sweeps, err := newSweeps(s.cfg, s.cfg.Sweeps, s.store, set, s.log, s.kick)
	if err != nil {
		return nil, fmt.Errorf("sweeps: %w", err)
	}
	s.sweeps = sweeps
	bgCtx, stopBG := context.WithCancel(ctx)
	var bg sync.WaitGroup
	s.stack.push("background", func() error { stopBG(); bg.Wait(); return nil })
	bg.Add(3)
	go func() { defer bg.Done(); _ = s.ing.RunDigests(bgCtx, s.store, s.cfg.Sender.DigestInterval, s.kick) }()
	go func() {
		defer bg.Done()
		if err := sweeps.Run(bgCtx); err != nil && bgCtx.Err() == nil {
			s.log.Error("sweep scheduler stopped", "error", err)
		}
	}()
	go func() { defer bg.Done(); s.reloadLoop(bgCtx) }()
	return bgCtx, nil
}

// startAdmin starts the admin server when admin.listen is set.
func (s *service) startAdmin(ctx context.Context) error {
	if s.cfg.Admin.Listen == "" {
		return nil
	}
	token, err := s.cfg.Admin.token()
	if err != nil {
		return err
	}
	extra, err := s.receiptRoutes()
	if err != nil {
		return err
	}
	srv, err := admin.New(admin.Options{Listen: s.cfg.Admin.Listen, Token: token, Store: s.store,
		Status: s.status, Reload: s.reload, Rewind: s.rewind, Version: version, Now: s.now,
		Extra: extra, Logger: s.log.With("component", "admin"),
		Snapshot: func() (*admin.SnapshotView, error) { return snapshotStatus(s.store) },
		Sweeps:   func() ([]admin.SweepView, error) { return sweepViews(s.sweeps.Status()) }})
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	s.stack.push("admin", func() error { _ = srv.Close(); return <-done })
	s.log.Info("admin server", "listen", s.cfg.Admin.Listen, "token", token != "", "receipts", extra != nil)
	return nil
}

// receiptRoutes mounts the providers' delivery-status callbacks at /receipts when
// sender.receipts is set. The path is outside /api/ and /-/, so admin does not put it behind
// the bearer token (providers cannot send one): webhook.ReceiptHandler checks its own shared
// secret (X-Notifier-Token or ?token=) on every request.
func (s *service) receiptRoutes() (map[string]http.Handler, error) {
	rc := s.cfg.Sender.Receipts
	if rc == nil {
		return nil, nil
	}
	sec, err := rc.Secret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("sender.receipts.secret: %w", err)
	}
	return map[string]http.Handler{"/receipts": webhook.ReceiptHandler(s.store, sec)}, nil
}

// pipeline runs cdc → ingest from the store's checkpoint until ctx is done (graceful stop: the
// reader stops, ingest commits everything read, returns nil) or a fatal error. A restart
// request stops it the same way, optionally moves the checkpoint, and starts again.
func (s *service) pipeline(ctx context.Context, src cdc.Options) error {
	for {
		cp, ok, err := s.store.Checkpoint()
		if err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		var from cdc.Position
		if ok {
			if from, err = cdc.ParsePosition(cp.Position); err != nil {
				return fmt.Errorf("stored checkpoint %q: %w", cp.Position, err)
			}
		}
		src.Include = s.include()
		reader, err := cdc.New(src)
		if err != nil {
			return fmt.Errorf("binlog reader: %w", err)
		}
		s.reader.Store(reader)
		s.log.Info("reading binlog", "addr", s.cfg.Source.Addr, "from", from.String(), "tables", src.Include)

		readCtx, stopRead := context.WithCancel(ctx)
		txns := make(chan *cdc.Txn, 64)
		readDone := make(chan error, 1)
		go func() {
			err := reader.Run(readCtx, from, txns)
			close(txns)
			readDone <- err
		}()
		ingDone := make(chan error, 1)
		go func() { ingDone <- s.ing.Run(context.WithoutCancel(ctx), txns) }()

		var req *restartRequest
		var ingErr, readErr error
		select {
		case <-ctx.Done():
		case r := <-s.restart:
			req = &r
		case ingErr = <-ingDone:
			ingDone = nil
		case readErr = <-readDone:
			readDone = nil
		}
		stopRead()
		if readDone != nil {
			readErr = <-readDone
		}
		if ingDone != nil {
			ingErr = <-ingDone // the reader closed txns: ingest commits what it has and returns
		}
		_ = reader.Close()
		if c, ok := s.ing.LastCommit(); ok {
			s.log.Info("binlog reading stopped", "checkpoint", c.Checkpoint.Position)
		}
		if ingErr != nil {
			err = fmt.Errorf("ingest: %w", ingErr)
		} else if readErr != nil && ctx.Err() == nil && req == nil {
			err = fmt.Errorf("binlog reader: %w", readErr)
		}
		if err != nil {
			if req != nil {
				req.done <- err
			}
			return err
		}
		if req == nil {
			return nil // ctx done: graceful stop
		}
		if req.checkpoint != nil {
			if err := s.store.SetCheckpoint(ctx, *req.checkpoint); err != nil {
				req.done <- err
				continue
			}
			s.log.Warn("checkpoint moved by the operator", "checkpoint", req.checkpoint.Position)
		}
		req.done <- nil
	}
}

// include is the cdc table filter: source.include, else the tables the rules name.
func (s *service) include() []string {
	if len(s.cfg.Source.Include) > 0 {
		return s.cfg.Source.Include
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.tables == nil {
		s.tables = s.ing.Rules().Tables()
	}
	return s.tables
}

// rewind is admin's Rewind: restart the pipeline from cp.
func (s *service) rewind(ctx context.Context, cp state.Checkpoint) error {
	return s.requestRestart(ctx, &cp)
}

func (s *service) requestRestart(ctx context.Context, cp *state.Checkpoint) error {
	r := restartRequest{checkpoint: cp, done: make(chan error, 1)}
	select {
	case s.restart <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// kick wakes the sender after a commit (set once the sender exists).
func (s *service) kick() {
	if s.snd != nil {
		s.snd.Kick()
	}
}

// status is admin's view of the running service.
func (s *service) status() admin.Status {
	st := admin.Status{Version: version, StartedAt: s.start}
	set := s.ing.Rules()
	st.RulesLoaded, st.RulesHash = len(set.Rules), set.Hash
	st.PausedRules = s.ing.PausedRules()
	if c, ok := s.ing.LastCommit(); ok {
		st.Position = c.Checkpoint.Position
	}
	// Connected from the reader itself, not from a commit: an idle database commits nothing
	// after a restart, and /readyz must still become ready.
	if r := s.reader.Load(); r != nil {
		st.BinlogConnected = r.Connected()
	}
	st.Lag = s.ing.Lag()
	s.reloadMu.Lock()
	st.LastReload, st.LastReloadError = s.lastReload, s.lastReloadError
	s.reloadMu.Unlock()
	return st
}

func channelNames(cfg *Config) []string {
	names := make([]string, 0, len(cfg.Channels))
	for n := range cfg.Channels {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// hupSignals delivers SIGHUP for rule reloads.
func hupSignals(ctx context.Context) <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	go func() { <-ctx.Done(); signal.Stop(c) }()
	return c
}

// teardown is the LIFO stack of stop functions (STYLE 6): the last started stops first.
type teardown struct {
	names []string
	fns   []func() error
}

func (t *teardown) push(name string, fn func() error) {
	t.names = append(t.names, name)
	t.fns = append(t.fns, fn)
}

func (t *teardown) run() error {
	var errs []error
	for i := len(t.fns) - 1; i >= 0; i-- {
		if err := t.fns[i](); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", t.names[i], err))
		}
	}
	t.fns, t.names = nil, nil
	return errors.Join(errs...)
}
