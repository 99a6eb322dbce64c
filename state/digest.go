package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A digest window (Rule, Group, Window end) lives as an open header h/ plus its items g/ until
// FlushDigest replaces them, in one transaction, with the digest message and a flushed marker
// x/ holding the hashes of the flushed items. The marker makes a flush happen exactly once and
// tells a replayed item (already flushed: ignored) from a late one (arrived after the flush,
// e.g. replica lag: it goes to a "late" window 1 ms after the flushed one, so nothing is lost).
// A window exists only once it has an item, so an empty window sends nothing.

// maxLateWindows bounds the chain of late windows an item may walk.
const maxLateWindows = 64

// DigestWindow is a closed window whose items are to be rendered into one message.
type DigestWindow struct {
	Rule, Group string
	// Window is the window end. A late window ends 1 ms (or n ms) after the window it follows;
	// include it in the digest message key so each window's message is distinct.
	Window      time.Time
	Channel, To string
	Items       []DigestItem // in item-key order
}

func itemHash(item string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(item))
	return h.Sum64()
}

// encodeFlushed: version, then the sorted item hashes, 8 bytes each.
func encodeFlushed(hashes []uint64) []byte {
	slices.Sort(hashes)
	b := make([]byte, 1, 1+8*len(hashes))
	b[0] = recordVersion
	for _, h := range hashes {
		b = binary.BigEndian.AppendUint64(b, h)
	}
	return b
}

func flushedContains(b []byte, h uint64) bool {
	if len(b) < 1 {
		return false
	}
	b = b[1:]
	n := len(b) / 8
	lo, hi := 0, n
	for lo < hi {
		mid := (lo + hi) / 2
		v := binary.BigEndian.Uint64(b[mid*8:])
		switch {
		case v == h:
			return true
		case v < h:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

// addDigestItem adds d to its window, or to the late window after it if it was flushed.
func addDigestItem(txn *badger.Txn, d DigestItem, res *ApplyResult) error {
	end := unixMs(d.Window)
	for range maxLateWindows {
		item, err := txn.Get(windowKey(prefixFlushed, end, d.Rule, d.Group))
		if errors.Is(err, badger.ErrKeyNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("read digest window %s/%s@%d: %w", d.Rule, d.Group, end, err)
		}
		replay := false
		if err := item.Value(func(v []byte) error { replay = flushedContains(v, itemHash(d.Item)); return nil }); err != nil {
			return fmt.Errorf("read digest window %s/%s@%d: %w", d.Rule, d.Group, end, err)
		}
		if replay {
			res.Existing++
			return nil
		}
		end++ // late: the next window
	}
	ik := itemKey(d.Rule, d.Group, end, d.Item)
	found, err := exists(txn, ik)
	if err != nil {
		return fmt.Errorf("read digest item %q: %w", d.Item, err)
	}
	if found {
		res.Existing++
		return nil
	}
	// The header is written with every item, even when present: a blind write that makes a
	// concurrent FlushDigest of this window conflict and retry, so it never misses this item.
	hk := windowKey(prefixWindow, end, d.Rule, d.Group)
	if err := txn.Set(hk, encodeWindow(d.Channel, d.To)); err != nil {
		return fmt.Errorf("write digest window %s/%s: %w", d.Rule, d.Group, err)
	}
	if err := txn.Set(ik, d.Data); err != nil {
		return fmt.Errorf("write digest item %q: %w", d.Item, err)
	}
	res.DigestItems++
	return nil
}

// DueDigests returns up to limit open windows whose end is <= now, oldest first, with their
// items. Render each into a message and pass it to FlushDigest.
func (s *Store) DueDigests(ctx context.Context, now time.Time, limit int) ([]DigestWindow, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []DigestWindow
	nowMs := unixMs(now)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixWindow), PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			end, rule, group, ok := parseWindowKey(it.Item().Key())
			if !ok {
				continue
			}
			if end > nowMs {
				break
			}
			w := DigestWindow{Rule: rule, Group: group, Window: fromMs(end)}
			err := it.Item().Value(func(v []byte) error {
				var err error
				w.Channel, w.To, err = decodeWindow(v)
				return err
			})
			if err != nil {
				return fmt.Errorf("digest window %s/%s: %w", rule, group, err)
			}
			if w.Items, err = readItems(txn, w); err != nil {
				return err
			}
			out = append(out, w)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read due digests: %w", err)
	}
	return out, nil
}

func readItems(txn *badger.Txn, w DigestWindow) ([]DigestItem, error) {
	p := itemPrefix(w.Rule, w.Group, unixMs(w.Window))
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	var items []DigestItem
	for it.Rewind(); it.Valid(); it.Next() {
		data, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("read digest item of %s/%s: %w", w.Rule, w.Group, err)
		}
		items = append(items, DigestItem{Rule: w.Rule, Group: w.Group, Window: w.Window,
			Item: string(it.Item().Key()[len(p):]), Data: data, Channel: w.Channel, To: w.To})
	}
	return items, nil
}

