package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Reasons this package writes into Message.Reason.
const (
	// ReasonRescheduled: a pending reminder replaced by a newer schedule of its slot.
	ReasonRescheduled = "rescheduled"
	// ReasonRuleCancel: a pending reminder cancelled by a rule (Batch.Cancels).
	ReasonRuleCancel = "cancelled by rule"
	// ReasonCrashDuringSend: a message found in `sending` at start on a non-idempotent channel.
	ReasonCrashDuringSend = "crash during send"
)

// Batch is everything one Apply writes in one Badger transaction: the effects of one or more
// whole binlog transactions and the checkpoint after the last of them.
type Batch struct {
	// Checkpoint is written with the effects; nil leaves the stored checkpoint unchanged (for
	// a caller that must split one huge binlog transaction: only its last part carries it).
	Checkpoint *Checkpoint
	// Cursors sets w/<name> to the value (snapshot and sweep cursors); a nil value deletes it.
	Cursors map[string][]byte
	// Messages are inserted if absent by Key. Status must be Ready (the zero Status means
	// Ready), Scheduled, Held or Dead (e.g. the template failed). Ready and Scheduled messages
	// get a due entry at DueAt; a zero DueAt means CreatedAt ("send now").
	Messages []*Message
	// Schedules are reminders, reconciled by slot (see Schedule).
	Schedules []Schedule
	// Cancels are slots "<rule>/<entity>" whose pending reminder is cancelled.
	Cancels []string
	// CancelVersions[i] is the transaction version of Cancels[i], as Schedule.TxnVersion;
	// missing or 0: the cancel is unversioned (always applied, the slot keeps its version).
	CancelVersions []uint64
	// Digest items are added to their window, if absent by (Rule, Group, Window, Item).
	Digest []DigestItem
}

// Schedule is a reminder for the entity of a slot. Apply reconciles it with the slot:
//
//   - slot empty → the message is inserted and the slot points to it;
//   - slot points at the same key → nothing, unless the pending message has another fire time
//     (it is moved to the new DueAt and takes the new text) or was cancelled by a rule or a
//     reschedule (it is revived);
//   - slot points at another key → that message, if still pending (scheduled, ready, retry or
//     held), is cancelled with ReasonRescheduled; the new message is inserted (or revived) and
//     the slot points to it. A new key that was already sent is not sent again.
//
// Each slot remembers the version of the newest effect applied to it; a Schedule or Cancel
// that is not newer is a replay and changes nothing, so replays converge to the same schedule
// without firing intermediate states (DESIGN.md, invariant 2). Versions come in two kinds:
//
//   - TxnVersion, for effects of binlog transactions: the transaction's version, strictly
//     increasing along the binlog and the same on every replay (ingest.TxnVersion). An effect
//     whose TxnVersion is <= the slot's is skipped: lower is an older transaction, equal is
//     the same transaction again, whose effects are already stored. The one exception is a
//     transaction that touches a slot more than once: its later effects in the same Apply are
//     applied in order (so a transaction's slot effects must all be in one Apply; ingest
//     never splits a transaction).
//   - Version, a time, for effects of other sources (a sweep's tick): one older than the
//     slot's time is skipped, an equal one applied.
//
// An effect with neither (a snapshot row) is always applied and leaves the slot's version as
// it is. Versions of different kinds do not compare: such an effect is applied and the slot
// takes its version. That is also the upgrade path: slots written before TxnVersion existed
// hold the commit time (ms) of their last binlog change, a time-kind version, and the first
// binlog effect on each of them is applied and converts it.
type Schedule struct {
	Slot    string
	Message *Message // Status Scheduled (zero means Scheduled); DueAt = fire time, required
	// TxnVersion is the version of the binlog transaction of the effect; 0 = none. It must be
	// below 1<<62.
	TxnVersion uint64
	// Version orders effects that do not come from the binlog (a sweep's tick); used only when
	// TxnVersion is 0. Zero: none.
	Version time.Time
}

// MaxTxnVersion is the largest Schedule.TxnVersion (and CancelVersions entry) Apply accepts.
const MaxTxnVersion = 1<<62 - 1

// A slot record's version (8 bytes, see encodeSlot) is 0 (none), a time in unix ms (the
// time kind), or txnVersionTag|TxnVersion (the transaction kind).
const txnVersionTag = int64(1) << 62

func txnKind(v int64) bool { return v&txnVersionTag != 0 }

