package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Result is the outcome of one delivery attempt, reported by the sender through Complete.
type Result uint8

// The results Complete accepts. Their numeric values are not persisted.
const (
	// ResultSent: the provider accepted it → sent (ProviderID kept).
	ResultSent Result = iota + 1
	// ResultRetry: a temporary failure → retry, due again at RetryAt.
	ResultRetry
	// ResultDead: a final failure (4xx, retries exhausted) → dead, with Error and Reason.
	ResultDead
	// ResultUncertain: the call may or may not have reached the provider (timeout on a
	// non-idempotent channel) → uncertain; never resent by itself.
	ResultUncertain
	// ResultDefer: not attempted (quiet hours, rate hold) → scheduled again at RetryAt; the
	// attempt Claim counted is given back.
	ResultDefer
	// ResultSkipped: not sent on purpose (misfire policy "skip_older_than") → skipped, Reason.
	ResultSkipped
)

var resultNames = [...]string{ResultSent: "sent", ResultRetry: "retry", ResultDead: "dead",
	ResultUncertain: "uncertain", ResultDefer: "defer", ResultSkipped: "skipped"}

// String returns the lower-case name of r.
func (r Result) String() string {
	if int(r) < len(resultNames) && resultNames[r] != "" {
		return resultNames[r]
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Outcome is what happened to one claimed message.
type Outcome struct {
	Key    string
	Result Result
	// At is when it happened (default: the store clock).
	At time.Time
	// RetryAt is when a ResultRetry or ResultDefer message is due again (default: At).
	RetryAt time.Time
	// Error is the failure text kept in LastError and History (e.g. the provider's response,
	// truncated by the sender).
	Error string
	// Reason is the short machine-readable reason for dead, uncertain and skipped.
	Reason string
	// ProviderID is the provider's message id, if the channel extracted one.
	ProviderID string
}

// claimCap is the most messages one Claim or Complete transaction handles: each writes four
// entries and a state record of typically a few hundred bytes. A transaction that still hits
// Badger's limit (long histories) is split in halves and retried.
func (s *Store) claimCap() int {
	return int(max(1, min(s.maxBatchEntries()/6, s.MaxBatchBytes()/1024)))
}

// Claim moves up to limit messages whose due time is <= now (status scheduled, ready or retry)
// to `sending`, increments their Attempts, removes their due entries and returns them in due
// order. The transaction is committed (fsynced) before Claim returns, so the `sending` mark is
// durable before any provider call (invariant 3). Concurrent callers never receive the same
// message. limit is capped to what fits in one transaction (a few thousand).
//
// Claim seeks the due index from an in-memory low-water mark rather than its start, which is
// full of tombstones of claimed entries; every committed due entry below the mark lowers it.
//
// Concurrent Claims overlap: one builds its transaction while the one before it commits. The
// builds take turns (claimMu); each moves the mark past the entries it took before it commits,
// so the next one starts after them, and gives them back (lowers the mark to where it started)
// if its commit fails. Two Claims never both commit one entry: each has read the due entries it
// takes, so the later commit of two that took the same entry conflicts.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int) ([]*Message, error) {
	return s.claimDue(ctx, now, now, limit, false)
}

// claimDue is Claim (acquire false) and Acquire (acquire true): it claims the messages due by until,
// marking them `sending` at now.
func (s *Store) claimDue(ctx context.Context, now, until time.Time, limit int, acquire bool) ([]*Message, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, s.claimCap())
	nowMs, untilMs := unixMs(now), unixMs(until)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("claim due messages: %w", err)
		}
		fx := s.newEffects()
		txn, start, c, err := s.buildClaim(fx, nowMs, untilMs, limit, acquire)
		if err == nil {
			err = txn.Commit()
			if err != nil {
				s.lowerDue(start) // its entries are still due
			}
		}
		txn.Discard()
		switch {
		case errors.Is(err, badger.ErrTxnTooBig) && limit > 1:
			limit /= 2 // records with long histories: take fewer
			continue
		case errors.Is(err, badger.ErrConflict) && attempt < maxConflictRetries:
			continue
		case err != nil:
			return nil, fmt.Errorf("claim due messages: %w", err)
		}
		s.commitEffects(fx)
		s.jr.forget(c.dropped)
		if c.seq != 0 {
			s.jr.register(c.seq, c.keys, c.states, c.gen, c.prev)
		}
		return c.out, nil
	}
}

