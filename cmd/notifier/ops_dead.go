package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"

	"notifier/admin"
)

func deadCommand() *cli.Command {
	bulk := func(name string, a admin.Action, usage string) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "KEY... | --all",
			Flags:     withConn(&cli.BoolFlag{Name: "all", Usage: "every dead letter"}),
			Action:    withSession(func(c *cli.Context, s *session) error { return runDeadAct(c, s, name, a) }),
		}
	}
	return &cli.Command{
		Name:  "dead",
		Usage: "dead letters: messages a provider refused for good, or whose template failed",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list dead letters with their reason and last error",
				Flags: withConn(
					&cli.StringFlag{Name: "rule", Usage: "only this rule"},
					&cli.IntFlag{Name: "limit", Value: admin.DefaultLimit, Usage: "at most this many"},
					&cli.StringFlag{Name: "after", Usage: "start after this key (the next page)"},
				),
				Action: withSession(func(c *cli.Context, s *session) error {
					ms, err := s.api.Messages(ctxOf(c), admin.Query{State: "dead", Rule: c.String("rule"), Limit: c.Int("limit"), After: c.String("after")})
					if err != nil {
						return err
					}
					if s.json {
						return writeJSON(s.out, nonNil(ms))
					}
					return messageTable(s.out, ms, opsNow(), true)
				}),
			},
			bulk("retry", admin.ActionResend, "send dead letters again now (after fixing the cause)"),
			bulk("drop", admin.ActionDrop, "close dead letters as cancelled"),
		},
	}
}

func runDeadAct(c *cli.Context, s *session, name string, a admin.Action) error {
	keys, all := c.Args().Slice(), c.Bool("all")
	if all == (len(keys) > 0) {
		return cli.Exit(fmt.Sprintf("dead %s: give KEY... or --all (before any key), not both or neither", name), 2)
	}
	res, err := s.api.DeadAct(ctxOf(c), a, keys, all)
	if err != nil {
		return err
	}
	if !s.online {
		fmt.Fprintf(c.App.ErrWriter, "notifier: operator dead %s of %d message(s) (offline)\n", name, len(res.Done))
	}
	if s.json {
		if err := writeJSON(s.out, res); err != nil {
			return err
		}
	} else {
		past := map[string]string{"retry": "retried", "drop": "dropped"}[name]
		for _, k := range res.Done {
			fmt.Fprintf(s.out, "%s %s\n", past, k)
		}
		failed := make([]string, 0, len(res.Failed))
		for k := range res.Failed {
			failed = append(failed, k)
		}
		slices.Sort(failed)
		for _, k := range failed {
			fmt.Fprintf(s.out, "failed %s: %s\n", k, res.Failed[k])
		}
		fmt.Fprintf(s.out, "%d %s, %d failed\n", len(res.Done), past, len(res.Failed))
	}
	if len(res.Failed) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}
