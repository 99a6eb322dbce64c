package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Acquiring: claiming ahead of the due time, handing over (firing) at it.
//
// Claim marks each message `sending` in a synced transaction before it is handed over
// (invariant 3): two entries written per message, which on this machine caps a burst at about
// 110k messages/s (BENCHMARKS.md). Reminders are known long before they are due, so the
// sender can do that work ahead: Acquire claims the messages due within the next few seconds
// exactly as Claim does, but marks the claim as acquired: they are `sending` in the store, yet
// not handed over. At the due time Fire writes ONE small entry per claim, its fire horizon,
// and only then are the messages handed over. Firing 200k acquired messages is then a few
// dozen small synced commits instead of 400k entries.
//
// What a crash leaves is told apart by the journal, per message: an acquired message whose
// (due time, key) is above its claim's fire horizon was never handed over, and Settle puts it
// back to the status it had (its attempt given back, its due entry rewritten), to be claimed
// again at its time; one at or below the horizon may have been handed over and is settled like
// any message found in `sending`. So acquiring adds no exposure to a crash: a message is at
// risk exactly between its firing and its outcome, as with Claim.
//
// Until it is fired, an acquired reminder can still be cancelled or rescheduled by the rules
// (a change of its row, a delete): the reconcile withdraws it from its Acquire
// (effects.withdraw) and writes it as if it had never been acquired. The withdrawal reads the
// fire horizon and Fire reads the withdrawals, each in its own transaction, so of a Fire and a
// withdrawal of the same message racing, one conflicts and sees the other: a message is either
// handed over or changed by the reconcile, never both.
//
//	ca/<seq:8>   an Acquire's journal entry seq: the status each of its keys had (one byte each)
//	cf/<seq:8>   its fire horizon: due ms:8 + key of the last message fired
//	cw/<seq:8>   the keys withdrawn from it (encodeClaimKeys)
//
// All are deleted with the journal entry (deleteJournal).
const (
	prefixAcquired  = "ca/"
	prefixFired     = "cf/"
	prefixWithdrawn = "cw/"
)

func acquiredKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixAcquired), seq)
}

func firedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixFired), seq)
}

func withdrawnKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixWithdrawn), seq)
}

// acquiredRef names a message of an Acquire.
type acquiredRef struct {
	key string
	seq uint64
}

func encodeAcquired(prev []Status) []byte {
	b := make([]byte, len(prev))
	for i, st := range prev {
		b[i] = byte(st)
	}
	return b
}

// dueKeyPos is a position in the due index order: due time, then key.
type dueKeyPos struct {
	ms  int64
	key string
}

func posOf(m *Message) dueKeyPos { return dueKeyPos{ms: unixMs(m.DueAt), key: m.Key} }

func (p dueKeyPos) after(q dueKeyPos) bool {
	return p.ms > q.ms || (p.ms == q.ms && p.key > q.key)
}

func encodeHorizon(p dueKeyPos) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(p.key)), msToKey(p.ms)), p.key...)
}

func decodeHorizon(v []byte) (dueKeyPos, error) {
	if len(v) < 8 {
		return dueKeyPos{}, fmt.Errorf("fire horizon (%d bytes): %w", len(v), ErrCorrupt)
	}
	return dueKeyPos{ms: int64(binary.BigEndian.Uint64(v)), key: string(v[8:])}, nil
}

// Acquire claims, like Claim, up to limit messages due by until (which may be in the future),
// marking them `sending` at now, but holds them: they must not be handed over before Fire
// has returned them. Messages come back in due order. A acquired message that is never fired
// goes back to its previous status with Unacquire, or with Settle after a crash.
func (s *Store) Acquire(ctx context.Context, now, until time.Time, limit int) ([]*Message, error) {
	if until.Before(now) {
		until = now
	}
	return s.claimDue(ctx, now, until, limit, true)
}

