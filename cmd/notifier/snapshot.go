package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/driver"
	"github.com/urfave/cli/v2"

	"notifier/cdc"
	"notifier/rules"
	"notifier/snapshot"
	"notifier/state"
	"notifier/sweep"
)

// SnapshotConfig is the "snapshot:" section of the config (issue 7; to be added to Config as
// the field Snapshot with the yaml tag "snapshot").
type SnapshotConfig struct {
	// Initial takes the snapshot of the tables whose rules opt in to op `snapshot` when the
	// store has no checkpoint yet (first start). Default true.
	Initial *bool `yaml:"initial"`
	// RowsPerSecond caps the rows read from the replica per second (0: no cap). Default 20000.
	RowsPerSecond *int `yaml:"rows_per_second"`
	// PageSize is rows per SELECT and per store transaction (default 1000).
	PageSize int `yaml:"page_size"`
}

// SweepsConfig is the "sweeps:" section of the config (issue 7; to be added to Config as the
// field Sweeps with the yaml tag "sweeps").
type SweepsConfig struct {
	RowsPerSecond int           `yaml:"rows_per_second"` // per run; 0: no cap
	PageSize      int           `yaml:"page_size"`       // default 1000
	CatchUp       time.Duration `yaml:"catch_up"`        // a tick missed while down runs late within this (default 1h)
}

func (s SnapshotConfig) initial() bool { return s.Initial == nil || *s.Initial }

func (s SnapshotConfig) rate() int {
	if s.RowsPerSecond == nil {
		return 20000
	}
	return *s.RowsPerSecond
}

// snapshotCommands are `notifier snapshot` and `notifier sweep`.
func snapshotCommands() []*cli.Command {
	return []*cli.Command{snapshotCommand(), sweepCommand()}
}

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "rebuild messages and reminders from the current rows of tables (service stopped)",
		Description: `Reads the tables in primary-key order in a consistent snapshot of the replica and passes
every row to the rules that opt in to op "snapshot", without re-sending anything already
created (message keys). An interrupted snapshot is resumed first.

Recovery after "binlog position no longer on the server" (purged binlog): stop the service, run
` + "`notifier snapshot --all`" + ` (it also moves the checkpoint to the snapshot's position), start the
service. --table re-snapshots some tables and keeps a valid checkpoint.`,
		Flags: []cli.Flag{
			configFlag(), logLevelFlag(),
			&cli.StringSliceFlag{Name: "table", Usage: "snapshot `SCHEMA.TABLE` (repeatable)"},
			&cli.BoolFlag{Name: "all", Usage: "snapshot every table whose rules opt in to op snapshot, and move the checkpoint"},
			&cli.IntFlag{Name: "rows-per-second", Value: -1, Usage: "cap on rows read per second (default: snapshot.rows_per_second)"},
		},
		Subcommands: []*cli.Command{{
			Name:  "status",
			Usage: "show the last snapshot run and its tables' cursors",
			Flags: []cli.Flag{configFlag()},
			Action: func(c *cli.Context) error {
				env, err := openOffline(c, false)
				if err != nil {
					return err
				}
				defer env.Close()
				return printSnapshotStatus(c, env.store)
			},
		}},
		Action: func(c *cli.Context) error {
			tables, all := c.StringSlice("table"), c.Bool("all")
			if all == (len(tables) > 0) {
				return cli.Exit("snapshot: give --table SCHEMA.TABLE (repeatable) or --all", 2)
			}
			sc := SnapshotConfig{}
			if r := c.Int("rows-per-second"); r >= 0 {
				sc.RowsPerSecond = &r
			}
			env, err := openOffline(c, true)
			if err != nil {
				return err
			}
			defer env.Close()
			cfg, st, set := env.cfg, env.store, env.rules
			_, hasCP, err := st.Checkpoint()
			if err != nil {
				return err
			}
			if all {
				if tables, err = snapshotTables(c.Context, cfg, set); err != nil {
					return err
				}
			}
			res, err := runSnapshot(c.Context, cfg, sc, st, set, tables, all || !hasCP, env.log, nil)
			if err != nil {
				return err
			}
			for _, p := range res.Tables {
				fmt.Fprintf(c.App.Writer, "%-40s %10d rows  position %s\n", p.Table, p.Rows, p.Position)
			}
			cp, _, _ := st.Checkpoint()
			fmt.Fprintf(c.App.Writer, "snapshot finished (resumed: %v); checkpoint %s\n", res.Resumed, cp.Position)
			return nil
		},
	}
}

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:  "sweep",
		Usage: "run a sweep now, or show the sweeps' last runs",
		Subcommands: []*cli.Command{{
			Name:      "run",
			Usage:     "run (or resume) the sweep NAME for a tick (service stopped)",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{configFlag(), logLevelFlag(),
				&cli.TimestampFlag{Name: "at", Layout: time.RFC3339, Usage: "the tick (`RFC3339`); default the latest tick up to now"}},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("sweep run: give the sweep NAME", 2)
				}
				env, err := openOffline(c, true)
				if err != nil {
					return err
				}
				defer env.Close()
				set := env.rules
				s, err := newSweeps(env.cfg, SweepsConfig{}, env.store, set, env.log, nil)
				if err != nil {
					return err
				}
				tick := time.Now()
				if at := c.Timestamp("at"); at != nil {
					tick = *at
				} else if tick, err = latestTick(set, c.Args().First(), tick); err != nil {
					return err
				}
				res, err := s.RunOnce(c.Context, c.Args().First(), tick)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "sweep %s run %s: %d rows, %d messages created (resumed %v, already done %v)\n",
					res.Sweep, res.Tick.Format(time.RFC3339), res.Rows, res.Messages, res.Resumed, res.Already)
				return nil
			},
		}, {
			Name:  "status",
			Usage: "show each sweep's schedule, next tick and last run",
			Flags: []cli.Flag{configFlag()},
			Action: func(c *cli.Context) error {
				env, err := openOffline(c, true)
				if err != nil {
					return err
				}
				defer env.Close()
				sts, err := sweep.Statuses(env.store, env.rules, time.Now())
				if err != nil {
					return err
				}
				printSweepStatus(c, sts)
				return nil
			},
		}},
	}
}

