package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"notifier/cdc"
	"notifier/ingest"
	"notifier/render"
	"notifier/state"
)

// dryRun tails the real binlog, evaluates and renders, and writes what would be sent to the
// log and to a JSON-lines file. It sends nothing, writes no state and moves no checkpoint. It
// starts at from, else the store's checkpoint when the store can be read (it is not when the
// service holds it), else the server's current position.
func dryRun(ctx context.Context, cfg *Config, log *slog.Logger, out, from string, unmask bool) error {
	set, err := loadConfigRules(cfg)
	if err != nil {
		return err
	}
	password, err := cfg.Source.password()
	if err != nil {
		return err
	}
	var pos cdc.Position
	switch {
	case from != "":
		if pos, err = cdc.ParsePosition(from); err != nil {
			return cli.Exit(fmt.Sprintf("--from: %v", err), 2)
		}
	default:
		pos = storeCheckpoint(cfg, log)
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("dry-run output: %w", err)
	}
	defer f.Close()
	sink := &dryRunStore{w: f, log: log, unmask: unmask}
	ing, err := ingest.New(ingest.Options{Store: sink, Rules: set, Flavor: cfg.Source.Flavor,
		DefaultMaxPerMinute: *cfg.Rules.DefaultMaxPerMinute, Logger: log.With("component", "ingest")})
	if err != nil {
		return err
	}
	include := cfg.Source.Include
	if len(include) == 0 {
		include = set.Tables()
	}
	reader, err := cdc.New(cdc.Options{Addr: cfg.Source.Addr, User: cfg.Source.User, Password: password,
		Flavor: cfg.Source.Flavor, ServerID: cfg.Source.ServerID, Include: include, Exclude: cfg.Source.Exclude,
		Logger: log.With("component", "cdc")})
	if err != nil {
		return fmt.Errorf("binlog reader: %w", err)
	}
	defer reader.Close()
	log.Info("dry run: nothing is sent, no state is written", "from", pos.String(), "out", out)
	txns := make(chan *cdc.Txn, 64)
	readErr := make(chan error, 1)
	go func() {
		err := reader.Run(ctx, pos, txns)
		close(txns)
		readErr <- err
	}()
	if err := ing.Run(context.WithoutCancel(ctx), txns); err != nil {
		return err
	}
	if err := <-readErr; err != nil && ctx.Err() == nil {
		return fmt.Errorf("binlog reader: %w", err)
	}
	return nil
}

// storeCheckpoint reads the checkpoint of an existing store without writing to it; a missing
// or busy store (the service runs) gives the zero position: the server's current one.
func storeCheckpoint(cfg *Config, log *slog.Logger) cdc.Position {
	if _, err := os.Stat(cfg.Store.Dir); err != nil {
		return cdc.Position{}
	}
	st, err := openStoreOffline(cfg.Store.Dir, cfg, log)
	if err != nil {
		log.Warn("dry run: store not readable, starting at the server's current position", "error", err)
		return cdc.Position{}
	}
	defer st.Close()
	cp, ok, err := st.Checkpoint()
	if err != nil || !ok {
		return cdc.Position{}
	}
	p, err := cdc.ParsePosition(cp.Position)
	if err != nil {
		return cdc.Position{}
	}
	return p
}

// dryRunStore is the ingest.Store of --dry-run: it writes each would-be message as one JSON
// line and logs it (recipient masked), and stores nothing.
type dryRunStore struct {
	w      io.Writer
	log    *slog.Logger
	unmask bool // recipients in the file as they are, not masked
	mu     sync.Mutex
}

// dryRunLine is one line of the --dry-run output.
type dryRunLine struct {
	Key     string    `json:"key"`
	Rule    string    `json:"rule"`
	Channel string    `json:"channel"`
	To      string    `json:"to"`
	Status  string    `json:"status"`
	DueAt   time.Time `json:"due_at,omitzero"`
	Subject string    `json:"subject,omitempty"`
	Text    string    `json:"text,omitempty"`
	HTML    string    `json:"html,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Error   string    `json:"error,omitempty"`
	Slot    string    `json:"slot,omitempty"`
	Origin  string    `json:"origin"`
	Digest  string    `json:"digest,omitempty"` // digest items: "rule/group/window"
	Cancel  string    `json:"cancel,omitempty"` // cancelled reminder slot
}

func (d *dryRunStore) MaxBatchCount() int { return 100_000 }

func (d *dryRunStore) Apply(_ context.Context, b *state.Batch) (state.ApplyResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res state.ApplyResult
	origin := ""
	if b.Checkpoint != nil {
		origin = b.Checkpoint.Position
	}
	enc := json.NewEncoder(d.w)
	emit := func(l dryRunLine) error {
		d.log.Info("dry run: would create", "key", l.Key, "rule", l.Rule, "channel", l.Channel,
			"to", render.Mask(l.To), "status", l.Status, "due_at", l.DueAt, "text", l.Text, "reason", l.Reason)
		if !d.unmask && l.To != "" {
			l.To = render.Mask(l.To)
		}
		return enc.Encode(l)
	}
	msg := func(m *state.Message, slot string) dryRunLine {
		return dryRunLine{Key: m.Key, Rule: m.Rule, Channel: m.Channel, To: m.To, Status: m.Status.String(),
			DueAt: m.DueAt, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Reason: m.Reason,
			Error: m.LastError, Slot: slot, Origin: m.Origin}
	}
	for _, m := range b.Messages {
		if err := emit(msg(m, m.Slot)); err != nil {
			return res, err
		}
		res.Inserted++
	}
	for _, sc := range b.Schedules {
		if err := emit(msg(sc.Message, sc.Slot)); err != nil {
			return res, err
		}
		res.Scheduled++
	}
	for _, slot := range b.Cancels {
		if err := emit(dryRunLine{Cancel: slot, Origin: origin}); err != nil {
			return res, err
		}
		res.Cancelled++
	}
	for _, it := range b.Digest {
		if err := emit(dryRunLine{Key: it.Item, Rule: it.Rule, Channel: it.Channel, To: it.To, Status: "digest",
			Digest: it.Rule + "/" + it.Group + "/" + it.Window.UTC().Format(time.RFC3339), Origin: origin}); err != nil {
			return res, err
		}
		res.DigestItems++
	}
	return res, nil
}
