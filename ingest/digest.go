package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"notifier/render"
	"notifier/state"
)

// DigestStore is what the digest loop needs of the store; *state.Store implements it.
type DigestStore interface {
	DueDigests(ctx context.Context, now time.Time, limit int) ([]state.DigestWindow, error)
	FlushDigest(ctx context.Context, w state.DigestWindow, msg *state.Message) error
}

// RunDigests flushes closed digest windows every interval until ctx is done: each window
// whose end has passed becomes one message rendered with its rule's template over the data
// {items, count, rule, group, window, to}, written by state.FlushDigest together with the
// removal of the window's items (exactly once). A window whose rule is gone or whose template
// fails becomes a dead message with the reason, like any other message. kick is called after
// a flush that created messages.
func (g *Ingester) RunDigests(ctx context.Context, store DigestStore, interval time.Duration, kick func()) error {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := g.FlushDigests(ctx, store)
		if err != nil && ctx.Err() == nil {
			digestErrors.Inc()
			g.log.Error("digest flush failed; retrying", "error", err)
		}
		if n > 0 && kick != nil {
			kick()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// FlushDigests flushes every digest window due now and returns how many it flushed.
func (g *Ingester) FlushDigests(ctx context.Context, store DigestStore) (int, error) {
	flushed := 0
	for {
		if err := ctx.Err(); err != nil {
			return flushed, err
		}
		now := g.opts.Now()
		windows, err := store.DueDigests(ctx, now, 100)
		if err != nil {
			return flushed, fmt.Errorf("ingest due digests: %w", err)
		}
		if len(windows) == 0 {
			return flushed, nil
		}
		for _, w := range windows {
			msg := g.digestMessage(w, now)
			if err := store.FlushDigest(ctx, w, msg); err != nil {
				return flushed, fmt.Errorf("ingest flush digest %s: %w", msg.Key, err)
			}
			flushed++
			digestsFlushed.Inc()
		}
	}
}

// DigestKey is the deterministic key of a digest window's message.
func DigestKey(rule, group string, window time.Time) string {
	return "digest/" + rule + "/" + group + "/" + window.UTC().Format("20060102T150405.000Z")
}

func (g *Ingester) digestMessage(w state.DigestWindow, now time.Time) *state.Message {
	items := make([]any, 0, len(w.Items))
	for _, it := range w.Items {
		var v any
		if len(it.Data) > 0 {
			if err := json.Unmarshal(it.Data, &v); err != nil {
				v = map[string]any{"error": err.Error()}
			}
		}
		items = append(items, v)
	}
	data := map[string]any{
		"items": items, "count": len(items), "rule": w.Rule, "group": w.Group,
		"window": w.Window, "to": w.To,
	}
	m := &state.Message{
		Key: DigestKey(w.Rule, w.Group, w.Window), Rule: w.Rule, Channel: w.Channel, To: w.To,
		Data: marshalData(data), Status: state.StatusReady, CreatedAt: now, DueAt: now, UpdatedAt: now,
		Origin: "digest",
	}
	set := g.rules.Load()
	var tmpl *render.Template
	for _, r := range set.Rules {
		if r.Name == w.Rule {
			tmpl = r.Template
			break
		}
	}
	if tmpl == nil {
		m.Status, m.Reason, m.DueAt = state.StatusDead, ReasonRuleRemoved, time.Time{}
		m.LastError = fmt.Sprintf("digest rule %q is not loaded or has no template", w.Rule)
		return m
	}
	out, err := tmpl.Render(data)
	if err != nil {
		m.Status, m.Reason, m.LastError, m.DueAt = state.StatusDead, ReasonTemplate, err.Error(), time.Time{}
		g.log.Warn("digest template failed; message stored dead", "rule", w.Rule, "key", m.Key, "error", err)
		return m
	}
	m.Subject, m.Text, m.HTML = out.Subject, out.Text, out.HTML
	return m
}
