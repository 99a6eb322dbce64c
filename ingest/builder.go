package ingest

import (
	"strconv"
	"time"

	"notifier/rules"
	"notifier/state"
)

// Builder turns rule effects into the operations of one state.Batch, the same way for every
// source of rows (the binlog here, sweeps, snapshots through the Ingester):
//
//   - send and schedule effects become messages rendered now with their rule's template (a
//     pending message never changes with a later rule or template edit); a render failure
//     stores the message dead with reason template, a rule without a template dead with
//     reason no_template (invariant 5);
//   - a schedule of a slot becomes a state.Schedule (reconciled by slot), unless its message
//     is dead or held: that is stored as a plain message and leaves the slot alone;
//   - cancel effects cancel their slot; digest effects become digest items;
//   - failed effects become dead messages with reason rule_error, keyed by the effect's key
//     or, when the rule failed before computing one, "<rule>/error/<KeyOrigin>/<row>".
//
// Effects on one slot apply in the order they were added (see Finish). The zero Builder is
// ready to use; it is not safe for concurrent use.
type Builder struct {
	// Admit, if set, is asked about every message of a send or schedule effect that is not
	// dead; false stores it held with reason rule_paused (ingest's blast-radius guard).
	Admit func(eff *rules.Effect, m *state.Message) bool

	batch state.Batch
	// slots is the order of batch.Schedules and batch.Cancels: i >= 0 is Schedules[i],
	// i < 0 is Cancels[-i-1].
	slots    []int
	ops      int
	messages int
}

// Source says where the effects added next come from.
type Source struct {
	// Origin is stored as Message.Origin: the binlog position, "sweep:<name>@<tick>".
	Origin string
	// KeyOrigin and Row (or, when Row is empty, RowIndex) name the row in the key of a
	// rule-error message whose rule failed before computing a key. KeyOrigin must be stable
	// for the row (see KeyPosition); empty means Origin.
	KeyOrigin string
	Row       string
	RowIndex  int
	// TxnVersion orders the effects of a binlog transaction on reminder slots
	// (state.Schedule.TxnVersion, Batch.CancelVersions): TxnVersion of its position. Zero
	// for rows of a snapshot, which must neither hide a later binlog change nor be hidden.
	TxnVersion uint64
	// Version orders the effects of other sources on reminder slots (state.Schedule.Version):
	// the tick of a sweep. Used only when TxnVersion is zero.
	Version time.Time
	// Now is the creation time of the messages.
	Now time.Time
}

// Add appends the store operations of eff and returns the message it created: for send and
// schedule effects (possibly dead or held) and failed effects (dead, reason rule_error); nil
// for cancel and digest effects. The caller logs and counts what it needs from it.
func (b *Builder) Add(eff *rules.Effect, src *Source) *state.Message {
	switch eff.Kind {
	case rules.EffectCancel:
		if eff.Slot != "" {
			b.batch.Cancels = append(b.batch.Cancels, eff.Slot)
			b.batch.CancelVersions = append(b.batch.CancelVersions, src.TxnVersion)
			b.slots = append(b.slots, -len(b.batch.Cancels))
			b.ops++
		}
		return nil
	case rules.EffectDigest:
		b.batch.Digest = append(b.batch.Digest, state.DigestItem{
			Rule: ruleNameOf(eff), Group: eff.Group, Window: eff.Window, Item: eff.Key,
			Data: marshalData(eff.Data), Channel: eff.Channel, To: eff.To,
		})
		b.ops++
		return nil
	case rules.EffectFailed:
		m := failedMessage(eff, src)
		b.batch.Messages = append(b.batch.Messages, m)
		b.ops++
		return m
	case rules.EffectSend, rules.EffectSchedule:
	default:
		return nil
	}
	m := newMessage(eff, src)
	if m.Status != state.StatusDead && b.Admit != nil && !b.Admit(eff, m) {
		m.Status, m.Reason = state.StatusHeld, ReasonRulePaused
	}
	b.ops++
	b.messages++
	if eff.Kind == rules.EffectSchedule && eff.Slot != "" && m.Status == state.StatusScheduled {
		b.slots = append(b.slots, len(b.batch.Schedules))
		b.batch.Schedules = append(b.batch.Schedules, state.Schedule{Slot: eff.Slot, Message: m, TxnVersion: src.TxnVersion, Version: src.Version})
		return m
	}
	b.batch.Messages = append(b.batch.Messages, m)
	return m
}

// Ops is the number of store operations added (Finish may drop superseded ones).
func (b *Builder) Ops() int { return b.ops }

// Messages is the number of messages of send and schedule effects added.
func (b *Builder) Messages() int { return b.messages }

// Cost is state.Batch.Cost of what was added.
func (b *Builder) Cost() (entries, bytes int64) { return b.batch.Cost() }

