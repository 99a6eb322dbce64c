package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"notifier/admin"
)

// table writes aligned columns: two spaces between them, "-" for an empty cell.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		// A tab or newline inside a cell would break the alignment.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(cells[i])
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// writeJSON prints v indented, for --output json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// fmtTime prints a time in UTC to the second; "" for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// fmtRel prints t relative to now: "in 5m0s", "3s ago".
func fmtRel(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > 0:
		return "in " + d.String()
	case d < 0:
		return (-d).String() + " ago"
	}
	return "now"
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// clip shortens s to n runes for a table cell.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// messageTable is the list view shared by messages list, timers list and dead list.
func messageTable(w io.Writer, ms []admin.MessageView, now time.Time, withError bool) error {
	header := []string{"KEY", "RULE", "CHANNEL", "TO", "STATE", "ATTEMPTS", "DUE", "UPDATED"}
	if withError {
		header = []string{"KEY", "RULE", "CHANNEL", "TO", "ATTEMPTS", "UPDATED", "REASON", "LAST ERROR"}
	}
	t := newTable(w, header...)
	for _, m := range ms {
		if withError {
			t.row(m.Key, m.Rule, m.Channel, m.To, fmt.Sprint(m.Attempts), fmtTime(m.UpdatedAt), m.Reason, clip(m.LastError, 60))
			continue
		}
		due := ""
		if pendingState(m.Status) && !m.DueAt.IsZero() {
			due = fmtTime(m.DueAt)
			due += " (" + fmtRel(m.DueAt, now) + ")"
		}
		t.row(m.Key, m.Rule, m.Channel, m.To, m.Status, fmt.Sprint(m.Attempts), due, fmtTime(m.UpdatedAt))
	}
	return t.flush()
}

// pendingState reports a state whose due time still matters.
func pendingState(st string) bool {
	switch st {
	case "scheduled", "ready", "retry", "held", "sending":
		return true
	}
	return false
}
