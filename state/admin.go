package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// DefaultListLimit is the page size of List when Filter.Limit is 0.
const DefaultListLimit = 100

// Filter selects messages for List. Zero fields do not filter.
type Filter struct {
	// Status lists only messages in that status: scheduled, ready and retry by due time
	// (through the due index: the cost grows with the pending messages before the page, so
	// prefer ListDue for timers), sending in claim order (claim journal), the others by last
	// update time, oldest first (status index). Without it, List walks all messages in key
	// order.
	Status Status
	Rule   string    // exact rule name
	To     string    // exact recipient
	Since  time.Time // last updated at or after
	Limit  int       // page size, default DefaultListLimit
	// After continues a listing after the message with this key (the last one of the previous
	// page). With Status set, the message must still be in that status to keep the order exact.
	After string
}

func (f *Filter) match(m *Message) bool {
	return (f.Rule == "" || m.Rule == f.Rule) && (f.To == "" || m.To == f.To) &&
		(f.Since.IsZero() || !m.UpdatedAt.Before(f.Since))
}

// List returns up to f.Limit messages matching f.
func (s *Store) List(ctx context.Context, f Filter) ([]*Message, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if f.Limit <= 0 {
		f.Limit = DefaultListLimit
	}
	var out []*Message
	err := s.db.View(func(txn *badger.Txn) error {
		if hasDue(f.Status) {
			return s.listDueStatus(ctx, txn, &f, &out)
		}
		if f.Status == StatusSending {
			return listSending(ctx, txn, &f, &out)
		}
		if f.Status != 0 {
			return listByStatus(ctx, txn, &f, &out)
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixMsg), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		start := []byte(prefixMsg)
		if f.After != "" {
			start = append(msgKey(f.After), 0)
		}
		for it.Seek(start); it.Valid() && len(out) < f.Limit; it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := string(it.Item().Key()[len(prefixMsg):])
			m, err := readMessage(txn, key, it.Item())
			if err != nil {
				return err
			}
			if f.match(m) {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

func listByStatus(ctx context.Context, txn *badger.Txn, f *Filter, out *[]*Message) error {
	start := statusSeek(f.Status, unixMs(f.Since))
	if f.After != "" {
		if m, meta, err := getMessage(txn, f.After); err == nil && m.Status == f.Status {
			start = append(statusKey(f.Status, meta.updated, f.After), 0)
		}
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: statusPrefix(f.Status)})
	defer it.Close()
	for it.Seek(start); it.Valid() && len(*out) < f.Limit; it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, _, key, ok := parseStatusKey(it.Item().Key())
		if !ok {
			continue
		}
		m, _, err := getMessage(txn, string(key))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if m.Status == f.Status && f.match(m) {
			*out = append(*out, m)
		}
	}
	return nil
}

// listDueStatus lists messages of a due status from the due index, whose entries carry the
// records.
func (s *Store) listDueStatus(ctx context.Context, txn *badger.Txn, f *Filter, out *[]*Message) error {
	s.lowMu.Lock()
	start := s.low
	s.lowMu.Unlock()
	if f.After != "" {
		if _, meta, err := getState(txn, f.After); err == nil && hasDue(meta.status) {
			start = append(dueKey(meta.due, f.After), 0)
		}
	}
	since := unixMs(f.Since)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixDue), PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Seek(start); it.Valid() && len(*out) < f.Limit; it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, key, ok := parseDueKey(it.Item().Key())
		if !ok {
			continue
		}
		err := it.Item().Value(func(v []byte) error {
			state, body, err := decodeDue(v)
			if err != nil {
				return nil // stale; Claim removes it
			}
			meta, err := peekMeta(state)
			if err != nil || meta.status != f.Status || (since != 0 && meta.updated < since) {
				return nil
			}
			m, err := decodeMessage(string(key), state, body)
			if err != nil {
				return err
			}
			if f.match(m) {
				*out = append(*out, m)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// listSending lists messages in `sending` from the claim journal, in claim order.
func listSending(ctx context.Context, txn *badger.Txn, f *Filter, out *[]*Message) error {
	entries, err := readJournals(txn, 0)
	if err != nil {
		return err
	}
	skipping := f.After != ""
	seen := map[string]bool{}
	for _, e := range entries {
		for _, key := range e.keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			if skipping {
				skipping = key != f.After
				continue
			}
			if len(*out) >= f.Limit {
				return nil
			}
			m, _, err := getMessage(txn, key)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if m.Status == StatusSending && !seen[key] && f.match(m) {
				seen[key] = true
				*out = append(*out, m)
			}
		}
	}
	return nil
}

// DueStats returns the number of messages in the due index (scheduled, ready and retry) and
// the earliest due time among them (zero when none).
func (s *Store) DueStats() (size int, oldest time.Time, err error) {
	s.countMu.Lock()
	size = s.counts[StatusScheduled] + s.counts[StatusReady] + s.counts[StatusRetry]
	s.countMu.Unlock()
	oldest, _, err = s.NextDue()
	return size, oldest, err
}

// operate applies an operator transition to one message in its own transaction.
func (s *Store) operate(ctx context.Context, what, key string, from []Status, fn func(m *Message, now time.Time) (Status, string, string)) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
		m, prev, err := getMessage(txn, key)
		if err != nil {
			return err
		}
		allowed := false
		for _, st := range from {
			allowed = allowed || m.Status == st
		}
		if !allowed {
			return fmt.Errorf("message is %s, want one of %v: %w", m.Status, from, ErrWrongState)
		}
		now := s.opts.Now()
		st, errText, reason := fn(m, now)
		if err := transition(txn, fx, m, prev, st, now, errText, reason, false); err != nil {
			return err
		}
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("%s message %q: %w", what, key, err)
	}
	return nil
}

// Cancel cancels a pending message (scheduled, ready, retry or held) by hand; reason defaults
// to "cancelled by operator". A reminder cancelled this way is never revived by a rule.
func (s *Store) Cancel(ctx context.Context, key, reason string) error {
	if reason == "" {
		reason = "cancelled by operator"
	}
	return s.operate(ctx, "cancel", key, []Status{StatusScheduled, StatusReady, StatusRetry, StatusHeld},
		func(*Message, time.Time) (Status, string, string) { return StatusCancelled, reason, reason })
}

// Resend makes a dead, uncertain, held, cancelled or skipped message ready and due now, with
// Attempts reset so it gets a full retry cycle. For an uncertain message, the operator takes
// responsibility for a possible duplicate.
func (s *Store) Resend(ctx context.Context, key string) error {
	return s.operate(ctx, "resend", key,
		[]Status{StatusDead, StatusUncertain, StatusHeld, StatusCancelled, StatusSkipped},
		func(m *Message, now time.Time) (Status, string, string) {
			m.DueAt, m.Attempts, m.Reason = now, 0, ""
			return StatusReady, "resent by operator", ""
		})
}

// Drop settles an uncertain, dead or held message as cancelled with the given reason
// (default "dropped by operator"), so it is never sent and expires with the horizon.
func (s *Store) Drop(ctx context.Context, key, reason string) error {
	if reason == "" {
		reason = "dropped by operator"
	}
	return s.operate(ctx, "drop", key, []Status{StatusUncertain, StatusDead, StatusHeld},
		func(*Message, time.Time) (Status, string, string) { return StatusCancelled, reason, reason })
}

// Expire deletes terminal messages (sent, dead, cancelled, skipped) last updated before
// now - DedupeHorizon, with the reminder slot that still points at them, and flushed digest
// markers older than the horizon. It returns the number of messages deleted.
func (s *Store) Expire(ctx context.Context, now time.Time) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	cutoff := unixMs(now.Add(-s.opts.DedupeHorizon))
	step := s.claimCap()
	total := 0
	for _, st := range []Status{StatusSent, StatusDead, StatusCancelled, StatusSkipped} {
		for {
			n := 0
			err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
				var err error
				n, err = expireStatus(txn, fx, st, cutoff, step)
				return err
			})
			if err != nil {
				return total, fmt.Errorf("expire %s messages: %w", st, err)
			}
			total += n
			if n == 0 {
				break
			}
		}
	}
	for {
		n := 0
		err := s.update(ctx, func(txn *badger.Txn, _ *effects) error {
			var err error
			n, err = expireWindows(txn, cutoff, step)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("expire digest markers: %w", err)
		}
		if n == 0 {
			return total, nil
		}
	}
}

