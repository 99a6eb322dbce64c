package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"notifier/admin"
)

func messagesCommand() *cli.Command {
	action := func(a admin.Action, usage string) *cli.Command {
		return &cli.Command{
			Name:      string(a),
			Usage:     usage,
			ArgsUsage: "KEY",
			Flags:     connFlags(),
			Action:    withSession(func(c *cli.Context, s *session) error { return runAct(c, s, a) }),
		}
	}
	return &cli.Command{
		Name:  "messages",
		Usage: "list, show, cancel, resend or drop messages",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list messages (recipients masked): in key order, or with --state by last update",
				Flags: withConn(
					&cli.StringFlag{Name: "state", Usage: "only this state: scheduled, ready, sending, sent, retry, dead, cancelled, uncertain, held, skipped"},
					&cli.StringFlag{Name: "rule", Usage: "only this rule"},
					&cli.StringFlag{Name: "to", Usage: "only this recipient (the full number or address)"},
					&cli.StringFlag{Name: "since", Usage: "updated at or after: RFC 3339, YYYY-MM-DD or a duration ago (24h)"},
					&cli.IntFlag{Name: "limit", Value: admin.DefaultLimit, Usage: "at most this many"},
					&cli.StringFlag{Name: "after", Usage: "start after this key (the next page)"},
				),
				Action: withSession(runMessagesList),
			},
			{
				Name:      "show",
				Usage:     "show one message: rule, row data, rendered text and every attempt",
				ArgsUsage: "KEY",
				Description: `The recipient is masked (also inside the row data and errors) unless --unmask is given:
  notifier messages show --unmask KEY`,
				Flags:  withConn(&cli.BoolFlag{Name: "unmask", Usage: "show the recipient in clear"}),
				Action: withSession(runMessagesShow),
			},
			action(admin.ActionCancel, "cancel a pending message (scheduled, ready, retry, held): it is never sent"),
			action(admin.ActionResend, "resend a dead, uncertain, held or cancelled message now (an explicit, logged decision: an uncertain one may have been delivered)"),
			action(admin.ActionDrop, "close an uncertain, dead or held message as cancelled, without sending"),
		},
	}
}

func runMessagesList(c *cli.Context, s *session) error {
	since, err := admin.ParseSince(c.String("since"), opsNow())
	if err != nil {
		return cli.Exit("--since: "+err.Error(), 2)
	}
	ms, err := s.api.Messages(ctxOf(c), admin.Query{
		State: c.String("state"), Rule: c.String("rule"), To: c.String("to"),
		Since: since, Limit: c.Int("limit"), After: c.String("after"),
	})
	if err != nil {
		return err
	}
	if s.json {
		return writeJSON(s.out, nonNil(ms))
	}
	return messageTable(s.out, ms, opsNow(), false)
}

// oneKey returns the single KEY argument.
func oneKey(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit(fmt.Sprintf("%s: want exactly one KEY, got %d arguments", c.Command.FullName(), c.NArg()), 2)
	}
	return c.Args().First(), nil
}

func runMessagesShow(c *cli.Context, s *session) error {
	key, err := oneKey(c)
	if err != nil {
		return err
	}
	m, err := s.api.Message(ctxOf(c), key, c.Bool("unmask"))
	if err != nil {
		return err
	}
	if s.json {
		return writeJSON(s.out, m)
	}
	t := newTable(s.out)
	t.row("key", m.Key)
	t.row("rule", m.Rule)
	t.row("channel", m.Channel)
	t.row("to", m.To)
	t.row("state", m.Status)
	t.row("attempts", fmt.Sprint(m.Attempts))
	t.row("created", fmtTime(m.CreatedAt))
	t.row("due", fmtTime(m.DueAt))
	t.row("updated", fmtTime(m.UpdatedAt))
	t.row("origin", m.Origin)
	for _, kv := range [][2]string{{"slot", m.Slot}, {"recheck", m.Recheck}, {"reason", m.Reason}, {"provider id", m.ProviderID}, {"last error", m.LastError}} {
		if kv[1] != "" {
			t.row(kv[0], kv[1])
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	section := func(title, body string) {
		if body == "" {
			return
		}
		fmt.Fprintf(s.out, "\n%s:\n", title)
		for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
			fmt.Fprintf(s.out, "  %s\n", line)
		}
	}
	section("subject", m.Subject)
	section("text", m.Text)
	section("html", m.HTML)
	if len(m.Data) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, m.Data, "", "  ") == nil {
			section("data", buf.String())
		}
	}
	fmt.Fprintf(s.out, "\nhistory:\n")
	if len(m.History) == 0 {
		fmt.Fprintln(s.out, "  none")
		return nil
	}
	h := newTable(s.out, "  AT", "STATE", "ERROR")
	for _, a := range m.History {
		h.row("  "+fmtTime(a.At), a.Status, a.Error)
	}
	return h.flush()
}

func runAct(c *cli.Context, s *session, a admin.Action) error {
	key, err := oneKey(c)
	if err != nil {
		return err
	}
	m, err := s.api.Act(ctxOf(c), a, key)
	if err != nil {
		return err
	}
	if !s.online {
		// Online, the service logs the action; offline, this is the record.
		fmt.Fprintf(c.App.ErrWriter, "notifier: operator %s of message %q (offline)\n", a, key)
	}
	if s.json {
		return writeJSON(s.out, m)
	}
	past := map[admin.Action]string{admin.ActionCancel: "cancelled", admin.ActionResend: "resent", admin.ActionDrop: "dropped"}[a]
	fmt.Fprintf(s.out, "%s %s: now %s\n", past, m.Key, m.Status)
	return nil
}

func timersCommand() *cli.Command {
	return &cli.Command{
		Name:  "timers",
		Usage: "the due index: scheduled, ready and retry-waiting messages, earliest first",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "list timers, earliest first",
			Flags: withConn(
				&cli.StringFlag{Name: "before", Usage: "only those due before: RFC 3339, YYYY-MM-DD or a duration from now (1h)"},
				&cli.IntFlag{Name: "limit", Value: admin.DefaultLimit, Usage: "at most this many"},
			),
			Action: withSession(func(c *cli.Context, s *session) error {
				before, err := admin.ParseUntil(c.String("before"), opsNow())
				if err != nil {
					return cli.Exit("--before: "+err.Error(), 2)
				}
				ms, err := s.api.Timers(ctxOf(c), before, c.Int("limit"))
				if err != nil {
					return err
				}
				if s.json {
					return writeJSON(s.out, nonNil(ms))
				}
				return messageTable(s.out, ms, opsNow(), false)
			}),
		}},
	}
}

// nonNil makes an empty list print as [] rather than null.
func nonNil(ms []admin.MessageView) []admin.MessageView {
	if ms == nil {
		return []admin.MessageView{}
	}
	return ms
}
