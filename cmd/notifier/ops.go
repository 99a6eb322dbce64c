package main

// The operator commands: status, messages, timers, dead, replay, export, checkpoint, reload.
//
// Each talks to the running service through its admin API (--admin, $NOTIFIER_ADMIN_ADDR, or
// admin.listen from --config) and, when no service answers there, opens the store directly
// (--store DIR, or store.dir from --config): Badger allows one process, so the store can only be
// opened while the service is stopped. The mode used is printed on stderr:
//
//	online: via http://127.0.0.1:9464
//	offline: store /var/lib/notifier
//
// Both modes print the same thing (admin.API has the two implementations). Output is an aligned
// table, or JSON with --output json. Flags go BEFORE positional arguments (urfave/cli stops
// parsing flags at the first argument): `notifier messages show --unmask KEY`, not `… KEY
// --unmask`; a flag found after the arguments is refused with that advice.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"notifier/admin"
	"notifier/rules"
	"notifier/state"
	"notifier/sweep"
)

// opsCommands: status, messages, timers, dead, replay, export, checkpoint, reload.
func opsCommands() []*cli.Command {
	return []*cli.Command{
		statusCommand(),
		messagesCommand(),
		timersCommand(),
		deadCommand(),
		replayCommand(),
		exportCommand(),
		checkpointCommand(),
		reloadCommand(),
	}
}

// opsNow is the operator commands' clock (relative times, --since 24h); tests fix it.
var opsNow = time.Now

// pingTimeout bounds the probe that decides between online and offline mode.
const pingTimeout = 2 * time.Second

// connFlags are declared on every operator command (not on the app), so that
// `notifier status --store DIR` works: app-level flags would have to precede the command.
func connFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "admin", EnvVars: []string{"NOTIFIER_ADMIN_ADDR"},
			Usage: "admin API of the running service (default: admin.listen from --config, else http://" + admin.DefaultListen + ")"},
		&cli.StringFlag{Name: "admin-token-file", TakesFile: true,
			Usage: "file holding the admin bearer token (default: $" + admin.TokenEnv + ", or admin.token_file from --config)"},
		&cli.StringFlag{Name: "store", EnvVars: []string{"NOTIFIER_STORE_DIR"}, TakesFile: true,
			Usage: "store directory, opened directly when the service is stopped (default: store.dir from --config)"},
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"NOTIFIER_CONFIG"}, TakesFile: true,
			Usage: "the service's config file, for the admin address, token and store directory"},
		&cli.StringFlag{Name: "mode", Value: "auto",
			Usage: "auto (the API if it answers, else the store), online (the API only) or offline (the store only)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text (aligned table) or json"},
	}
}

// withConn adds the connection flags to a command's own.
func withConn(flags ...cli.Flag) []cli.Flag { return append(flags, connFlags()...) }

// session is one command's connection to the service or the store.
type session struct {
	api    admin.API
	client *admin.Client // online only
	store  *state.Store  // offline only
	online bool
	out    io.Writer
	json   bool
}

func (s *session) Close() error {
	if s.store != nil {
		return s.store.Close()
	}
	return nil
}

