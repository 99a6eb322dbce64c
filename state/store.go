// Package state is the notifier's durable state: one Badger store holding the binlog
// checkpoint, every message and its state machine, the time-ordered due index, reminder slots,
// digest windows and sweep cursors.
//
// Guarantees:
//   - Apply writes all the effects of a batch and its checkpoint in ONE Badger transaction:
//     either all of it is durable or none of it is (invariant 1). A batch that does not fit
//     fails with ErrBatchTooBig and nothing changes; it is never split silently.
//   - Messages are insert-if-absent by key, so replaying a batch creates nothing twice
//     (invariant 2); reminders are reconciled through their slot, and a replay of older batches
//     converges to the same schedule.
//   - Claim moves due messages to `sending` durably (fsynced, unless Options.NoSync) before it
//     returns them, and no message is handed to two Claim callers (invariant 3). Settle, run at
//     start, turns messages left in `sending` into ready (idempotent channel) or uncertain.
//   - The store stays proportional to pending work plus the dedupe horizon (invariant 6):
//     Expire deletes terminal records older than Options.DedupeHorizon.
//   - Errors are returned, wrapped with the object they concern; the package never panics on
//     stored data. A full disk (ENOSPC) or an I/O error makes Apply fail: the pipeline stops
//     without losing anything, because the checkpoint was not advanced, and resumes from the
//     last checkpoint once space is freed.
//
// Concurrency: a Store is safe for concurrent use. Writers are Badger read-write transactions
// with conflict detection; a transaction that loses a conflict (e.g. Apply cancelling a
// reminder the sender is claiming) is retried from scratch.
package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// maxConflictRetries bounds the retries of a transaction that lost a conflict.
const maxConflictRetries = 50

// statusSlots sizes per-status arrays (Status values are small; see message.go).
const statusSlots = 16

// Store is the Badger-backed state of one notifier. Open it once per process.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	// mu guards against use after Close: operations hold it shared, Close exclusively.
	mu     sync.RWMutex
	closed bool

	// claimMu serialises Claim callers; the low-water cursor logic relies on it.
	claimMu sync.Mutex

	// lowMu guards the due index low-water mark: no due entry sorts below the key low. Claim
	// seeks from it instead of from the start of d/, which is full of tombstones of claimed
	// entries (LIMITS.md: a scan from the start is 14× slower). It is a full key, not a time,
	// because 200k reminders due in the same second share a few milliseconds: a time mark
	// would walk every tombstone of that millisecond on each Claim. Any committed due entry
	// below it lowers it; dirtyLow (nil: none) records the lowest since the running Claim
	// began, so that a Claim finishing with a higher mark never hides an entry committed while
	// it ran.
	lowMu    sync.Mutex
	low      []byte
	dirtyLow []byte

	// jr tracks the claim journal (journal.go): how messages in `sending` are found.
	jr *journal

	// touchGen is the last touch generation written (keyTouchGen), loaded at Open.
	touchGen atomic.Uint64

	// countMu guards counts: messages per status, loaded at Open from the status index and
	// updated after every commit.
	countMu sync.Mutex
	counts  [statusSlots]int
}

// inUseError is the error of Open on a locked directory.
type inUseError struct {
	dir string
	err error
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("store %s is in use by another notifier process (badger: %v); stop it or use the admin API", e.dir, e.err)
}

func (e *inUseError) Unwrap() []error { return []error{ErrInUse, e.err} }

// Open opens (or creates) the store in opts.Dir. If another process (or another Open in this
// one) holds the directory, the error wraps ErrInUse and says so.
func Open(opts Options) (*Store, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	db, err := badger.Open(opts.badgerOptions())
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, &inUseError{dir: opts.Dir, err: err}
		}
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	s := &Store{db: db, opts: opts, log: opts.Logger, low: []byte(prefixDue), jr: newJournal()}
	if err := s.loadCounts(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	if err := s.loadTouchGen(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	if err := s.loadJournal(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", opts.Dir, err)
	}
	return s, nil
}

// Close flushes and closes the store. It is idempotent; every later call on the Store returns
// ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.opts.Dir, err)
	}
	return nil
}

