package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"notifier/cdc"
	"notifier/rules"
	"notifier/sender"
)

// configCommands: config check.
func configCommands() []*cli.Command {
	return []*cli.Command{{
		Name:  "config",
		Usage: "check the service's config file",
		Subcommands: []*cli.Command{{
			Name: "check",
			Usage: "load the config as run does and check it without starting: source, store dir, rules, " +
				"channels and every secret they name; exit 2 with one line per problem",
			Description: `Decodes the file strictly and validates it, then checks what run checks before it reads the
binlog: the source password and settings, that store.dir is (or can be made) a directory, that
the rules of rules.dir compile against the configured channels, that every channel builds and
every secret ({env: VAR}, {file: PATH}, the admin token) resolves. Problems are printed as
file:line[:col]: message where the loader knows the position, else file: message; secret values
are never printed. It reads neither the database nor the store, so it also works while the
service runs; building the channels is what run does: a nats channel connects and is closed at
once, a file channel's file is created if missing.`,
			Flags:  []cli.Flag{configFlag()},
			Action: configCheck,
		}},
	}}
}

func configCheck(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("usage: notifier config check [--config FILE] (no arguments)", 2)
	}
	path := c.String("config")
	cfg, err := LoadConfig(path)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	set, problems := checkConfig(cfg)
	if len(problems) > 0 {
		return cli.Exit(strings.Join(problems, "\n"), 2)
	}
	fmt.Fprintf(c.App.Writer, "ok: %s: %d channels (%s), %s\n", path, len(cfg.Channels),
		strings.Join(slices.Sorted(maps.Keys(cfg.Channels)), ", "), rulesSummary(set))
	return nil
}

// checkConfig checks a loaded config as run uses it and returns every problem, one line each,
// in the order of the file's sections (the rules are nil when they do not load). A line the
// loader did not position is prefixed with the config file and the section.
func checkConfig(cfg *Config) (*rules.Set, []string) {
	var problems []string
	bad := func(section string, err error) {
		for line := range strings.Lines(err.Error()) {
			problems = append(problems, cfg.path+": "+section+strings.TrimSuffix(line, "\n"))
		}
	}
	set, rulesErr := checkRules(cfg.Rules.Dir, cfg.rulesOptions())

	password, err := cfg.Source.password()
	if err != nil {
		bad("", err)
	}
	include := cfg.Source.Include
	if len(include) == 0 && set != nil {
		include = set.Tables() // as run reads the binlog
	}
	r, err := cdc.New(cdc.Options{Addr: cfg.Source.Addr, User: cfg.Source.User, Password: password,
		Flavor: cfg.Source.Flavor, ServerID: cfg.Source.ServerID, Include: include, Exclude: cfg.Source.Exclude})
	if err != nil {
		bad("source: ", err)
	} else {
		_ = r.Close() // it has not connected: Run does
	}
	if err := checkStoreDir(cfg.Store.Dir); err != nil {
		bad("", err)
	}
	if rulesErr != nil { // positioned in the rule files
		problems = append(problems, strings.Split(rulesErr.Error(), "\n")...)
	}
	runtimes, err := sender.Build(cfg.Channels, sender.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		bad("", err) // one line per channel, naming it
	}
	for _, rt := range runtimes {
		_ = rt.Close()
	}
	if rc := cfg.Sender.Receipts; rc != nil {
		if _, err := rc.Secret.Resolve(); err != nil {
			bad("sender.receipts.secret: ", err)
		}
	}
	if cfg.Admin.Listen != "" { // run reads the token only for the admin server
		if _, err := cfg.Admin.token(); err != nil {
			bad("", err)
		}
	}
	return set, problems
}

// checkStoreDir reports whether state.Open could use dir without the service: an existing
// directory, or a path whose nearest existing parent is a directory (Badger creates the rest).
// The store is not opened: the running service may hold it.
func checkStoreDir(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return nil
		case err == nil:
			return fmt.Errorf("store.dir %s: %s is not a directory", dir, p)
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || filepath.Dir(p) == p:
			return fmt.Errorf("store.dir: %w", err)
		}
	}
}
