package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// The claim journal is how the store finds messages in `sending` (for Settle, List and the
// counts at Open) without a status-index entry per message: each Claim writes ONE entry
// c/<seq:8> listing the keys it moved to sending, in the same transaction as the sending
// marks. Claim thus writes two entries per message (state, due delete) instead of four, and
// Complete two instead of three. The journal entry is deleted once all its messages have been
// completed (tracked in memory; the delete rides on the next Claim or Complete transaction),
// or by Settle after a crash. A journal may outlive its messages (crash before the delete):
// readers always check each message's status.
const prefixClaim = "c/"

func claimKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixClaim), seq)
}

func encodeClaimKeys(keys []string) []byte {
	n := binary.MaxVarintLen32
	for _, k := range keys {
		n += len(k) + binary.MaxVarintLen32
	}
	b := binary.AppendUvarint(make([]byte, 0, n), uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
	}
	return b
}

func decodeClaimKeys(v []byte) ([]string, error) {
	d := &decoder{b: v, s: string(v)}
	n := d.length() // bounded by the bytes left: each key takes at least one
	keys := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		keys = append(keys, d.str())
	}
	if d.err != nil {
		return nil, fmt.Errorf("claim journal: %w", d.err)
	}
	return keys, nil
}

// journal tracks the claim journal entries of this process in memory.
type journal struct {
	mu        sync.Mutex
	seq       uint64
	remaining map[uint64]int      // journal seq → its messages still sending
	byKey     map[string]claimRef // message key → its claim
	done      map[uint64]bool     // journals to delete with the next write transaction
}

// claimRef is what the journal knows of one message in `sending`: its journal entry and, when
// this process claimed it, the state record Claim wrote (see Store.claimedState).
type claimRef struct {
	seq   uint64
	state []byte // nil: not claimed by this process (journal loaded at Open)
	gen   uint64 // the touch generation the Claim read
	// An Acquire's message (acquired) keeps the status it had before, to go back to until it
	// is fired (acquire.go).
	acquired bool
	fired    bool
	prev     Status
}

func newJournal() *journal {
	return &journal{remaining: map[uint64]int{}, byKey: map[string]claimRef{}, done: map[uint64]bool{}}
}

func (j *journal) next() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	return j.seq
}

// register records a committed journal entry; states, when not nil, holds the state record
// Claim wrote for each key (never modified afterwards), and gen the touch generation it read.
// prev, when not nil, is an Acquire's: the status each key had before.
func (j *journal) register(seq uint64, keys []string, states [][]byte, gen uint64, prev []Status) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq = max(j.seq, seq)
	for i, k := range keys {
		ref := claimRef{seq: seq, gen: gen}
		if states != nil {
			ref.state = states[i]
		}
		if prev != nil {
			ref.acquired, ref.prev = true, prev[i]
		}
		j.byKey[k] = ref
	}
	j.remaining[seq] += len(keys)
	if j.remaining[seq] == 0 {
		delete(j.remaining, seq)
		j.done[seq] = true
	}
}

// completed records messages that left `sending` in a committed transaction.
func (j *journal) completed(keys []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, k := range keys {
		ref, ok := j.byKey[k]
		if !ok {
			continue
		}
		seq := ref.seq
		delete(j.byKey, k)
		if j.remaining[seq]--; j.remaining[seq] <= 0 {
			delete(j.remaining, seq)
			j.done[seq] = true
		}
	}
}

// claimed returns what this process's Claim of key recorded, if key is still in `sending`
// from that Claim as far as the journal knows.
func (j *journal) claimed(key string) (claimRef, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	ref, ok := j.byKey[key]
	return ref, ok && ref.state != nil
}

// collect deletes, in txn, the journal entries whose messages are all completed and returns
// their sequence numbers, to pass to forget once txn has committed.
func (j *journal) collect(txn *badger.Txn) ([]uint64, error) {
	j.mu.Lock()
	seqs := make([]uint64, 0, len(j.done))
	for seq := range j.done {
		seqs = append(seqs, seq)
	}
	j.mu.Unlock()
	for _, seq := range seqs {
		if err := deleteJournal(txn, seq); err != nil {
			return nil, err
		}
	}
	return seqs, nil
}

// deleteJournal deletes journal entry seq with an Acquire's records of it (acquire.go).
func deleteJournal(txn *badger.Txn, seq uint64) error {
	for _, k := range [][]byte{claimKey(seq), acquiredKey(seq), firedKey(seq), withdrawnKey(seq)} {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (j *journal) forget(seqs []uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, seq := range seqs {
		delete(j.done, seq)
	}
}

// forgetJournal drops everything known about journal seq (Settle deleted it).
func (j *journal) forgetJournal(seq uint64, keys []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, k := range keys {
		if j.byKey[k].seq == seq {
			delete(j.byKey, k)
		}
	}
	delete(j.remaining, seq)
	delete(j.done, seq)
}

// journalEntry is one stored claim journal entry.
type journalEntry struct {
	seq  uint64
	keys []string
}

// readJournals returns up to limit journal entries (0: all), oldest first.
func readJournals(txn *badger.Txn, limit int) ([]journalEntry, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixClaim), PrefetchValues: true})
	defer it.Close()
	var out []journalEntry
	for it.Rewind(); it.Valid() && (limit == 0 || len(out) < limit); it.Next() {
		k := it.Item().Key()
		if len(k) != len(prefixClaim)+8 {
			continue
		}
		e := journalEntry{seq: binary.BigEndian.Uint64(k[len(prefixClaim):])}
		err := it.Item().Value(func(v []byte) error {
			var err error
			e.keys, err = decodeClaimKeys(v)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// loadJournal rebuilds the in-memory journal at Open and counts the messages still sending.
func (s *Store) loadJournal() error {
	return s.db.View(func(txn *badger.Txn) error {
		entries, err := readJournals(txn, 0)
		if err != nil {
			return err
		}
		latest := map[string]uint64{} // a key in two journals (resent without Settle): the later
		for _, e := range entries {
			for _, k := range e.keys {
				_, meta, err := getState(txn, k)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if meta.status == StatusSending {
					latest[k] = e.seq
				}
			}
		}
		for _, e := range entries {
			var sending []string
			for _, k := range e.keys {
				if latest[k] == e.seq {
					sending = append(sending, k)
					delete(latest, k)
				}
			}
			s.counts[StatusSending] += len(sending)
			s.jr.register(e.seq, sending, nil, 0, nil)
		}
		return nil
	})
}