// runSnapshot runs (or resumes) a snapshot of tables through a cdc reader of the source.
func runSnapshot(ctx context.Context, cfg *Config, sc SnapshotConfig, st *state.Store, set *rules.Set,
	tables []string, moveCheckpoint bool, log *slog.Logger, kick func()) (snapshot.Result, error) {
	password, err := cfg.Source.password()
	if err != nil {
		return snapshot.Result{}, err
	}
	r, err := cdc.New(cdc.Options{Addr: cfg.Source.Addr, User: cfg.Source.User, Password: password,
		Flavor: cfg.Source.Flavor, ServerID: cfg.Source.ServerID, SnapshotRowsPerSecond: sc.rate(),
		Logger: log.With("component", "cdc")})
	if err != nil {
		return snapshot.Result{}, fmt.Errorf("snapshot reader: %w", err)
	}
	defer r.Close()
	s, err := snapshot.New(snapshot.Options{Source: r, Store: st, Rules: set, Tables: tables,
		MoveCheckpoint: moveCheckpoint, Flavor: cfg.Source.Flavor, PageSize: sc.PageSize, Kick: kick,
		Logger: log.With("component", "snapshot"),
		OnProgress: func(p snapshot.Progress) {
			if p.Done {
				log.Info("snapshot table finished", "table", p.Table, "rows", p.Rows, "position", p.Position.String())
			}
		}})
	if err != nil {
		return snapshot.Result{}, err
	}
	return s.Run(ctx)
}

// SnapshotBeforeStreaming is the service's start hook (run.go, after the store is open and
// before the binlog is read): it finishes an interrupted snapshot, and on a first start (no
// checkpoint) takes the initial snapshot of the tables whose rules opt in to op `snapshot`,
// storing its position as the checkpoint the binlog is then read from.
func SnapshotBeforeStreaming(ctx context.Context, cfg *Config, sc SnapshotConfig, st *state.Store, set *rules.Set,
	log *slog.Logger, kick func()) error {
	pending, _, err := snapshot.Pending(st)
	if err != nil {
		return err
	}
	_, hasCP, err := st.Checkpoint()
	if err != nil {
		return err
	}
	var tables []string
	if !pending {
		if hasCP || !sc.initial() || len(snapshot.TablesFor(set)) == 0 {
			return nil // not a first start, or nothing opts in: stream from the current position
		}
		if tables, err = snapshotTables(ctx, cfg, set); err != nil {
			return err
		}
	}
	_, err = runSnapshot(ctx, cfg, sc, st, set, tables, !hasCP, log, kick)
	return err
}

