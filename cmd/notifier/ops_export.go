package main

import (
	"bufio"
	"encoding/json"

	"github.com/urfave/cli/v2"

	"notifier/admin"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write messages as JSON lines, for audits (recipients masked unless --unmask)",
		Description: `One JSON object per line: key, rule, channel, to, status, attempts, times, subject, text,
data (the template data), errors and history. Masked, the recipient is hidden wherever it
appears verbatim; other personal data in the row data is exported as stored.`,
		Flags: withConn(
			&cli.StringFlag{Name: "since", Usage: "updated at or after: RFC 3339, YYYY-MM-DD or a duration ago (24h)"},
			&cli.StringFlag{Name: "state", Usage: "only this state"},
			&cli.StringFlag{Name: "rule", Usage: "only this rule"},
			&cli.BoolFlag{Name: "unmask", Usage: "export recipients in clear"},
		),
		Action: withSession(func(c *cli.Context, s *session) error {
			since, err := admin.ParseSince(c.String("since"), opsNow())
			if err != nil {
				return cli.Exit("--since: "+err.Error(), 2)
			}
			w := bufio.NewWriterSize(s.out, 64<<10)
			enc := json.NewEncoder(w)
			err = s.api.Export(ctxOf(c), admin.Query{
				State: c.String("state"), Rule: c.String("rule"), Since: since, Unmask: c.Bool("unmask"),
			}, func(m admin.MessageView) error { return enc.Encode(m) })
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		}),
	}
}