// expireStatus deletes up to limit messages of status st updated before cutoff; it returns how
// many index entries it removed (0: done).
func expireStatus(txn *badger.Txn, fx *effects, st Status, cutoff int64, limit int) (int, error) {
	type entry struct {
		key string
		ms  int64
	}
	var todo []entry
	it := txn.NewIterator(badger.IteratorOptions{Prefix: statusPrefix(st)})
	for it.Rewind(); it.Valid() && len(todo) < limit; it.Next() {
		_, ms, key, ok := parseStatusKey(it.Item().Key())
		if !ok || ms >= cutoff {
			break
		}
		todo = append(todo, entry{string(key), ms})
	}
	it.Close()
	for _, e := range todo {
		if err := txn.Delete(statusKey(st, e.ms, e.key)); err != nil {
			return 0, err
		}
		m, meta, err := getMessage(txn, e.key)
		if errors.Is(err, ErrNotFound) || (err == nil && (meta.status != st || meta.updated != e.ms)) {
			continue // a stale index entry
		}
		if err != nil {
			return 0, err
		}
		fx.count(st, -1)
		if err := txn.Delete(msgKey(e.key)); err != nil {
			return 0, err
		}
		if err := txn.Delete(bodyKey(e.key)); err != nil {
			return 0, err
		}
		if m.Slot != "" {
			if _, key, ok, err := readSlot(txn, m.Slot); err != nil {
				return 0, err
			} else if ok && key == m.Key {
				if err := txn.Delete(slotKey(m.Slot)); err != nil {
					return 0, err
				}
			}
		}
	}
	return len(todo), nil
}