// scheduleVersion is the slot-record version of sc.
func scheduleVersion(sc Schedule) int64 {
	switch {
	case sc.TxnVersion != 0:
		return txnVersionTag | int64(sc.TxnVersion)
	case !sc.Version.IsZero():
		return unixMs(sc.Version)
	}
	return 0
}

// cancelVersion is the slot-record version of b.Cancels[i].
func (b *Batch) cancelVersion(i int) int64 {
	if i < len(b.CancelVersions) && b.CancelVersions[i] != 0 {
		return txnVersionTag | int64(b.CancelVersions[i])
	}
	return 0
}

// stale reports whether an effect at version v on a slot at version slotVer is a replay that
// changes nothing (see Schedule). again: this Apply already applied an effect at v to the slot.
func stale(v, slotVer int64, again bool) bool {
	switch {
	case v == 0 || slotVer == 0 || txnKind(v) != txnKind(slotVer):
		return false
	case txnKind(v):
		return v < slotVer || (v == slotVer && !again)
	}
	return v < slotVer
}

// nextVersion is the slot's version after an effect at v was applied to it at slotVer.
func nextVersion(v, slotVer int64) int64 {
	switch {
	case v == 0:
		return slotVer
	case slotVer == 0 || txnKind(v) != txnKind(slotVer):
		return v
	}
	return max(v, slotVer)
}

// DigestItem is one item of a digest window. The window is identified by (Rule, Group,
// Window); Channel and To are stored once per window, with its first item.
type DigestItem struct {
	Rule, Group string
	Window      time.Time // the window END; the window is due when it is <= now
	Item        string    // unique within the window (insert-if-absent)
	Data        []byte
	Channel, To string
}

// ApplyResult counts what an Apply did.
type ApplyResult struct {
	Inserted    int // new messages (Messages)
	Existing    int // effects that changed nothing: key present, slot up to date, stale replay
	Scheduled   int // reminders inserted (or revived) on an empty or settled slot
	Rescheduled int // reminders that replaced or moved a pending one
	Cancelled   int // pending reminders cancelled by Cancels
	DigestItems int // digest items added
}

// Per-entry overheads used by Batch.Cost: Badger counts key + value + 12 bytes per entry.
const (
	entryOverhead = 12
	indexKeyLen   = 4 + 9 + 11 // i/ or d/ key without the message key, rounded up
)

// Cost estimates the Badger entries and bytes an Apply of b writes, as checked against
// MaxBatchBytes and Badger's entry limit. A message costs about twice its size (its records,
// and their copy in its due entry); a reschedule also rewrites the state of the reminder it
// replaces.
func (b *Batch) Cost() (entries, bytes int64) {
	add := func(n int, key, val int) {
		entries += int64(n)
		bytes += int64(key + val + n*entryOverhead)
	}
	msg := func(m *Message) {
		if m == nil {
			return
		}
		k, size := len(m.Key), encodedSize(m)
		add(2, 2*(len(prefixMsg)+k), size) // state and body records
		add(1, indexKeyLen+k, 0)           // status index
		add(1, indexKeyLen+k, size+4)      // due index with its copy
		add(4, 4*(indexKeyLen+k), 4*64)    // a replaced reminder: state, due, status index
	}
	for _, m := range b.Messages {
		msg(m)
	}
	for _, sc := range b.Schedules {
		msg(sc.Message)
		add(1, len(prefixSlot)+len(sc.Slot), 8+len(sc.Slot)+64)
	}
	for _, c := range b.Cancels {
		add(5, len(prefixSlot)+len(c)+4*(indexKeyLen+len(c)+64), 8+len(c)+64+4*64)
	}
	for _, d := range b.Digest {
		id := len(d.Rule) + len(d.Group) + 16
		add(1, id+len(d.Item), len(d.Data))
		add(1, id, len(d.Channel)+len(d.To)+4)
	}
	for name, v := range b.Cursors {
		add(1, len(prefixCursor)+len(name), len(v))
	}
	if b.Checkpoint != nil {
		add(1, 2, len(b.Checkpoint.Position)+len(b.Checkpoint.Flavor)+16)
	}
	return entries, bytes
}

// MaxBatchBytes is the largest Batch.Cost bytes an Apply accepts (about 15% of the memtable).
func (s *Store) MaxBatchBytes() int64 { return s.db.MaxBatchSize() - 1 }