// FlushDigest ends window w: in one transaction it inserts msg (status ready, due at DueAt or
// now; insert-if-absent by key), deletes the window and the items listed in w.Items, and marks
// the window flushed. Items added to the window after w was read are moved to the late window
// after it, never lost. A second FlushDigest of the same window returns ErrAlreadyFlushed and
// changes nothing; an unknown window returns ErrNotFound. The items of a window too big for one
// transaction are deleted in follow-up transactions (the flush itself is already durable; an
// item left behind by a crash is invisible and removed by Expire).
func (s *Store) FlushDigest(ctx context.Context, w DigestWindow, msg *Message) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if msg == nil || msg.Key == "" {
		return fmt.Errorf("flush digest %s/%s: message without key: %w", w.Rule, w.Group, ErrInvalid)
	}
	end := unixMs(w.Window)
	listed := make(map[string]bool, len(w.Items))
	hashes := make([]uint64, 0, len(w.Items))
	for _, it := range w.Items {
		listed[it.Item] = true
		hashes = append(hashes, itemHash(it.Item))
	}
	budget := s.claimCap()
	now := s.opts.Now()
	more := false
	err := s.update(ctx, func(txn *badger.Txn, fx *effects) error {
		hk := windowKey(prefixWindow, end, w.Rule, w.Group)
		if _, err := txn.Get(hk); errors.Is(err, badger.ErrKeyNotFound) {
			if found, err := exists(txn, windowKey(prefixFlushed, end, w.Rule, w.Group)); err != nil {
				return err
			} else if found {
				return ErrAlreadyFlushed
			}
			return ErrNotFound
		} else if err != nil {
			return err
		}
		m := *msg
		if m.Status == 0 {
			m.Status = StatusReady
		}
		if _, err := insertMessage(txn, fx, &m, now); err != nil {
			return err
		}
		if err := txn.Delete(hk); err != nil {
			return err
		}
		if err := txn.Set(windowKey(prefixFlushed, end, w.Rule, w.Group), encodeFlushed(slices.Clone(hashes))); err != nil {
			return err
		}
		var err error
		more, err = flushItems(txn, w, end, listed, budget)
		return err
	})
	for err == nil && more {
		err = s.update(ctx, func(txn *badger.Txn, _ *effects) error {
			var err error
			more, err = deleteItems(txn, itemPrefix(w.Rule, w.Group, end), budget)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("flush digest %s/%s@%s: %w", w.Rule, w.Group, w.Window.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// flushItems moves the items of the window not in listed (added after w was read) to the late
// window after it, and deletes up to budget listed ones; more reports that some are left.
func flushItems(txn *badger.Txn, w DigestWindow, end int64, listed map[string]bool, budget int) (more bool, err error) {
	p := itemPrefix(w.Rule, w.Group, end)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
	type kv struct {
		item string
		val  []byte
	}
	var del []string
	var late []kv
	for it.Rewind(); it.Valid(); it.Next() {
		name := string(it.Item().Key()[len(p):])
		if listed[name] {
			if len(del) < budget {
				del = append(del, name)
			} else {
				more = true
			}
			continue
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return false, err
		}
		late = append(late, kv{name, v})
	}
	it.Close()
	for _, name := range del {
		if err := txn.Delete(itemKey(w.Rule, w.Group, end, name)); err != nil {
			return false, err
		}
	}
	for _, l := range late {
		var res ApplyResult
		if err := txn.Delete(itemKey(w.Rule, w.Group, end, l.item)); err != nil {
			return false, err
		}
		d := DigestItem{Rule: w.Rule, Group: w.Group, Window: w.Window, Item: l.item, Data: l.val, Channel: w.Channel, To: w.To}
		if err := addDigestItem(txn, d, &res); err != nil {
			return false, err
		}
	}
	return more, nil
}

// deleteItems deletes up to limit keys under prefix p; more reports that some are left.
func deleteItems(txn *badger.Txn, p []byte, limit int) (more bool, err error) {
	var keys [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
	for it.Rewind(); it.Valid(); it.Next() {
		if len(keys) == limit {
			more = true
			break
		}
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return false, err
		}
	}
	return more, nil
}
