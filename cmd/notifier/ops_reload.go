package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "ask the running service to re-read its rules (POST /-/reload); refused rules leave the old ones running",
		Description: `Needs the running service (online). Prints the new rules hash, or every problem as
file:line:col: message and exits 2 (the service keeps its previous rules).`,
		Flags: connFlags(),
		Action: withSession(func(c *cli.Context, s *session) error {
			if s.client == nil {
				return fmt.Errorf("reload: the service is not running (offline: store %s); rules are read when it starts", c.String("store"))
			}
			res, err := s.client.Reload(ctxOf(c))
			if err != nil {
				return err
			}
			if s.json {
				if err := writeJSON(s.out, res); err != nil {
					return err
				}
			} else if res.OK {
				fmt.Fprintf(s.out, "reloaded: rules hash %s\n", orDash(res.Hash))
			} else {
				fmt.Fprintln(s.out, "refused, the previous rules stay:")
				for _, e := range res.Errors {
					fmt.Fprintln(s.out, e)
				}
			}
			if !res.OK {
				return cli.Exit("", 2)
			}
			return nil
		}),
	}
}