// Append moves the operations of o (added after b's) into b; o must not be used afterwards.
func (b *Builder) Append(o *Builder) {
	for _, i := range o.slots {
		if i >= 0 {
			b.slots = append(b.slots, i+len(b.batch.Schedules))
		} else {
			b.slots = append(b.slots, i-len(b.batch.Cancels))
		}
	}
	b.batch.Messages = append(b.batch.Messages, o.batch.Messages...)
	b.batch.Schedules = append(b.batch.Schedules, o.batch.Schedules...)
	b.batch.Cancels = append(b.batch.Cancels, o.batch.Cancels...)
	b.batch.CancelVersions = append(b.batch.CancelVersions, o.batch.CancelVersions...)
	b.batch.Digest = append(b.batch.Digest, o.batch.Digest...)
	b.ops += o.ops
	b.messages += o.messages
}

// Finish returns the batch (the caller adds Checkpoint and Cursors) and the number of
// operations it dropped: every cancel of a slot that a later schedule of the same slot
// follows in the batch. (With transaction versions state.Apply would skip such a cancel of
// an older transaction by itself; unversioned cancels, e.g. of a snapshot, still need this.) state.Apply applies all of a batch's Schedules (in order) before all
// of its Cancels, which is binlog order except for "cancel, then schedule again" (e.g. in a
// group commit of several binlog transactions): that would end cancelled. Without those
// cancels the result is the one applying every effect in order gives: the later schedule
// replaces (cancels, reason rescheduled) or revives what the cancel would have cancelled.
// A cancel after a slot's last schedule stays, and so do the schedules, so the store still
// records a reminder scheduled and cancelled within one batch. The Builder must not be used
// after Finish.
func (b *Builder) Finish() (batch *state.Batch, dropped int) {
	dropped = b.dropCancelsBeforeSchedules()
	b.slots = nil
	b.ops -= dropped
	return &b.batch, dropped
}

func (b *Builder) dropCancelsBeforeSchedules() int {
	if len(b.batch.Cancels) == 0 || len(b.batch.Schedules) == 0 {
		return 0
	}
	lastSchedule := make(map[string]int, len(b.batch.Schedules)) // slot → its last schedule's place in b.slots
	for n, i := range b.slots {
		if i >= 0 {
			lastSchedule[b.batch.Schedules[i].Slot] = n
		}
	}
	cancels, versions := b.batch.Cancels[:0:0], b.batch.CancelVersions[:0:0]
	for n, i := range b.slots {
		if i >= 0 {
			continue
		}
		slot := b.batch.Cancels[-i-1]
		if last, ok := lastSchedule[slot]; ok && last > n {
			continue
		}
		cancels = append(cancels, slot)
		versions = append(versions, b.batch.CancelVersions[-i-1])
	}
	dropped := len(b.batch.Cancels) - len(cancels)
	b.batch.Cancels, b.batch.CancelVersions = cancels, versions
	return dropped
}

func ruleNameOf(eff *rules.Effect) string {
	if eff.Rule != nil {
		return eff.Rule.Name
	}
	return ""
}

// newMessage builds the stored message of a send or schedule effect, rendering its text now.
func newMessage(eff *rules.Effect, src *Source) *state.Message {
	now := src.Now
	m := &state.Message{
		Key:       eff.Key,
		Rule:      ruleNameOf(eff),
		Channel:   eff.Channel,
		To:        eff.To,
		Data:      marshalData(eff.Data),
		Status:    state.StatusReady,
		CreatedAt: now,
		DueAt:     now,
		UpdatedAt: now,
		Origin:    src.Origin,
	}
	if eff.Kind == rules.EffectSchedule {
		m.Status = state.StatusScheduled
		m.DueAt = eff.At
		m.Slot = eff.Slot
		if eff.Rule != nil {
			m.Recheck = eff.Rule.Recheck
		}
	}
	if eff.Rule == nil || eff.Rule.Template == nil {
		m.Status, m.Reason, m.LastError = state.StatusDead, ReasonNoTemplate, "rule has no template"
		m.DueAt = time.Time{}
		return m
	}
	out, err := eff.Rule.Template.Render(eff.Data)
	if err != nil {
		m.Status, m.Reason, m.LastError = state.StatusDead, ReasonTemplate, err.Error()
		m.DueAt = time.Time{}
		return m
	}
	m.Subject, m.Text, m.HTML = out.Subject, out.Text, out.HTML
	return m
}

// failedMessage builds the dead message recording a rule that failed on a row. Its key is
// the effect's key when the rule got that far, else derived from the rule and the row's
// stable coordinates, so a replay of the same row finds it instead of adding another.
func failedMessage(eff *rules.Effect, src *Source) *state.Message {
	key := eff.Key
	if key == "" {
		origin, row := src.KeyOrigin, src.Row
		if origin == "" {
			origin = src.Origin
		}
		if row == "" {
			row = strconv.Itoa(src.RowIndex)
		}
		key = ruleNameOf(eff) + "/error/" + origin + "/" + row
	}
	msg := "rule failed"
	if eff.Err != nil {
		msg = eff.Err.Error()
	}
	return &state.Message{
		Key: key, Rule: ruleNameOf(eff), Channel: eff.Channel, To: eff.To,
		Data:   marshalData(eff.Data),
		Status: state.StatusDead, Reason: ReasonRuleError, LastError: msg,
		CreatedAt: src.Now, UpdatedAt: src.Now, Origin: src.Origin,
	}
}