// buildClaim builds one Claim transaction from the low-water mark and moves the mark past the
// entries taken (see Claim). It returns the transaction (to commit or discard) and where it
// started. The transaction begins after dirtyLow is reset: an entry committed before its read
// timestamp is in its view, one committed after lowers the mark through dirtyLow or directly,
// so none is passed over (a transaction begun earlier missed such entries).
func (s *Store) buildClaim(fx *effects, nowMs, untilMs int64, limit int, acquire bool) (*badger.Txn, []byte, *claimed, error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	s.lowMu.Lock()
	start := s.low
	s.dirtyLow = nil
	s.lowMu.Unlock()
	txn := s.db.NewTransaction(true)
	c, err := s.claimTxn(txn, fx, start, nowMs, untilMs, limit, acquire)
	s.lowMu.Lock()
	if err == nil {
		s.low = c.next
		if s.dirtyLow != nil && bytes.Compare(s.dirtyLow, c.next) < 0 {
			s.low = s.dirtyLow
		}
	}
	s.dirtyLow = nil
	s.lowMu.Unlock()
	return txn, start, c, err
}

// claimed is what one Claim transaction did.
type claimed struct {
	out     []*Message
	keys    []string
	states  [][]byte // the state record written for each of keys (for Complete)
	prev    []Status // an Acquire's: the status each of keys had before (nil for a Claim)
	gen     uint64   // the touch generation it read
	next    []byte   // the new low-water mark
	seq     uint64   // its claim journal entry (0: none)
	dropped []uint64 // emptied journal entries it deleted
}

// claimTxn is the body of one Claim transaction: it claims the due entries, writes the claim
// journal entry and deletes the emptied ones.
func (s *Store) claimTxn(txn *badger.Txn, fx *effects, start []byte, nowMs, untilMs int64, limit int, acquire bool) (*claimed, error) {
	gen, err := readTouchGen(txn)
	if err != nil {
		return nil, err
	}
	entries, next, err := scanDue(txn, start, untilMs, limit)
	if err != nil {
		return nil, err
	}
	c := &claimed{next: next, gen: gen, out: make([]*Message, 0, len(entries)), keys: make([]string, 0, len(entries)),
		states: make([][]byte, 0, len(entries))}
	if acquire {
		c.prev = make([]Status, 0, len(entries))
	}
	for _, e := range entries {
		m, state, prev, err := claimOne(txn, fx, e, nowMs)
		if err != nil {
			return nil, err
		}
		if m != nil {
			c.out = append(c.out, m)
			c.keys = append(c.keys, m.Key)
			c.states = append(c.states, state)
			if acquire {
				c.prev = append(c.prev, prev)
			}
		}
	}
	if len(c.keys) > 0 {
		c.seq = s.jr.next()
		if err := txn.Set(claimKey(c.seq), encodeClaimKeys(c.keys)); err != nil {
			return nil, fmt.Errorf("claim journal: %w", err)
		}
		if acquire {
			if err := txn.Set(acquiredKey(c.seq), encodeAcquired(c.prev)); err != nil {
				return nil, fmt.Errorf("claim journal: %w", err)
			}
		}
	}
	if c.dropped, err = s.jr.collect(txn); err != nil {
		return nil, err
	}
	return c, nil
}

// dueEntry is one entry of the due index read by Claim.
type dueEntry struct {
	key string
	ms  int64
	val []byte // a copy of the state and body records (encodeDue)
}

