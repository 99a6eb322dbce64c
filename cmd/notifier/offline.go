package main

// Commands that work on the service's state while it is stopped (snapshot, sweep, the operator
// commands in offline mode, run --dry-run) open the store directly: Badger allows one process,
// so a store the running service holds is refused with state.ErrInUse, whose text says so and
// points at the admin API.

import (
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"notifier/rules"
	"notifier/state"
)

// openStoreOffline opens the store in dir for a command run while the service is stopped. cfg
// (nil without a config) gives the store options the service uses; log receives Badger's
// warnings. The error is state.Open's, for the caller to put in its context.
func openStoreOffline(dir string, cfg *Config, log *slog.Logger) (*state.Store, error) {
	opts := state.Options{Dir: dir, Logger: log}
	if cfg != nil {
		opts.DedupeHorizon = cfg.Store.DedupeHorizon
	}
	return state.Open(opts)
}

// offlineEnv is what an offline command of a config works on: the config, its logger, its
// store and (when asked for) its rules. Close closes the store.
type offlineEnv struct {
	cfg   *Config
	log   *slog.Logger
	store *state.Store
	rules *rules.Set // nil unless openOffline was asked for the rules
}

// openOffline loads --config (with --log-level, where the command has it), opens the config's
// store and, withRules, loads its rules, in that order; the first failure is returned.
func openOffline(c *cli.Context, withRules bool) (*offlineEnv, error) {
	cfg, log, err := loadForCommand(c)
	if err != nil {
		return nil, err
	}
	st, err := openStoreOffline(cfg.Store.Dir, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("open store %s (stop the service first): %w", cfg.Store.Dir, err)
	}
	env := &offlineEnv{cfg: cfg, log: log, store: st}
	if withRules {
		if env.rules, err = loadConfigRules(cfg); err != nil {
			_ = st.Close()
			return nil, err
		}
	}
	return env, nil
}

// Close closes the store.
func (e *offlineEnv) Close() error { return e.store.Close() }

// loadForCommand loads --config and builds the logger its log settings (and --log-level) ask
// for; a problem is a usage error (exit 2).
func loadForCommand(c *cli.Context) (*Config, *slog.Logger, error) {
	cfg, err := LoadConfig(c.String("config"))
	if err != nil {
		return nil, nil, cli.Exit(err.Error(), 2)
	}
	if lvl := c.String("log-level"); lvl != "" {
		cfg.Log.Level = lvl
	}
	log, err := newLogger(c.App.ErrWriter, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return nil, nil, cli.Exit(err.Error(), 2)
	}
	return cfg, log, nil
}

// loadConfigRules loads the config's rule directory; broken rules are a usage error (exit 2)
// listing every problem.
func loadConfigRules(cfg *Config) (*rules.Set, error) {
	set, err := rules.LoadDir(cfg.Rules.Dir, cfg.rulesOptions())
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("rules %s:\n%v", cfg.Rules.Dir, err), 2)
	}
	return set, nil
}