// expireWindows deletes flushed-window markers older than cutoff, after any item left under
// them; it returns how many keys it deleted (0: done).
func expireWindows(txn *badger.Txn, cutoff int64, limit int) (int, error) {
	var keys [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixFlushed)})
	for it.Rewind(); it.Valid() && len(keys) < limit; it.Next() {
		end, _, _, ok := parseWindowKey(it.Item().Key())
		if ok && end >= cutoff {
			break
		}
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	n := 0
	for _, k := range keys {
		if n >= limit {
			return n, nil
		}
		if end, rule, group, ok := parseWindowKey(k); ok {
			more, err := deleteItems(txn, itemPrefix(rule, group, end), limit-n)
			if err != nil {
				return 0, err
			}
			n++ // at least one more round, even when the window had no item left
			if more {
				return n, nil // the marker goes in a later round, after its items
			}
		}
		if err := txn.Delete(k); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// RunMaintenance runs Expire and Badger's value-log GC every `every` until ctx is done, then
// returns nil. Failures are logged and retried at the next tick.
func (s *Store) RunMaintenance(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("state maintenance: interval %v: %w", every, ErrInvalid)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.maintain(ctx)
	}
}

func (s *Store) maintain(ctx context.Context) {
	n, err := s.Expire(ctx, s.opts.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.LogAttrs(ctx, slog.LevelWarn, "state: expire failed", slog.Any("err", err))
	case n > 0:
		s.log.LogAttrs(ctx, slog.LevelInfo, "state: expired terminal messages", slog.Int("count", n))
	}
	if s.opts.InMemory || s.acquire() != nil {
		return
	}
	defer s.mu.RUnlock()
	for ctx.Err() == nil {
		// One vlog file per call; ErrNoRewrite when nothing is left to reclaim.
		err := s.db.RunValueLogGC(0.5)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return
		}
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "state: value log GC failed", slog.Any("err", err))
			return
		}
	}
}

// ListDue returns up to limit messages of the due index (scheduled, ready, retry), earliest
// first, due before `before` (zero: any time). It reads only the due index, whose entries
// carry the records, so it costs limit entries however many reminders are pending.
func (s *Store) ListDue(ctx context.Context, before time.Time, limit int) ([]*Message, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if limit <= 0 {
		limit = DefaultListLimit
	}
	s.lowMu.Lock()
	start := s.low
	s.lowMu.Unlock()
	var out []*Message
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixDue), PrefetchValues: true, PrefetchSize: min(limit, 256)})
		defer it.Close()
		for it.Seek(start); it.Valid() && len(out) < limit; it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			ms, key, ok := parseDueKey(it.Item().Key())
			if !ok {
				continue
			}
			if !before.IsZero() && ms >= unixMs(before) {
				break
			}
			err := it.Item().Value(func(v []byte) error {
				state, body, err := decodeDue(v)
				if err != nil {
					return err
				}
				m, err := decodeMessage(string(key), state, body)
				if err != nil {
					return err
				}
				out = append(out, m)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list due messages: %w", err)
	}
	return out, nil
}
