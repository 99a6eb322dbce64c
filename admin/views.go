package admin

import (
	"encoding/json"
	"strings"
	"time"

	"notifier/render"
	"notifier/state"
)

// Status is what the running service reports about itself; the integrator provides it through
// Options.Status. The admin server adds what the store knows (checkpoint, counts, due index).
type Status struct {
	Version         string        `json:"version,omitempty"`
	StartedAt       time.Time     `json:"started_at,omitzero"`
	BinlogConnected bool          `json:"binlog_connected"`
	Lag             time.Duration `json:"lag_ns"` // replication lag as the pipeline measures it; 0 when caught up
	Position        string        `json:"position,omitempty"`
	RulesLoaded     int           `json:"rules_loaded"`
	RulesHash       string        `json:"rules_hash,omitempty"`
	LastReload      time.Time     `json:"last_reload,omitzero"`
	LastReloadError string        `json:"last_reload_error,omitempty"`
	PausedRules     []string      `json:"paused_rules,omitempty"` // rules held by the blast-radius guard
	Draining        bool          `json:"draining,omitempty"`
}

// StatusReport is the answer of GET /api/v1/status and of `notifier status`.
type StatusReport struct {
	// Service is what the running service says; nil in offline mode (the service is stopped).
	Service      *Status        `json:"service,omitempty"`
	Checkpoint   CheckpointView `json:"checkpoint"`
	Counts       map[string]int `json:"counts"` // by message state name, every state present
	DueIndexSize int            `json:"due_index_size"`
	OldestDue    time.Time      `json:"oldest_due,omitzero"`
	StoreLSM     int64          `json:"store_lsm_bytes"`
	StoreVLog    int64          `json:"store_vlog_bytes"`
	// Snapshot is the last snapshot run; nil when none was ever taken (or not reported).
	Snapshot *SnapshotView `json:"snapshot,omitempty"`
	// Sweeps are the sweeps of the rules in force, by name; empty when there are none (or,
	// offline, when no config names the rules).
	Sweeps []SweepView `json:"sweeps,omitempty"`
}

// SnapshotView is the stored state of the last snapshot run (snapshot cursors).
type SnapshotView struct {
	Done     bool                `json:"done"`
	Position string              `json:"position,omitempty"` // binlog position the run started at
	Started  time.Time           `json:"started,omitzero"`
	Finished time.Time           `json:"finished,omitzero"`
	Tables   []SnapshotTableView `json:"tables"` // in the run's order
}

// SnapshotTableView is one table of a snapshot run.
type SnapshotTableView struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"` // rows committed so far
	Done  bool   `json:"done"`
}

// SweepView is a sweep's schedule and its current or last run.
type SweepView struct {
	Name     string    `json:"name"`
	Schedule string    `json:"schedule"`
	Next     time.Time `json:"next,omitzero"` // the next tick
	Running  bool      `json:"running,omitempty"`
	// The current or last run; zero (HasRun false) when the sweep never ran.
	HasRun   bool      `json:"has_run"`
	Tick     time.Time `json:"tick,omitzero"` // the run's scheduled time
	Done     bool      `json:"done,omitempty"`
	Rows     int64     `json:"rows,omitempty"`
	Messages int64     `json:"messages,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// CheckpointView is the stored binlog checkpoint. Set is false when the store has none yet (the
// service starts from the server's current position or a snapshot).
type CheckpointView struct {
	Set        bool      `json:"set"`
	Flavor     string    `json:"flavor,omitempty"`
	Position   string    `json:"position,omitempty"`
	CommitTime time.Time `json:"commit_time,omitzero"`
}

// CheckpointChange is the answer of PUT /api/v1/checkpoint: the checkpoint before and after.
type CheckpointChange struct {
	Old CheckpointView `json:"old"`
	New CheckpointView `json:"new"`
}

// AttemptView is one entry of a message's history.
type AttemptView struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Error  string    `json:"error,omitempty"`
}

// MessageView is a message as the API and the CLI show it. To is masked (render.Mask) unless the
// caller asked for unmasked output; the masked form also replaces the recipient wherever it
// appears verbatim in Data, Text, Subject, HTML and errors.
type MessageView struct {
	Key        string          `json:"key"`
	Rule       string          `json:"rule"`
	Channel    string          `json:"channel"`
	To         string          `json:"to"`
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	CreatedAt  time.Time       `json:"created_at,omitzero"`
	DueAt      time.Time       `json:"due_at,omitzero"`
	UpdatedAt  time.Time       `json:"updated_at,omitzero"`
	Subject    string          `json:"subject,omitempty"`
	Text       string          `json:"text,omitempty"`
	HTML       string          `json:"html,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	LastError  string          `json:"last_error,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	ProviderID string          `json:"provider_id,omitempty"`
	Origin     string          `json:"origin,omitempty"`
	Slot       string          `json:"slot,omitempty"`
	Recheck    string          `json:"recheck,omitempty"`
	History    []AttemptView   `json:"history,omitempty"`
}

