package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"notifier/admin"
	"notifier/cdc"
)

func checkpointCommand() *cli.Command {
	return &cli.Command{
		Name:  "checkpoint",
		Usage: "show or move the binlog checkpoint",
		Subcommands: []*cli.Command{
			{
				Name:   "show",
				Usage:  "show the stored checkpoint",
				Flags:  connFlags(),
				Action: withSession(runCheckpointShow),
			},
			{
				Name:      "set",
				Usage:     "move the checkpoint: the binlog is read again right after POSITION (needs --yes)",
				ArgsUsage: "POSITION",
				Description: `POSITION is "gtid:<set>", "file:<name>:<pos>", a bare GTID set or name:pos.
Flags go first: notifier checkpoint set --yes gtid:0-1-42
Moving back re-reads the binlog (safe: message keys are deterministic); moving forward SKIPS
the changes in between. Online the running service rewinds itself; offline (stopped) the store
is written.`,
				Flags: withConn(yesFlag(), flavorFlag()),
				Action: withSession(func(c *cli.Context, s *session) error {
					return runMoveCheckpoint(c, s, c.Args().First(), "checkpoint set")
				}),
			},
		},
	}
}

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "rewind the checkpoint so the binlog is read again from POSITION (without --yes: only say what it would do)",
		Description: `Deterministic message keys make a replay safe: a change already handled finds its message and
creates nothing; a rule added since then creates its messages. Online the running service
rewinds itself (if it supports it); otherwise stop it and run this offline (--store or --config).
  notifier replay --from gtid:0-1-10 --yes`,
		Flags: withConn(
			&cli.StringFlag{Name: "from", Required: true, Usage: "the position to re-read from (as checkpoint set)"},
			yesFlag(), flavorFlag(),
		),
		Action: withSession(func(c *cli.Context, s *session) error {
			if c.NArg() > 0 {
				return cli.Exit("replay: takes no arguments (the position is --from)", 2)
			}
			return runMoveCheckpoint(c, s, c.String("from"), "replay")
		}),
	}
}

func yesFlag() cli.Flag {
	return &cli.BoolFlag{Name: "yes", Usage: "really do it (without: print what would be done)"}
}

func flavorFlag() cli.Flag {
	return &cli.StringFlag{Name: "flavor", Usage: "mariadb or mysql, when the store has no checkpoint yet (default: the stored one's)"}
}

func runCheckpointShow(c *cli.Context, s *session) error {
	cp, err := s.api.Checkpoint(ctxOf(c))
	if err != nil {
		return err
	}
	if s.json {
		return writeJSON(s.out, cp)
	}
	printCheckpoint(s, cp)
	return nil
}

func printCheckpoint(s *session, cp admin.CheckpointView) {
	t := newTable(s.out)
	if !cp.Set {
		t.row("position", "none")
	} else {
		t.row("position", cp.Position)
		t.row("flavor", cp.Flavor)
		t.row("committed", fmtTime(cp.CommitTime))
	}
	t.flush()
}

// runMoveCheckpoint is checkpoint set and replay: check the position, print the plan, and with
// --yes move the checkpoint.
func runMoveCheckpoint(c *cli.Context, s *session, pos, what string) error {
	if pos == "" || (what == "checkpoint set" && c.NArg() != 1) {
		return cli.Exit(what+": want exactly one POSITION (flags first: notifier checkpoint set --yes POSITION)", 2)
	}
	p, err := cdc.ParsePosition(pos)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", what, err), 2)
	}
	cur, err := s.api.Checkpoint(ctxOf(c))
	if err != nil {
		return err
	}
	if !c.Bool("yes") {
		if s.json {
			return writeJSON(s.out, map[string]any{"dry_run": true, "old": cur, "new": p.String()})
		}
		t := newTable(s.out)
		t.row("current", orDash(cur.Position))
		t.row("would set", p.String())
		t.flush()
		fmt.Fprintln(s.out, `The binlog would be read again right after the new position. Changes already handled find
their messages by key and create nothing; rules added since create theirs. Nothing was changed:
run again with --yes to do it.`)
		return nil
	}
	ch, err := s.api.SetCheckpoint(ctxOf(c), p.String(), c.String("flavor"))
	if errors.Is(err, admin.ErrRewindUnsupported) {
		return fmt.Errorf("%s: the running service cannot move its checkpoint while it runs: stop it and run this again (offline, with --store or --config): %w", what, err)
	}
	if err != nil {
		return err
	}
	if !s.online {
		fmt.Fprintf(c.App.ErrWriter, "notifier: operator %s %s -> %s (offline)\n", what, orDash(ch.Old.Position), ch.New.Position)
	}
	if s.json {
		return writeJSON(s.out, ch)
	}
	t := newTable(s.out)
	t.row("was", orDash(ch.Old.Position))
	t.row("now", ch.New.Position)
	return t.flush()
}