// acquire takes the shared lock; the caller must call s.mu.RUnlock when it returns nil.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// loadCounts counts the messages per status: from the status index, and from the headers of
// the due index entries for scheduled, ready and retry (about a second per million pending).
func (s *Store) loadCounts() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixStatus)})
		for it.Rewind(); it.Valid(); it.Next() {
			if st, _, _, ok := parseStatusKey(it.Item().Key()); ok && st < statusSlots {
				s.counts[st]++
			}
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixDue)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(v []byte) error {
				if st, ok := dueStatus(v); ok && st < statusSlots {
					s.counts[st]++
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// effects collects what a transaction changes outside Badger (counters, the due low-water
// mark). They are applied only after a successful commit, and reset when a transaction is
// retried.
type effects struct {
	minDue []byte // the lowest due key written, nil if none
	counts [statusSlots]int
	// settles: the transaction records the outcome of messages in `sending` on behalf of their
	// claimer (Complete, Settle). Any other write of a message in `sending` writes a new touch
	// generation, which tells Complete to read records back (Store.claimedState).
	settles  bool
	touchGen *atomic.Uint64
	// jr and withdrawn: acquired messages a reconcile took back from their Acquire (acquire.go).
	jr        *journal
	withdrawn []acquiredRef
}

func (s *Store) newEffects() *effects { return &effects{touchGen: &s.touchGen, jr: s.jr} }

// hasDue reports whether a message in st has an entry in the due index.
func hasDue(st Status) bool {
	return st == StatusScheduled || st == StatusReady || st == StatusRetry
}

// put writes the state record of m (and its body record when body is true, and always when
// m is new), keeps the status index in step and, while m is due, writes its due entry with a
// copy of both records (see codec.go). prev is the header of the stored record, nil when m is
// new. m may have been read without its body (getState) unless body is true.
func (fx *effects) put(txn *badger.Txn, m *Message, prev *recordMeta, body bool) error {
	state := encodeState(make([]byte, 0, 64), m)
	if err := txn.Set(msgKey(m.Key), state); err != nil {
		return err
	}
	if prev != nil && prev.status == StatusSending && !fx.settles {
		// A blind write of a number never written before: touching writers never conflict
		// with one another, and a Complete that read the key conflicts with this one.
		if err := txn.Set(keyTouchGen, binary.BigEndian.AppendUint64(nil, fx.touchGen.Add(1))); err != nil {
			return err
		}
	}
	var bodyRec []byte
	if body || prev == nil {
		bodyRec = encodeBody(make([]byte, 0, encodedSize(m)), m)
		if err := txn.Set(bodyKey(m.Key), bodyRec); err != nil {
			return err
		}
	}
	cur := metaOf(m)
	var due []byte
	if hasDue(cur.status) {
		if bodyRec == nil {
			item, err := txn.Get(bodyKey(m.Key))
			if err != nil {
				return fmt.Errorf("read body: %w", err)
			}
			if bodyRec, err = item.ValueCopy(nil); err != nil {
				return fmt.Errorf("read body: %w", err)
			}
		}
		due = encodeDue(state, bodyRec)
	}
	return fx.reindex(txn, m.Key, prev, cur, due)
}

// inStatusIndex: the statuses kept in the status index. Scheduled, ready and retry live in the
// due index (its entries carry the records and their status) and sending in the claim journal
// (journal.go), so that Claim writes two entries per message, not four.
func inStatusIndex(st Status) bool { return !hasDue(st) && st != StatusSending }

// reindex moves the due and status index entries of key from prev (nil: none) to cur. due is the value of the due entry when cur
// is a due status; it is rewritten even when the due time did not change, so that it always
// mirrors the records.
func (fx *effects) reindex(txn *badger.Txn, key string, prev *recordMeta, cur recordMeta, due []byte) error {
	changed := prev == nil || prev.status != cur.status || prev.updated != cur.updated
	if prev != nil {
		if hasDue(prev.status) && (!hasDue(cur.status) || prev.due != cur.due) {
			if err := txn.Delete(dueKey(prev.due, key)); err != nil {
				return err
			}
		}
		if changed && inStatusIndex(prev.status) {
			if err := txn.Delete(statusKey(prev.status, prev.updated, key)); err != nil {
				return err
			}
		}
		if prev.status != cur.status {
			fx.count(prev.status, -1)
		}
	}
	if hasDue(cur.status) {
		dk := dueKey(cur.due, key)
		if err := txn.Set(dk, due); err != nil {
			return err
		}
		if fx.minDue == nil || bytes.Compare(dk, fx.minDue) < 0 {
			fx.minDue = dk
		}
	} else if changed && inStatusIndex(cur.status) {
		if err := txn.Set(statusKey(cur.status, cur.updated, key), nil); err != nil {
			return err
		}
	}
	if prev == nil || prev.status != cur.status {
		fx.count(cur.status, +1)
	}
	return nil
}

func (fx *effects) count(st Status, d int) {
	if st < statusSlots {
		fx.counts[st] += d
	}
}

// update runs fn in a read-write transaction and commits it, retrying from scratch when the
// commit loses a conflict. fn must be safe to re-run (reset its outputs at its start).
func (s *Store) update(ctx context.Context, fn func(txn *badger.Txn, fx *effects) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		fx := s.newEffects()
		txn := s.db.NewTransaction(true)
		err := fn(txn, fx)
		if err == nil {
			err = txn.Commit()
		}
		txn.Discard()
		if errors.Is(err, badger.ErrConflict) && attempt < maxConflictRetries {
			continue
		}
		if err != nil {
			return err
		}
		s.commitEffects(fx)
		return nil
	}
}

func (s *Store) commitEffects(fx *effects) {
	if len(fx.withdrawn) > 0 {
		s.jr.withdraw(fx.withdrawn)
	}
	if fx.minDue != nil {
		s.lowerDue(fx.minDue)
	}
	s.countMu.Lock()
	for i, d := range fx.counts {
		s.counts[i] += d
	}
	s.countMu.Unlock()
}

// lowerDue records a committed due entry key: the low-water mark must not be above it.
func (s *Store) lowerDue(key []byte) {
	s.lowMu.Lock()
	if bytes.Compare(key, s.low) < 0 {
		s.low = key
	}
	if s.dirtyLow == nil || bytes.Compare(key, s.dirtyLow) < 0 {
		s.dirtyLow = key
	}
	s.lowMu.Unlock()
}

// readTouchGen reads the touch generation in txn (0: never written); the read puts the key in
// txn's read set.
func readTouchGen(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(keyTouchGen)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read touch generation: %w", err)
	}
	var gen uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("touch generation (%d bytes): %w", len(v), ErrCorrupt)
		}
		gen = binary.BigEndian.Uint64(v)
		return nil
	})
	return gen, err
}

