package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"notifier/admin"
	"notifier/state"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the binlog position and lag, the rules loaded, message counts by state and the due index",
		Description: `Online, the service reports its binlog connection, lag and rules; offline (service stopped)
only what the store knows is shown.`,
		Flags:  connFlags(),
		Action: withSession(runStatus),
	}
}

func runStatus(c *cli.Context, s *session) error {
	r, err := s.api.Status(ctxOf(c))
	if err != nil {
		return err
	}
	if s.json {
		return writeJSON(s.out, r)
	}
	return printStatus(s, r, opsNow())
}

func printStatus(s *session, r admin.StatusReport, now time.Time) error {
	t := newTable(s.out)
	if sv := r.Service; sv != nil {
		t.row("service", fmt.Sprintf("running, version %s, started %s", sv.Version, fmtTime(sv.StartedAt)))
		conn := "disconnected"
		if sv.BinlogConnected {
			conn = "connected"
		}
		t.row("binlog", fmt.Sprintf("%s, lag %s", conn, sv.Lag.Round(time.Millisecond)))
		t.row("rules", fmt.Sprintf("%d loaded, hash %s", sv.RulesLoaded, orDash(sv.RulesHash)))
		if sv.LastReloadError != "" {
			t.row("last reload", "FAILED: "+sv.LastReloadError)
		}
		if len(sv.PausedRules) > 0 {
			t.row("paused rules", strings.Join(sv.PausedRules, ", "))
		}
	} else {
		t.row("service", "stopped (offline: read from the store)")
	}
	if cp := r.Checkpoint; cp.Set {
		t.row("position", cp.Position)
		t.row("flavor", cp.Flavor)
		committed := fmtTime(cp.CommitTime)
		if committed != "" {
			committed += " (" + fmtRel(cp.CommitTime, now) + ")"
		}
		t.row("committed", committed)
	} else {
		t.row("position", "none yet (starts from the server's current position or a snapshot)")
	}
	due := fmt.Sprintf("%d entries", r.DueIndexSize)
	if !r.OldestDue.IsZero() {
		due += ", oldest due " + fmtTime(r.OldestDue) + " (" + fmtRel(r.OldestDue, now) + ")"
	}
	t.row("due index", due)
	t.row("store", fmt.Sprintf("lsm %s, vlog %s", fmtBytes(r.StoreLSM), fmtBytes(r.StoreVLog)))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(s.out)
	ct := newTable(s.out, "STATE", "MESSAGES")
	for _, st := range state.Statuses() {
		ct.row(st.String(), fmt.Sprint(r.Counts[st.String()]))
	}
	return ct.flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
