package sweep

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"notifier/ingest"
	"notifier/render"
	"notifier/rules"
	"notifier/state"
)

// builder turns a sweep row's effects into store operations, as ingest does for binlog rows:
// messages rendered at creation (a failing template stores the message dead with reason
// template), reminders reconciled by slot, digest items, dead messages for rules that failed
// on the row (reason rule_error). Issue 7 note: ingest evaluates only cdc.Txns; sweeps are
// evaluated by rules.Set.EvaluateSweep, so this is the minimal route to state.Apply. The
// blast-radius guard (max_per_minute) is not applied to sweeps: a sweep is a planned mass
// send, paced by the channels' rates.
type builder struct {
	batch    state.Batch
	ops      int
	messages int
	log      *slog.Logger
}

// add appends the store operations of one effect. origin is "sweep:<name>@<tick>"; row names
// the row (its key) for a dead message's key when the rule failed before computing one.
func (b *builder) add(eff *rules.Effect, origin, row string, tick, now time.Time) {
	name := ""
	if eff.Rule != nil {
		name = eff.Rule.Name
	}
	switch eff.Kind {
	case rules.EffectCancel:
		if eff.Slot != "" {
			b.batch.Cancels = append(b.batch.Cancels, eff.Slot)
			b.ops++
		}
		return
	case rules.EffectDigest:
		b.batch.Digest = append(b.batch.Digest, state.DigestItem{Rule: name, Group: eff.Group, Window: eff.Window,
			Item: eff.Key, Data: marshalData(eff.Data), Channel: eff.Channel, To: eff.To})
		b.ops++
		return
	case rules.EffectFailed:
		key := eff.Key
		if key == "" {
			key = name + "/error/" + origin + "/" + row
		}
		msg := "rule failed"
		if eff.Err != nil {
			msg = eff.Err.Error()
		}
		b.log.Warn("rule failed on a sweep row; stored as a dead message", "sweep", name, "key", key, "error", eff.Err)
		b.batch.Messages = append(b.batch.Messages, &state.Message{Key: key, Rule: name, Channel: eff.Channel,
			To: eff.To, Data: marshalData(eff.Data), Status: state.StatusDead, Reason: ingest.ReasonRuleError,
			LastError: msg, CreatedAt: now, UpdatedAt: now, Origin: origin})
		b.ops++
		return
	case rules.EffectSend, rules.EffectSchedule:
	default:
		return
	}
	m := &state.Message{Key: eff.Key, Rule: name, Channel: eff.Channel, To: eff.To, Data: marshalData(eff.Data),
		Status: state.StatusReady, CreatedAt: now, DueAt: now, UpdatedAt: now, Origin: origin}
	if eff.Kind == rules.EffectSchedule {
		m.Status, m.DueAt, m.Slot = state.StatusScheduled, eff.At, eff.Slot
		if eff.Rule != nil {
			m.Recheck = eff.Rule.Recheck
		}
	}
	if out, err := eff.Render(); err != nil {
		m.Status, m.Reason, m.LastError, m.DueAt = state.StatusDead, ingest.ReasonTemplate, err.Error(), time.Time{}
		b.log.Warn("template failed on a sweep row; message stored dead", "sweep", name, "key", m.Key,
			"to", render.Mask(m.To), "error", err)
	} else {
		m.Subject, m.Text, m.HTML = out.Subject, out.Text, out.HTML
	}
	b.ops++
	b.messages++
	if eff.Kind == rules.EffectSchedule && eff.Slot != "" && m.Status == state.StatusScheduled {
		b.batch.Schedules = append(b.batch.Schedules, state.Schedule{Slot: eff.Slot, Message: m, Version: tick})
		return
	}
	b.batch.Messages = append(b.batch.Messages, m)
}

// marshalData keeps the template data as JSON for inspection (as ingest does).
func marshalData(d map[string]any) []byte {
	if d == nil {
		return nil
	}
	out, err := json.Marshal(d)
	if err != nil {
		out, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("template data not representable as JSON: %v", err)})
	}
	return out
}