func (s *Store) maxBatchEntries() int64 { return s.db.MaxBatchCount() - 1 }

// MaxBatchCount is a safe number of messages (or schedules) per Apply for messages of up to
// about 1 KiB each (text plus template data). Callers with bigger messages should check
// Batch.Cost against MaxBatchBytes; Apply refuses a batch that does not fit with
// ErrBatchTooBig rather than split it.
func (s *Store) MaxBatchCount() int {
	const perSchedule = 2*(1024+64) + 8*(indexKeyLen+64+entryOverhead) + 100
	return int(min(s.maxBatchEntries()/8, s.MaxBatchBytes()/perSchedule))
}

func (b *Batch) validate() error {
	for i, m := range b.Messages {
		if m == nil || m.Key == "" {
			return fmt.Errorf("batch message %d: empty key: %w", i, ErrInvalid)
		}
		switch m.Status {
		case 0, StatusReady, StatusScheduled, StatusHeld, StatusDead:
		default:
			return fmt.Errorf("batch message %q: status %s not allowed on insert: %w", m.Key, m.Status, ErrInvalid)
		}
		if m.Status == StatusScheduled && m.DueAt.IsZero() {
			return fmt.Errorf("batch message %q: scheduled without DueAt: %w", m.Key, ErrInvalid)
		}
	}
	for i, sc := range b.Schedules {
		if sc.Slot == "" || sc.Message == nil || sc.Message.Key == "" {
			return fmt.Errorf("batch schedule %d: empty slot or message key: %w", i, ErrInvalid)
		}
		if sc.Message.DueAt.IsZero() {
			return fmt.Errorf("batch schedule %q: no fire time (DueAt): %w", sc.Message.Key, ErrInvalid)
		}
		if st := sc.Message.Status; st != 0 && st != StatusScheduled {
			return fmt.Errorf("batch schedule %q: status %s, want scheduled: %w", sc.Message.Key, st, ErrInvalid)
		}
		if sc.TxnVersion > MaxTxnVersion {
			return fmt.Errorf("batch schedule %q: transaction version %d over %d: %w", sc.Message.Key, sc.TxnVersion, uint64(MaxTxnVersion), ErrInvalid)
		}
	}
	if len(b.CancelVersions) > len(b.Cancels) {
		return fmt.Errorf("batch: %d cancel versions for %d cancels: %w", len(b.CancelVersions), len(b.Cancels), ErrInvalid)
	}
	for i, v := range b.CancelVersions {
		if v > MaxTxnVersion {
			return fmt.Errorf("batch cancel %q: transaction version %d over %d: %w", b.Cancels[i], v, uint64(MaxTxnVersion), ErrInvalid)
		}
	}
	for i, d := range b.Digest {
		if d.Rule == "" || d.Item == "" || d.Window.IsZero() {
			return fmt.Errorf("batch digest item %d: rule, item and window are required: %w", i, ErrInvalid)
		}
	}
	return nil
}

// Apply writes every effect of b and b.Checkpoint in one Badger transaction (invariant 1).
// On any error nothing is written. A batch over the transaction limit (see MaxBatchCount,
// Batch.Cost) fails with ErrBatchTooBig. A full disk or an I/O error is returned wrapped; the
// checkpoint then still names the last applied batch, so nothing is lost.
func (s *Store) Apply(ctx context.Context, b *Batch) (ApplyResult, error) {
	if err := s.acquire(); err != nil {
		return ApplyResult{}, err
	}
	defer s.mu.RUnlock()
	if err := b.validate(); err != nil {
		return ApplyResult{}, err
	}
	n := len(b.Messages) + len(b.Schedules) + len(b.Cancels) + len(b.Digest)
	entries, bytes := b.Cost()
	if entries > s.maxBatchEntries() || bytes > s.MaxBatchBytes() {
		return ApplyResult{}, fmt.Errorf("apply batch of %d effects (~%d entries, ~%d bytes; limit %d entries, %d bytes): %w",
			n, entries, bytes, s.maxBatchEntries(), s.MaxBatchBytes(), ErrBatchTooBig)
	}
	now := s.opts.Now()
	var res ApplyResult
	err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
		res = ApplyResult{}
		if err := applyEffects(txn, fx, b, now, &res); err != nil {
			return err
		}
		return ctx.Err() // the side effect (commit) comes next
	})
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ApplyResult{}, fmt.Errorf("apply batch of %d effects: %w (badger: %w)", n, ErrBatchTooBig, err)
	}
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply batch of %d effects: %w", n, err)
	}
	return res, nil
}