// loadTouchGen sets the counter to the stored generation, so that the numbers written from now
// on were never written before.
func (s *Store) loadTouchGen() error {
	return s.db.View(func(txn *badger.Txn) error {
		gen, err := readTouchGen(txn)
		s.touchGen.Store(gen)
		return err
	})
}

// getMessage reads and decodes message key inside txn; ErrNotFound if absent.
func getMessage(txn *badger.Txn, key string) (*Message, *recordMeta, error) {
	item, err := txn.Get(msgKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, fmt.Errorf("message %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read message %q: %w", key, err)
	}
	m, err := readMessage(txn, key, item)
	if err != nil {
		return nil, nil, err
	}
	meta := metaOf(m)
	return m, &meta, nil
}

// getState reads and decodes only the state record of message key (the body fields stay
// empty): enough for a transition that does not rewrite the body.
func getState(txn *badger.Txn, key string) (*Message, *recordMeta, error) {
	item, err := txn.Get(msgKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, fmt.Errorf("message %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read message %q: %w", key, err)
	}
	var m *Message
	err = item.Value(func(v []byte) error {
		var derr error
		m, derr = decodeState(key, v)
		return derr
	})
	if err != nil {
		return nil, nil, err
	}
	meta := metaOf(m)
	return m, &meta, nil
}

// readMessage decodes message key from its state item and the body read in txn.
func readMessage(txn *badger.Txn, key string, state *badger.Item) (*Message, error) {
	bodyItem, err := txn.Get(bodyKey(key))
	if err != nil {
		return nil, fmt.Errorf("read message %q body: %w", key, err)
	}
	var m *Message
	err = state.Value(func(sv []byte) error {
		return bodyItem.Value(func(bv []byte) error {
			var derr error
			m, derr = decodeMessage(key, sv, bv)
			return derr
		})
	})
	return m, err
}

// Get returns the message with that key, or an error wrapping ErrNotFound.
func (s *Store) Get(key string) (*Message, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var m *Message
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		m, _, err = getMessage(txn, key)
		return err
	})
	return m, err
}

// Checkpoint returns the stored binlog checkpoint; ok is false when none was ever written.
func (s *Store) Checkpoint() (cp Checkpoint, ok bool, err error) {
	if err := s.acquire(); err != nil {
		return Checkpoint{}, false, err
	}
	defer s.mu.RUnlock()
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyCheckpoint)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			cp, err = decodeCheckpoint(v)
			ok = err == nil
			return err
		})
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	return cp, ok, nil
}

// SetCheckpoint overwrites the checkpoint alone (CLI `checkpoint set`, replay from an older
// position). Messages are untouched: a replay re-applies effects insert-if-absent.
func (s *Store) SetCheckpoint(ctx context.Context, cp Checkpoint) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	err := s.update(ctx, func(txn *badger.Txn, _ *effects) error {
		return txn.Set(keyCheckpoint, encodeCheckpoint(cp))
	})
	if err != nil {
		return fmt.Errorf("set checkpoint %q: %w", cp.Position, err)
	}
	return nil
}

// Cursor returns the value of the cursor w/<name> written by an Apply batch, nil if unset.
func (s *Store) Cursor(name string) ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(cursorKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read cursor %q: %w", name, err)
	}
	return out, nil
}

// Size returns the on-disk size of the LSM tree and of the value log, for a metric. Badger
// refreshes it periodically, so it lags recent writes.
func (s *Store) Size() (lsm, vlog int64) {
	if s.acquire() != nil {
		return 0, 0
	}
	defer s.mu.RUnlock()
	return s.db.Size()
}

// Counts returns the number of messages in each status (statuses with none are absent). It
// is kept in memory, so it is cheap enough for a metrics scrape.
func (s *Store) Counts(ctx context.Context) (map[Status]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.countMu.Lock()
	defer s.countMu.Unlock()
	out := make(map[Status]int)
	for i, n := range s.counts {
		if n != 0 {
			out[Status(i)] = n
		}
	}
	return out, nil
}