// scanDue reads up to limit due entries with time <= untilMs from the key start on, and the new
// low-water mark: the key of the first entry not taken, or just after the last one taken.
func scanDue(txn *badger.Txn, start []byte, untilMs int64, limit int) (entries []dueEntry, next []byte, err error) {
	entries = make([]dueEntry, 0, min(limit, 1024))
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixDue), PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	var last []byte // reused: only the last taken key matters
	// It stops at the limit without reading the next entry: the next Claim starts there, and
	// an entry read here and taken by it would make this transaction conflict.
	for it.Seek(start); it.Valid() && len(entries) < limit; it.Next() {
		item := it.Item()
		ms, key, ok := parseDueKey(item.Key())
		if !ok {
			continue
		}
		if ms > untilMs {
			return entries, item.KeyCopy(nil), nil
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return nil, nil, fmt.Errorf("read due entry of %q: %w", key, err)
		}
		entries = append(entries, dueEntry{key: string(key), ms: ms, val: val})
		last = append(last[:0], item.Key()...)
	}
	if last == nil {
		return entries, start, nil
	}
	return entries, append(last, 0), nil // the smallest key after the last one taken
}

// claimOne moves one due message to sending. It reads nothing but the due entry, which holds a
// copy of the message's records: the state header is patched in place (status, attempts,
// update time) and written back as the state record; the body is only decoded for the caller.
// A due entry that does not decode or disagrees with its own key is stale and only removed.
// Consistency with m/ is by construction (every write of a due message rewrites its due
// entry) and under concurrency by conflict detection: Claim has read the due entry, so a
// concurrent change of the message makes one of the two transactions retry. It returns the
// message, the state record written (owned by the caller: never modified afterwards) and the
// status it had.
func claimOne(txn *badger.Txn, fx *effects, e dueEntry, nowMs int64) (*Message, []byte, Status, error) {
	state, body, err := decodeDue(e.val)
	var prev recordMeta
	if err == nil {
		prev, err = peekMeta(state)
	}
	if err != nil || !hasDue(prev.status) || prev.due != e.ms {
		return nil, nil, 0, txn.Delete(dueKey(e.ms, e.key))
	}
	cur := prev
	cur.status = StatusSending
	cur.attempts = min(prev.attempts+1, math.MaxInt32)
	cur.updated = nowMs
	patchMeta(state, cur)
	m, err := decodeMessage(e.key, state, body)
	if err != nil {
		return nil, nil, 0, txn.Delete(dueKey(e.ms, e.key))
	}
	if err := txn.Set(msgKey(e.key), state); err != nil {
		return nil, nil, 0, fmt.Errorf("claim message %q: %w", e.key, err)
	}
	if err := fx.reindex(txn, e.key, &prev, cur, nil); err != nil {
		return nil, nil, 0, fmt.Errorf("claim message %q: %w", e.key, err)
	}
	return m, state, prev.status, nil
}

// NextDue returns the earliest due time in the due index (for the sender's timer); ok is
// false when nothing is pending.
func (s *Store) NextDue() (t time.Time, ok bool, err error) {
	if err := s.acquire(); err != nil {
		return time.Time{}, false, err
	}
	defer s.mu.RUnlock()
	s.lowMu.Lock()
	start := s.low
	s.lowMu.Unlock()
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixDue)})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			if ms, _, valid := parseDueKey(it.Item().Key()); valid {
				t, ok = fromMs(ms), true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next due time: %w", err)
	}
	return t, ok, nil
}

// Complete records the outcomes of claimed messages, in one transaction per up to a few
// thousand outcomes. An outcome for a message that is not `sending` (or not found) is skipped
// and reported in the returned error (errors.Is ErrWrongState or ErrNotFound); the others are
// committed regardless. Each message keeps its last 10 History entries.
func (s *Store) Complete(ctx context.Context, outs []Outcome) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var skipped []error
	var run func(chunk []Outcome) error
	run = func(chunk []Outcome) error {
		var local []error
		var doneKeys []string
		var dropped []uint64
		seen := make(map[string]bool, len(chunk))
		err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
			local, doneKeys = local[:0], doneKeys[:0]
			clear(seen)
			fx.settles = true
			gen := touchGenOnce(txn)
			for i := range chunk {
				o := &chunk[i]
				// A key twice in one chunk: the second must see the first's write, so it
				// reads the record (claimedState would return the claimed one).
				again := seen[o.Key]
				seen[o.Key] = true
				if err := s.completeOne(txn, fx, o, again, gen); err != nil {
					if errors.Is(err, ErrWrongState) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
						local = append(local, err)
						if !errors.Is(err, ErrInvalid) {
							doneKeys = append(doneKeys, o.Key) // not (or no longer) sending
						}
						continue
					}
					return err
				}
				doneKeys = append(doneKeys, o.Key)
			}
			var err error
			if dropped, err = s.jr.collect(txn); err != nil {
				return err
			}
			return ctx.Err()
		})
		if err == nil {
			s.jr.forget(dropped)
			s.jr.completed(doneKeys)
		}
		if errors.Is(err, badger.ErrTxnTooBig) && len(chunk) > 1 {
			// Long histories or many retries (due entries carry the body): split the chunk.
			if err := run(chunk[:len(chunk)/2]); err != nil {
				return err
			}
			return run(chunk[len(chunk)/2:])
		}
		if err != nil {
			return fmt.Errorf("complete %d outcomes: %w", len(chunk), err)
		}
		skipped = append(skipped, local...)
		return nil
	}
	for chunk := range slices.Chunk(outs, s.claimCap()) {
		if err := run(chunk); err != nil {
			return err
		}
	}
	return errors.Join(skipped...)
}