// Fire durably marks acquired messages as handed over (one synced transaction writing one
// entry per Acquire they came from) and returns those that may now be handed over: the ones
// still acquired, not fired before and not withdrawn by a reconcile, in the order given.
// Fire them in due order: each claim's horizon covers everything of that claim up to the
// last message fired, and a crash settles what it covers as possibly sent. now is unused
// by the store (a wrapper such as ingest.FireGate applies its fire-time policies at it).
func (s *Store) Fire(ctx context.Context, msgs []*Message, now time.Time) ([]*Message, error) {
	_ = now
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []*Message
	var horizons map[uint64]dueKeyPos
	err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
		var seqs map[uint64]bool
		out, seqs = s.jr.fireable(msgs)
		if len(out) == 0 {
			return nil
		}
		withdrawn := map[acquiredRef]bool{}
		for seq := range seqs {
			keys, err := readWithdrawn(txn, seq)
			if err != nil {
				return err
			}
			for _, k := range keys {
				withdrawn[acquiredRef{key: k, seq: seq}] = true
			}
		}
		out, horizons = s.jr.horizons(out, withdrawn)
		for seq, h := range horizons {
			// Never lower it: a concurrent Fire of the same Acquire may have gone further
			// (reading it also makes the later of two concurrent Fires conflict and retry).
			if stored, ok, err := readHorizon(txn, seq); err != nil {
				return err
			} else if ok && stored.after(h) {
				continue
			}
			if err := txn.Set(firedKey(seq), encodeHorizon(h)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fire %d acquired messages: %w", len(msgs), err)
	}
	s.jr.fired(out)
	return out, nil
}

// readHorizon reads the fire horizon of Acquire seq; ok is false when none was written.
func readHorizon(txn *badger.Txn, seq uint64) (dueKeyPos, bool, error) {
	h, ok, err := readRecord(txn, firedKey(seq), decodeHorizon)
	if err != nil {
		return h, false, fmt.Errorf("read fire horizon of claim %d: %w", seq, err)
	}
	return h, ok, nil
}

// readWithdrawn returns the keys withdrawn from Acquire seq (and puts the record in txn's read
// set: a withdrawal committed meanwhile makes txn conflict).
func readWithdrawn(txn *badger.Txn, seq uint64) ([]string, error) {
	keys, _, err := readRecord(txn, withdrawnKey(seq), decodeClaimKeys)
	if err != nil {
		return nil, fmt.Errorf("read withdrawn of claim %d: %w", seq, err)
	}
	return keys, nil
}

// readRecord reads key in txn and decodes its value; found is false when key is absent.
func readRecord[T any](txn *badger.Txn, key []byte, decode func([]byte) (T, error)) (v T, found bool, err error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return v, false, nil
	}
	if err == nil {
		err = item.Value(func(b []byte) error {
			var derr error
			v, derr = decode(b)
			return derr
		})
	}
	return v, err == nil, err
}

// withdraw withdraws m, read in `sending` by a reconcile about to cancel or reschedule it, from
// its Acquire if it was acquired and not fired, and want(the status it had) holds: m then has
// that status again (its attempt given back) for the reconcile to go on with, and must be
// written by it. Otherwise m is left as it is (a message in `sending` is the sender's).
func (fx *effects) withdraw(txn *badger.Txn, m *Message, want func(Status) bool) (bool, error) {
	if m.Status != StatusSending || fx.jr == nil {
		return false, nil
	}
	ref, ok := fx.jr.claimed(m.Key)
	if !ok || !ref.acquired || ref.fired || !want(ref.prev) {
		return false, nil
	}
	acquired, err := readAcquired(txn, ref.seq) // the horizon, in the read set: a racing Fire conflicts
	if err != nil {
		return false, err
	}
	if acquired.fired && !posOf(m).after(acquired.horizon) {
		return false, nil
	}
	keys, err := readWithdrawn(txn, ref.seq)
	if err != nil {
		return false, err
	}
	if err := txn.Set(withdrawnKey(ref.seq), encodeClaimKeys(append(keys, m.Key))); err != nil {
		return false, err
	}
	m.Status = ref.prev
	if !hasDue(m.Status) {
		m.Status = StatusReady
	}
	m.Attempts = max(0, m.Attempts-1)
	fx.withdrawn = append(fx.withdrawn, acquiredRef{key: m.Key, seq: ref.seq})
	return true, nil
}

// Unacquire puts acquired messages that were not fired back to the status they had, due at the
// same time, their attempt given back (the sender's stop). Others are ignored.
func (s *Store) Unacquire(ctx context.Context, msgs []*Message) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	now := s.opts.Now()
	for chunk := range slices.Chunk(msgs, s.claimCap()) {
		var done []string
		var dropped []uint64
		err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
			done = done[:0]
			fx.settles = true // the claim's own outcome
			gen := touchGenOnce(txn)
			for _, m := range chunk {
				ref, ok := s.jr.claimed(m.Key)
				if !ok || !ref.acquired || ref.fired {
					continue
				}
				cur, meta, err := s.claimedState(txn, m.Key, false, gen)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if cur.Status != StatusSending {
					continue
				}
				if err := unacquire(txn, fx, cur, meta, ref.prev, now); err != nil {
					return err
				}
				done = append(done, m.Key)
			}
			var err error
			dropped, err = s.jr.collect(txn)
			return err
		})
		if err != nil {
			return fmt.Errorf("put back %d acquired messages: %w", len(chunk), err)
		}
		s.jr.forget(dropped)
		s.jr.completed(done)
	}
	return nil
}