// connect picks the mode and says which on stderr.
func connect(c *cli.Context) (*session, error) {
	if err := noFlagsAfterArgs(c); err != nil {
		return nil, err
	}
	out := c.String("output")
	if out != "text" && out != "json" {
		return nil, cli.Exit(fmt.Sprintf("--output %q: want text or json", out), 2)
	}
	mode := c.String("mode")
	if mode != "auto" && mode != "online" && mode != "offline" {
		return nil, cli.Exit(fmt.Sprintf("--mode %q: want auto, online or offline", mode), 2)
	}
	t, err := resolveTarget(c)
	if err != nil {
		return nil, err
	}
	s := &session{out: c.App.Writer, json: out == "json"}
	stderr := c.App.ErrWriter

	var reason error
	if mode != "offline" {
		cl, err := admin.NewClient(t.addr, t.token, nil)
		if err != nil {
			return nil, cli.Exit(err.Error(), 2)
		}
		err = cl.Ping(c.Context, pingTimeout)
		if err == nil {
			s.api, s.client, s.online = cl, cl, true
			fmt.Fprintf(stderr, "online: via %s\n", cl.URL())
			return s, nil
		}
		if mode == "online" || !errors.Is(err, admin.ErrUnavailable) {
			return nil, err
		}
		reason = err
	}
	if t.storeDir == "" {
		return nil, fmt.Errorf("no service answers at %s and no store is given: pass --store DIR or --config FILE (%w)", t.addr, reason)
	}
	st, err := openStoreOffline(t.storeDir, t.cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		if errors.Is(err, state.ErrInUse) {
			return nil, fmt.Errorf("store %s is in use by a running service whose admin API did not answer at %s: pass its address with --admin: %w", t.storeDir, t.addr, err)
		}
		return nil, fmt.Errorf("open store %s: %w", t.storeDir, err)
	}
	s.store = st
	s.api = &admin.Local{Store: st, Actor: "cli",
		Snapshot: func() (*admin.SnapshotView, error) { return snapshotStatus(st) },
		Sweeps:   offlineSweeps(t.cfg, st, stderr)}
	fmt.Fprintf(stderr, "offline: store %s\n", t.storeDir)
	return s, nil
}

// target is where a command looks for the service and the store.
type target struct {
	addr, token, storeDir string
	cfg                   *Config // nil without --config
}

// resolveTarget merges the flags with the config file: flags win.
func resolveTarget(c *cli.Context) (target, error) {
	t := target{addr: c.String("admin"), storeDir: c.String("store")}
	var cfgToken func() (string, error)
	if path := c.String("config"); path != "" {
		cfg, err := LoadConfig(path)
		if err != nil {
			return t, fmt.Errorf("config: %w", err)
		}
		if t.addr == "" && cfg.Admin.Listen != "" {
			t.addr = dialable(cfg.Admin.Listen)
		}
		if t.storeDir == "" {
			t.storeDir = cfg.Store.Dir
		}
		cfgToken = cfg.Admin.token
		t.cfg = cfg
	}
	if t.addr == "" {
		t.addr = "http://" + admin.DefaultListen
	}
	var err error
	switch {
	case c.String("admin-token-file") != "":
		t.token, err = admin.LoadToken(c.String("admin-token-file"))
	case cfgToken != nil:
		t.token, err = cfgToken()
		if err == nil && t.token == "" {
			t.token, err = admin.LoadToken("")
		}
	default:
		t.token, err = admin.LoadToken("")
	}
	return t, err
}

// dialable turns a listen address into one to connect to: a wildcard host becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// noFlagsAfterArgs refuses `cmd ARG --flag`, which urfave/cli would take as two arguments
// (LIBRARY-NOTES D: flags after a positional argument are not parsed).
func noFlagsAfterArgs(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return cli.Exit(fmt.Sprintf("%s: flag %s after the arguments is not parsed: put flags before arguments (notifier %s [flags] %s)",
				c.Command.FullName(), a, c.Command.FullName(), c.Command.ArgsUsage), 2)
		}
	}
	return nil
}

// withSession runs fn with a connected session and closes it.
func withSession(fn func(c *cli.Context, s *session) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		s, err := connect(c)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(c, s)
	}
}

// ctxOf is the command's context (never nil).
func ctxOf(c *cli.Context) context.Context {
	if c.Context != nil {
		return c.Context
	}
	return context.Background()
}

// offlineSweeps reports the sweeps of the config's rules from the store's cursors; nil without
// a config. Rules that do not load leave the sweeps out (with a warning): status still works.
func offlineSweeps(cfg *Config, st *state.Store, stderr io.Writer) func() ([]admin.SweepView, error) {
	if cfg == nil {
		return nil
	}
	return func() ([]admin.SweepView, error) {
		set, err := rules.LoadDir(cfg.Rules.Dir, cfg.rulesOptions())
		if err != nil {
			fmt.Fprintf(stderr, "sweeps not shown: rules %s do not load: %v\n", cfg.Rules.Dir, err)
			return nil, nil
		}
		return sweepViews(sweep.Statuses(st, set, opsNow()))
	}
}