func (s *Store) completeOne(txn *badger.Txn, fx *effects, o *Outcome, reread bool, gen func() (uint64, error)) error {
	m, prev, err := s.claimedState(txn, o.Key, reread, gen) // the body is not rewritten
	if err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	if m.Status != StatusSending {
		return fmt.Errorf("complete message %q (%s): is %s, not sending: %w", o.Key, o.Result, m.Status, ErrWrongState)
	}
	at := o.At
	if at.IsZero() {
		at = s.opts.Now()
	}
	retryAt := o.RetryAt
	if retryAt.IsZero() {
		retryAt = at
	}
	if o.Error != "" {
		m.LastError = o.Error
	}
	var st Status
	switch o.Result {
	case ResultSent:
		st = StatusSent
		m.ProviderID = o.ProviderID
	case ResultRetry:
		st = StatusRetry
		m.DueAt = retryAt
	case ResultDead:
		st = StatusDead
	case ResultUncertain:
		st = StatusUncertain
	case ResultDefer:
		st = StatusScheduled
		m.DueAt = retryAt
		m.Attempts = max(0, m.Attempts-1)
		return transition(txn, fx, m, prev, st, at, o.Reason, "", false)
	case ResultSkipped:
		st = StatusSkipped
	default:
		return fmt.Errorf("complete message %q: unknown result %d: %w", o.Key, o.Result, ErrInvalid)
	}
	errText := o.Error
	if errText == "" && st != StatusSent {
		errText = o.Reason
	}
	return transition(txn, fx, m, prev, st, at, errText, o.Reason, false)
}

// claimedState returns the state of message key for Complete. A message this process claimed
// has the state record Claim wrote, kept by the journal, and that is still the stored record
// unless another transaction changed it since (RecordReceipt on a message in `sending`): then
// Complete need not read it back. Reading it was most of Complete's cost: a record claimed a
// moment ago sits in the memtable, but Badger's Get still looks it up in every level below
// (bloom filter, then a block read and decompressed, as the record exists there from its
// creation).
//
// Such a change writes a new touch generation (effects.put), and the Claim recorded the one it
// read. gen reads the current one once per transaction, which also puts it in the transaction's
// read set: a change committed after the transaction began makes it conflict and retry, one
// committed before shows as a newer generation, and either way the record is read back. reread
// forces the read.
func (s *Store) claimedState(txn *badger.Txn, key string, reread bool, gen func() (uint64, error)) (*Message, *recordMeta, error) {
	if ref, ok := s.jr.claimed(key); ok && !reread {
		cur, err := gen()
		if err != nil {
			return nil, nil, err
		}
		if cur == ref.gen {
			m, err := decodeState(key, ref.state)
			if err != nil {
				return nil, nil, err
			}
			meta := metaOf(m)
			return m, &meta, nil
		}
	}
	return getState(txn, key)
}

// touchGenOnce returns a function that reads the touch generation in txn on its first call
// and returns the same value afterwards.
func touchGenOnce(txn *badger.Txn) func() (uint64, error) {
	var gen uint64
	var err error
	read := false
	return func() (uint64, error) {
		if !read {
			gen, err = readTouchGen(txn)
			read = true
		}
		return gen, err
	}
}

