package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"notifier/admin"
	"notifier/snapshot"
	"notifier/state"
	"notifier/sweep"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the binlog position and lag, the rules loaded, the snapshot and sweeps, message counts by state and the due index",
		Description: `Online, the service reports its binlog connection, lag and rules; offline (service stopped)
only what the store knows is shown (the sweeps only with --config, which names the rules).`,
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
	t.row("snapshot", snapshotLine(r.Snapshot))
	if err := t.flush(); err != nil {
		return err
	}
	if len(r.Sweeps) > 0 {
		fmt.Fprintln(s.out)
		wt := newTable(s.out, "SWEEP", "SCHEDULE", "NEXT", "LAST RUN", "STATE", "ROWS", "MESSAGES")
		for _, w := range r.Sweeps {
			last, st, rows, msgs := "never", "-", "-", "-"
			if w.HasRun {
				last, rows, msgs = fmtTime(w.Tick), fmt.Sprint(w.Rows), fmt.Sprint(w.Messages)
				st = "unfinished"
				if w.Done {
					st = "done"
				}
			}
			if w.Running {
				st = "running"
			}
			wt.row(w.Name, w.Schedule, fmtTime(w.Next), last, st, rows, msgs)
		}
		if err := wt.flush(); err != nil {
			return err
		}
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

// snapshotLine is the status line of the last snapshot run.
func snapshotLine(v *admin.SnapshotView) string {
	if v == nil {
		return "never run"
	}
	var rows int64
	done := 0
	for _, t := range v.Tables {
		rows += t.Rows
		if t.Done {
			done++
		}
	}
	if v.Done {
		return fmt.Sprintf("done, %d tables, %d rows, finished %s", len(v.Tables), rows, fmtTime(v.Finished))
	}
	return fmt.Sprintf("unfinished (resumes at the next start): %d/%d tables done, %d rows so far, started %s",
		done, len(v.Tables), rows, fmtTime(v.Started))
}

// snapshotStatus reads the last snapshot run from the store's cursors (nil: never run).
func snapshotStatus(st snapshot.Store) (*admin.SnapshotView, error) {
	run, tables, ok, err := snapshot.Status(st)
	if err != nil || !ok {
		return nil, err
	}
	v := &admin.SnapshotView{Done: run.Done, Position: run.Position, Started: run.Started, Finished: run.Finished,
		Tables: make([]admin.SnapshotTableView, 0, len(run.Tables))}
	for _, name := range run.Tables {
		ts := tables[name]
		v.Tables = append(v.Tables, admin.SnapshotTableView{Table: name, Rows: ts.Rows, Done: ts.Done})
	}
	return v, nil
}

// sweepViews turns the sweeps' status into the API's view.
func sweepViews(sts []sweep.Status, err error) ([]admin.SweepView, error) {
	if err != nil {
		return nil, err
	}
	var out []admin.SweepView
	for _, s := range sts {
		out = append(out, admin.SweepView{Name: s.Name, Schedule: s.Schedule, Next: s.Next, Running: s.Running,
			HasRun: s.HasRun, Tick: s.Last.Tick, Done: s.Last.Done, Rows: s.Last.Rows, Messages: s.Last.Messages,
			Started: s.Last.Started, Finished: s.Last.Finished})
	}
	return out, nil
}