// unacquire writes m (in `sending` from an Acquire) back to prev, due as before, its attempt given
// back. No History entry: as far as its story goes, it was never claimed.
func unacquire(txn *badger.Txn, fx *effects, m *Message, meta *recordMeta, prev Status, now time.Time) error {
	if !hasDue(prev) {
		prev = StatusReady
	}
	m.Status = prev
	m.Attempts = max(0, m.Attempts-1)
	m.UpdatedAt = now
	if err := fx.put(txn, m, meta, false); err != nil {
		return fmt.Errorf("put back acquired message %q: %w", m.Key, err)
	}
	return nil
}

// owns reports whether the journal entry still holds key (a reconcile may have withdrawn it
// and the message be in another Acquire now).
func (h acquiredRecords) owns(key string) bool { return !h.withdrawn[key] }

// acquiredRecords is what a crash left of an Acquire's journal entry: the status of each of its keys
// before (nil: the entry is a Claim's) and the fire horizon (ok false: none fired).
type acquiredRecords struct {
	prev      []byte
	horizon   dueKeyPos
	fired     bool
	withdrawn map[string]bool // keys a reconcile took back: no longer this entry's
}

func readAcquired(txn *badger.Txn, seq uint64) (acquiredRecords, error) {
	var h acquiredRecords
	prev, found, err := readRecord(txn, acquiredKey(seq), func(b []byte) ([]byte, error) { return slices.Clone(b), nil })
	if err != nil {
		return h, fmt.Errorf("read acquired claim %d: %w", seq, err)
	}
	if !found {
		return h, nil
	}
	h.prev = prev
	keys, err := readWithdrawn(txn, seq)
	if err != nil {
		return h, err
	}
	for _, k := range keys {
		if h.withdrawn == nil {
			h.withdrawn = map[string]bool{}
		}
		h.withdrawn[k] = true
	}
	h.horizon, h.fired, err = readHorizon(txn, seq)
	return h, err
}

// neverFired reports whether the i-th message m of the journal entry (one it owns) was
// acquired and not fired (Settle puts it back), and the status it goes back to.
func (h acquiredRecords) neverFired(i int, m *Message) (Status, bool) {
	if h.prev == nil || i >= len(h.prev) {
		return 0, false
	}
	if h.fired && !posOf(m).after(h.horizon) {
		return 0, false
	}
	return Status(h.prev[i]), true
}

// fireable returns the messages among msgs that are acquired and not yet fired, and the
// Acquires they belong to.
func (j *journal) fireable(msgs []*Message) ([]*Message, map[uint64]bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]*Message, 0, len(msgs))
	seqs := map[uint64]bool{}
	for _, m := range msgs {
		ref, ok := j.byKey[m.Key]
		if !ok || !ref.acquired || ref.fired || ref.state == nil || !sameClaim(ref, m) {
			continue
		}
		out = append(out, m)
		seqs[ref.seq] = true
	}
	return out, seqs
}

// sameClaim reports whether m is the message of ref's Acquire (not an earlier Acquire of the same
// key that a reconcile withdrew and rescheduled).
func sameClaim(ref claimRef, m *Message) bool {
	meta, err := peekMeta(ref.state)
	return err == nil && meta.due == unixMs(m.DueAt)
}

// horizons drops the withdrawn messages from msgs (fireable's) and returns the rest with
// the fire horizon each Acquire they belong to gets from them: the last of its messages.
func (j *journal) horizons(msgs []*Message, withdrawn map[acquiredRef]bool) ([]*Message, map[uint64]dueKeyPos) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := msgs[:0:0]
	horizons := map[uint64]dueKeyPos{}
	for _, m := range msgs {
		seq := j.byKey[m.Key].seq
		if withdrawn[acquiredRef{key: m.Key, seq: seq}] {
			continue
		}
		out = append(out, m)
		h, ok := horizons[seq]
		if p := posOf(m); !ok || p.after(h) {
			h = p
		}
		horizons[seq] = h
	}
	return out, horizons
}

// withdraw records acquired messages a committed reconcile took back from their Acquires.
func (j *journal) withdraw(refs []acquiredRef) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range refs {
		if j.byKey[r.key].seq == r.seq {
			delete(j.byKey, r.key)
		}
		if n, ok := j.remaining[r.seq]; ok {
			if n <= 1 {
				delete(j.remaining, r.seq)
				j.done[r.seq] = true
			} else {
				j.remaining[r.seq] = n - 1
			}
		}
	}
}

// fired records a committed Fire.
func (j *journal) fired(msgs []*Message) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, m := range msgs {
		if ref, ok := j.byKey[m.Key]; ok {
			ref.fired = true
			j.byKey[m.Key] = ref
		}
	}
}