// BulkResult is the answer of a bulk dead-letter action: the keys done and, per key, why one
// was not.
type BulkResult struct {
	Done   []string          `json:"done"`
	Failed map[string]string `json:"failed,omitempty"`
}

// ReloadResult is the answer of POST /-/reload.
type ReloadResult struct {
	OK     bool     `json:"ok"`
	Hash   string   `json:"hash,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Query selects messages for a list or an export. Zero fields do not filter.
type Query struct {
	State  string    // a state name (state.Status.String)
	Rule   string    //
	To     string    // the full recipient, compared exactly
	Since  time.Time // last updated at or after
	Limit  int       // 0 = DefaultLimit for lists, everything for exports
	After  string    // resume after this key (paging)
	Unmask bool      // show recipients in clear
}

// DefaultLimit is the number of messages a list returns when no limit is given.
const DefaultLimit = 100

// MaxLimit caps one page of a list; export pages through everything.
const MaxLimit = 10000

// viewMessage turns a stored message into its view; full adds the text, data and history.
func viewMessage(m *state.Message, full, unmask bool) MessageView {
	v := MessageView{
		Key: m.Key, Rule: m.Rule, Channel: m.Channel, To: m.To,
		Status: m.Status.String(), Attempts: m.Attempts,
		CreatedAt: m.CreatedAt, DueAt: m.DueAt, UpdatedAt: m.UpdatedAt,
		LastError: m.LastError, Reason: m.Reason, ProviderID: m.ProviderID,
		Origin: m.Origin, Slot: m.Slot, Recheck: m.Recheck,
	}
	if full {
		v.Subject, v.Text, v.HTML = m.Subject, m.Text, m.HTML
		if len(m.Data) > 0 && json.Valid(m.Data) {
			v.Data = json.RawMessage(m.Data)
		}
		for _, a := range m.History {
			v.History = append(v.History, AttemptView{At: a.At, Status: a.Status.String(), Error: a.Error})
		}
	}
	if !unmask {
		maskView(&v, m.To)
	}
	return v
}

// maskView replaces the recipient by its masked form everywhere it appears verbatim. A recipient
// also hides in the row data (the rule read it from a column) and in provider errors that echo it.
func maskView(v *MessageView, to string) {
	masked := render.Mask(to)
	v.To = masked
	if to == "" || len(to) < 3 {
		return
	}
	r := strings.NewReplacer(to, masked)
	v.Subject, v.Text, v.HTML = r.Replace(v.Subject), r.Replace(v.Text), r.Replace(v.HTML)
	v.LastError = r.Replace(v.LastError)
	for i := range v.History {
		v.History[i].Error = r.Replace(v.History[i].Error)
	}
	if len(v.Data) > 0 {
		// The recipient inside JSON is the same bytes unless it needed escaping; mask both forms.
		esc, _ := json.Marshal(to)
		mesc, _ := json.Marshal(masked)
		d := strings.NewReplacer(string(esc[1:len(esc)-1]), string(mesc[1:len(mesc)-1])).Replace(string(v.Data))
		v.Data = json.RawMessage(d)
	}
}

func viewCheckpoint(cp state.Checkpoint, ok bool) CheckpointView {
	if !ok {
		return CheckpointView{}
	}
	return CheckpointView{Set: true, Flavor: cp.Flavor, Position: cp.Position, CommitTime: cp.CommitTime}
}