// Settle runs once at start, before the sender (it settles every message in `sending`, so it
// must not run while a sender has messages in flight): every message left in `sending` by a crash
// becomes ready and due now if idempotent(its channel) reports that the provider dedupes
// resends, otherwise uncertain with ReasonCrashDuringSend (never resent by itself, shown to
// the operator). It returns how many went each way.
func (s *Store) Settle(ctx context.Context, idempotent func(channel string) bool) (ready, uncertain int, err error) {
	if err := s.acquire(); err != nil {
		return 0, 0, err
	}
	defer s.mu.RUnlock()
	for {
		now := s.opts.Now()
		var r, u, back int
		var settled []journalEntry
		err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
			r, u, back = 0, 0, 0
			fx.settles = true
			// One journal entry per transaction: it lists at most one Claim's messages.
			var err error
			if settled, err = readJournals(txn, 1); err != nil || len(settled) == 0 {
				return err
			}
			acquired, err := readAcquired(txn, settled[0].seq)
			if err != nil {
				return err
			}
			for i, key := range settled[0].keys {
				m, prev, err := getMessage(txn, key)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if m.Status != StatusSending || !acquired.owns(key) {
					continue
				}
				if st, ok := acquired.neverFired(i, m); ok {
					if err := unacquire(txn, fx, m, prev, st, now); err != nil {
						return err
					}
					back++
					continue
				}
				if idempotent != nil && idempotent(m.Channel) {
					m.DueAt = now
					err = transition(txn, fx, m, prev, StatusReady, now, ReasonCrashDuringSend, "", false)
					r++
				} else {
					err = transition(txn, fx, m, prev, StatusUncertain, now, ReasonCrashDuringSend, ReasonCrashDuringSend, false)
					u++
				}
				if err != nil {
					return err
				}
			}
			return deleteJournal(txn, settled[0].seq)
		})
		if err != nil {
			return ready, uncertain, fmt.Errorf("settle sending messages: %w", err)
		}
		if len(settled) == 0 {
			return ready, uncertain, nil
		}
		if back > 0 {
			s.log.Info("put back acquired messages never fired", "count", back, "claim", settled[0].seq)
		}
		s.jr.forgetJournal(settled[0].seq, settled[0].keys)
		ready, uncertain = ready+r, uncertain+u
	}
}

// The receipt statuses RecordReceipt accepts (as sent by the webhook receipt handler).
const (
	ReceiptDelivered = "delivered"
	ReceiptFailed    = "failed"
)

// ReasonDeliveryFailed is the Reason of a sent message whose provider reported a failed
// delivery: it becomes dead, so it shows among the dead letters and can be resent by hand.
const ReasonDeliveryFailed = "delivery failed"

// RecordReceipt records a provider's delivery report for message key: a History entry (the
// detail as its text) and ProviderID if the message has none. A "failed" report on a sent
// message makes it dead with ReasonDeliveryFailed and LastError = detail; on a message not yet
// completed (the report overtook Complete) it is only recorded. Unknown key: ErrNotFound;
// another status: ErrInvalid.
func (s *Store) RecordReceipt(ctx context.Context, key, status, providerID, detail string) error {
	if status != ReceiptDelivered && status != ReceiptFailed {
		return fmt.Errorf("receipt for message %q: status %q: %w", key, status, ErrInvalid)
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
		m, prev, err := getState(txn, key)
		if err != nil {
			return err
		}
		if m.ProviderID == "" {
			m.ProviderID = providerID
		}
		now := s.opts.Now()
		text := "receipt: " + status
		if detail != "" {
			text += ": " + detail
		}
		if status == ReceiptFailed && m.Status == StatusSent {
			m.LastError = detail
			return transition(txn, fx, m, prev, StatusDead, now, text, ReasonDeliveryFailed, false)
		}
		// Record only: keep status and update time (the status index is keyed by them).
		m.History = appendHistory(m.History, Attempt{At: now, Status: m.Status, Error: text})
		return fx.put(txn, m, prev, false)
	})
	if err != nil {
		return fmt.Errorf("record receipt for message %q: %w", key, err)
	}
	return nil
}