// applyEffects writes every effect of b and its checkpoint in txn.
func applyEffects(txn *badger.Txn, fx *effects, b *Batch, now time.Time, res *ApplyResult) error {
	for _, m := range b.Messages {
		ok, err := insertMessage(txn, fx, m, now)
		if err != nil {
			return err
		}
		if ok {
			res.Inserted++
		} else {
			res.Existing++
		}
	}
	applied := appliedVersions{} // per slot, the version of the last effect this Apply applied
	for _, sc := range b.Schedules {
		if err := reconcile(txn, fx, sc, scheduleVersion(sc), applied, now, res); err != nil {
			return err
		}
	}
	for i, slot := range b.Cancels {
		if err := cancelSlot(txn, fx, slot, b.cancelVersion(i), applied, now, res); err != nil {
			return err
		}
	}
	for _, d := range b.Digest {
		if err := addDigestItem(txn, d, res); err != nil {
			return err
		}
	}
	for name, v := range b.Cursors {
		var err error
		if v == nil {
			err = txn.Delete(cursorKey(name))
		} else {
			err = txn.Set(cursorKey(name), v)
		}
		if err != nil {
			return fmt.Errorf("cursor %q: %w", name, err)
		}
	}
	if b.Checkpoint != nil {
		if err := txn.Set(keyCheckpoint, encodeCheckpoint(*b.Checkpoint)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	return nil
}

// withDefaults returns a copy of m with the times every stored message has.
func withDefaults(m *Message, st Status, now time.Time) *Message {
	c := *m
	if c.Status == 0 {
		c.Status = st
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
	if hasDue(c.Status) && c.DueAt.IsZero() {
		c.DueAt = c.CreatedAt
	}
	return &c
}

// exists reports whether k is present in txn.
func exists(txn *badger.Txn, k []byte) (bool, error) {
	_, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// insertMessage inserts m if its key is absent; it reports whether it did.
func insertMessage(txn *badger.Txn, fx *effects, m *Message, now time.Time) (bool, error) {
	found, err := exists(txn, msgKey(m.Key))
	if err != nil {
		return false, fmt.Errorf("read message %q: %w", m.Key, err)
	}
	if found {
		return false, nil
	}
	if err := fx.put(txn, withDefaults(m, StatusReady, now), nil, true); err != nil {
		return false, fmt.Errorf("insert message %q: %w", m.Key, err)
	}
	return true, nil
}

func appendHistory(h []Attempt, a Attempt) []Attempt {
	h = append(h, a)
	if len(h) > maxHistory {
		h = h[len(h)-maxHistory:]
	}
	return h
}

// transition moves m (stored with header prev) to st and writes it with a History entry.
// body rewrites the body record too (after adopt).
func transition(txn *badger.Txn, fx *effects, m *Message, prev *recordMeta, st Status, now time.Time, errText, reason string, body bool) error {
	m.Status = st
	m.UpdatedAt = now
	if reason != "" {
		m.Reason = reason
	}
	m.History = appendHistory(m.History, Attempt{At: now, Status: st, Error: errText})
	if err := fx.put(txn, m, prev, body); err != nil {
		return fmt.Errorf("message %q to %s: %w", m.Key, st, err)
	}
	return nil
}

// pendingForSlot: the statuses a reschedule or a rule cancel may cancel.
func pendingForSlot(st Status) bool {
	return st == StatusScheduled || st == StatusReady || st == StatusRetry || st == StatusHeld
}

// revivable: a reminder cancelled by the rules themselves, which a newer schedule may revive.
func revivable(m *Message) bool {
	return m.Status == StatusCancelled && (m.Reason == ReasonRescheduled || m.Reason == ReasonRuleCancel)
}

// adopt gives cur (stored) the content and fire time of the newer schedule m.
func adopt(cur, m *Message) {
	cur.Rule, cur.Channel, cur.To = m.Rule, m.Channel, m.To
	cur.Subject, cur.Text, cur.HTML, cur.Data = m.Subject, m.Text, m.HTML, m.Data
	cur.Origin, cur.Recheck, cur.Slot = m.Origin, m.Recheck, m.Slot
	cur.DueAt = m.DueAt
	cur.Reason = ""
}

func readSlot(txn *badger.Txn, slot string) (version int64, key string, ok bool, err error) {
	item, err := txn.Get(slotKey(slot))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("read slot %q: %w", slot, err)
	}
	err = item.Value(func(v []byte) error {
		version, key, err = decodeSlot(v)
		return err
	})
	if err != nil {
		return 0, "", false, fmt.Errorf("slot %q: %w", slot, err)
	}
	return version, key, true, nil
}

// appliedVersions maps a slot to the version of the last effect an Apply applied to it.
type appliedVersions map[string]int64

// again reports whether an effect at v on slot follows one of the same version (the same
// transaction) in this Apply.
func (a appliedVersions) again(slot string, v int64) bool {
	w, ok := a[slot]
	return ok && w == v
}

// reconcile applies one Schedule (see its doc) at version v.
func reconcile(txn *badger.Txn, fx *effects, sc Schedule, v int64, applied appliedVersions, now time.Time, res *ApplyResult) error {
	slotVer, slotMsg, have, err := readSlot(txn, sc.Slot)
	if err != nil {
		return err
	}
	if have && stale(v, slotVer, applied.again(sc.Slot, v)) {
		res.Existing++ // a replay
		return nil
	}
	applied[sc.Slot] = v
	m := withDefaults(sc.Message, StatusScheduled, now)
	m.Slot = sc.Slot
	replaced := false
	if have && slotMsg != m.Key {
		old, prev, err := getMessage(txn, slotMsg)
		if err == nil {
			if _, err = fx.withdraw(txn, old, pendingForSlot); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, ErrNotFound): // expired
		case err != nil:
			return err
		case pendingForSlot(old.Status):
			if err := transition(txn, fx, old, prev, StatusCancelled, now, "", ReasonRescheduled, false); err != nil {
				return err
			}
			replaced = true
		}
	}
	cur, prev, err := getMessage(txn, m.Key)
	if err == nil && !cur.DueAt.Equal(m.DueAt) { // a reschedule (below) of an acquired reminder
		if _, err = fx.withdraw(txn, cur, func(st Status) bool { return st == StatusScheduled }); err != nil {
			return err
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		if err := fx.put(txn, m, nil, true); err != nil {
			return fmt.Errorf("insert reminder %q: %w", m.Key, err)
		}
		if replaced {
			res.Rescheduled++
		} else {
			res.Scheduled++
		}
	case err != nil:
		return err
	case cur.Status == StatusScheduled && !cur.DueAt.Equal(m.DueAt):
		adopt(cur, m)
		if err := transition(txn, fx, cur, prev, StatusScheduled, now, "", "", true); err != nil {
			return err
		}
		res.Rescheduled++
	case revivable(cur):
		adopt(cur, m)
		if err := transition(txn, fx, cur, prev, StatusScheduled, now, "", "", true); err != nil {
			return err
		}
		if replaced {
			res.Rescheduled++
		} else {
			res.Scheduled++
		}
	default:
		if replaced {
			res.Rescheduled++
		} else {
			res.Existing++
		}
	}
	if next := nextVersion(v, slotVer); !have || slotMsg != m.Key || next != slotVer {
		if err := txn.Set(slotKey(sc.Slot), encodeSlot(next, m.Key)); err != nil {
			return fmt.Errorf("write slot %q: %w", sc.Slot, err)
		}
	}
	return nil
}

// cancelSlot cancels the pending reminder of slot, if any, at version v.
func cancelSlot(txn *badger.Txn, fx *effects, slot string, v int64, applied appliedVersions, now time.Time, res *ApplyResult) error {
	slotVer, key, have, err := readSlot(txn, slot)
	if err != nil || !have {
		return err
	}
	if stale(v, slotVer, applied.again(slot, v)) {
		res.Existing++ // a replay
		return nil
	}
	applied[slot] = v
	m, prev, err := getMessage(txn, key)
	if err == nil {
		if _, err = fx.withdraw(txn, m, pendingForSlot); err != nil {
			return err
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case pendingForSlot(m.Status):
		if err := transition(txn, fx, m, prev, StatusCancelled, now, "", ReasonRuleCancel, false); err != nil {
			return err
		}
		res.Cancelled++
	default:
		res.Existing++
	}
	if next := nextVersion(v, slotVer); next != slotVer {
		if err := txn.Set(slotKey(slot), encodeSlot(next, key)); err != nil {
			return fmt.Errorf("write slot %q: %w", slot, err)
		}
	}
	return nil
}