// newSweeps builds the sweep scheduler of the service (run.go: go s.Run(ctx); SetRules on reload).
func newSweeps(cfg *Config, wc SweepsConfig, st *state.Store, set *rules.Set, log *slog.Logger, kick func()) (*sweep.Scheduler, error) {
	password, err := cfg.Source.password()
	if err != nil {
		return nil, err
	}
	return sweep.New(sweep.Options{Addr: cfg.Source.Addr, User: cfg.Source.User, Password: password, Store: st,
		Rules: set, PageSize: wc.PageSize, RowsPerSecond: wc.RowsPerSecond, CatchUp: wc.CatchUp, Kick: kick,
		Logger: log.With("component", "sweep")})
}

// latestTick is the latest tick of sweep name at or before now.
func latestTick(set *rules.Set, name string, now time.Time) (time.Time, error) {
	for _, sw := range set.Sweeps {
		if sw.Name != name {
			continue
		}
		t := sw.Next(now.AddDate(-1, 0, -1))
		var last time.Time
		for i := 0; !t.After(now) && i < 600_000; i++ {
			last, t = t, sw.Next(t)
		}
		if last.IsZero() {
			return last, fmt.Errorf("sweep %q has no tick in the last year: give --at", name)
		}
		return last, nil
	}
	return time.Time{}, fmt.Errorf("sweep %q: %w", name, sweep.ErrUnknownSweep)
}

// snapshotTables expands the table patterns of the rules that opt in to op `snapshot` to the
// replica's tables.
func snapshotTables(ctx context.Context, cfg *Config, set *rules.Set) ([]string, error) {
	patterns := snapshot.TablesFor(set)
	if len(patterns) == 0 {
		return nil, errors.New("snapshot: no rule opts in to op snapshot")
	}
	password, err := cfg.Source.password()
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(driver.Connector{Addr: cfg.Source.Addr, User: cfg.Source.User, Password: password})
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("snapshot: list tables on %s: %w", cfg.Source.Addr, err)
	}
	defer rows.Close()
	var res []*regexp.Regexp
	for _, p := range patterns {
		parts := strings.Split(p, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		res = append(res, regexp.MustCompile("^"+strings.Join(parts, ".*")+"$"))
	}
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("snapshot: list tables: %w", err)
		}
		for _, re := range res {
			if re.MatchString(name) {
				out = append(out, name)
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: list tables: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("snapshot: no table on %s matches %v", cfg.Source.Addr, patterns)
	}
	return out, nil
}

func printSnapshotStatus(c *cli.Context, st *state.Store) error {
	run, tables, ok, err := snapshot.Status(st)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if !ok {
		fmt.Fprintln(w, "no snapshot has run")
		return nil
	}
	state := "finished " + run.Finished.Format(time.RFC3339)
	if !run.Done {
		state = "INTERRUPTED (run `notifier snapshot` or start the service to resume)"
	}
	fmt.Fprintf(w, "snapshot started %s, %s, position %s\n", run.Started.Format(time.RFC3339), state, run.Position)
	for _, t := range run.Tables {
		ts := tables[t]
		fmt.Fprintf(w, "  %-40s %10d rows  done %-5v  after %s\n", t, ts.Rows, ts.Done, ts.After.String())
	}
	return nil
}

func printSweepStatus(c *cli.Context, sts []sweep.Status) {
	w := c.App.Writer
	if len(sts) == 0 {
		fmt.Fprintln(w, "no sweeps in the rules")
	}
	for _, s := range sts {
		last := "never ran"
		if s.HasRun {
			last = fmt.Sprintf("last run %s: %d rows, %d messages, done %v", s.Last.Tick.Format(time.RFC3339),
				s.Last.Rows, s.Last.Messages, s.Last.Done)
		}
		fmt.Fprintf(w, "%-24s %-16q next %s  %s\n", s.Name, s.Schedule, s.Next.Format(time.RFC3339), last)
	}
}
