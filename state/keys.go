package state

import (
	"encoding/binary"
	"strings"
	"time"
)

// Key layout (DESIGN.md "Suggested Badger key layout", made true here). Times in keys are
// big-endian uint64 Unix milliseconds, so byte order is time order.
//
//	cp                                        checkpoint (encodeCheckpoint)
//	m/<key>                                   message state record (encodeState)
//	b/<key>                                   message body record (encodeBody)
//	d/<due ms:8>/<key>                        due index: one entry per message in scheduled,
//	                                          ready or retry (always with DueAt set); the value is
//	                                          a copy of its records (encodeDue)
//	c/<seq:8>                                 claim journal: the keys one Claim moved to sending
//	                                          (journal.go); deleted once they are all completed
//	ca/<seq:8>, cf/<seq:8>, cw/<seq:8>        an Acquire's journal entry: the statuses its keys
//	                                          had, its fire horizon and the keys withdrawn from
//	                                          it (acquire.go); deleted with it
//	i/<status:1>/<updated ms:8>/<key>         status index, empty value, for the other statuses
//	                                          (sent, dead, cancelled, uncertain, held, skipped):
//	                                          List --state, Counts at Open, Expire by age
//	s/<slot>                                  reminder slot "<rule>/<entity>": version:8 (time
//	                                          or tagged transaction version) + key
//	h/<window end ms:8>/<rule>/<group>        open digest window header (channel, to)
//	g/<rule>/<group>/<window end ms:8>/<item> digest item data
//	x/<window end ms:8>/<rule>/<group>        flushed-window marker (kept for the dedupe horizon)
//	w/<name>                                  sweep / snapshot cursors
//	tg                                        touch generation: rewritten (a new number) by
//	                                          every write of a message in `sending` that is not
//	                                          its outcome (Store.claimedState)
//
// <rule> and <group> inside h/, g/ and x/ are escaped ('%' → %25, '/' → %2F) so a '/' in a
// group value can never make two windows share a prefix.
const (
	prefixMsg     = "m/"
	prefixBody    = "b/"
	prefixDue     = "d/"
	prefixStatus  = "i/"
	prefixSlot    = "s/"
	prefixWindow  = "h/"
	prefixItem    = "g/"
	prefixFlushed = "x/"
	prefixCursor  = "w/"
)

var (
	keyCheckpoint = []byte("cp")
	keyTouchGen   = []byte("tg")
)

// msToKey clamps a millisecond time to the unsigned range used in keys.
func msToKey(ms int64) uint64 {
	if ms < 0 {
		return 0
	}
	return uint64(ms)
}

// unixMs is the millisecond form of t used in keys and records; the zero time is 0.
func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMs is the inverse of unixMs; times come back in UTC.
func fromMs(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func msgKey(key string) []byte {
	b := make([]byte, 0, len(prefixMsg)+len(key))
	return append(append(b, prefixMsg...), key...)
}

func bodyKey(key string) []byte {
	b := make([]byte, 0, len(prefixBody)+len(key))
	return append(append(b, prefixBody...), key...)
}

// dueSeek is the first possible due key at ms.
func dueSeek(ms int64) []byte {
	b := make([]byte, 0, len(prefixDue)+8)
	return binary.BigEndian.AppendUint64(append(b, prefixDue...), msToKey(ms))
}

func dueKey(ms int64, key string) []byte {
	b := make([]byte, 0, len(prefixDue)+9+len(key))
	b = binary.BigEndian.AppendUint64(append(b, prefixDue...), msToKey(ms))
	return append(append(b, '/'), key...)
}

// parseDueKey splits d/<ms>/<key>. The returned key aliases k.
func parseDueKey(k []byte) (ms int64, key []byte, ok bool) {
	const n = len(prefixDue) + 9
	if len(k) < n || string(k[:len(prefixDue)]) != prefixDue || k[n-1] != '/' {
		return 0, nil, false
	}
	return int64(binary.BigEndian.Uint64(k[len(prefixDue):])), k[n:], true
}

func statusPrefix(st Status) []byte {
	return []byte{'i', '/', byte(st), '/'}
}

func statusSeek(st Status, ms int64) []byte {
	return binary.BigEndian.AppendUint64(statusPrefix(st), msToKey(ms))
}

func statusKey(st Status, updMs int64, key string) []byte {
	b := make([]byte, 0, 4+9+len(key))
	b = append(b, 'i', '/', byte(st), '/')
	b = binary.BigEndian.AppendUint64(b, msToKey(updMs))
	return append(append(b, '/'), key...)
}

// parseStatusKey splits i/<st>/<ms>/<key>. The returned key aliases k.
func parseStatusKey(k []byte) (st Status, ms int64, key []byte, ok bool) {
	const n = 4 + 9
	if len(k) < n || k[0] != 'i' || k[1] != '/' || k[3] != '/' || k[n-1] != '/' {
		return 0, 0, nil, false
	}
	return Status(k[2]), int64(binary.BigEndian.Uint64(k[4:])), k[n:], true
}

func slotKey(slot string) []byte { return []byte(prefixSlot + slot) }

func cursorKey(name string) []byte { return []byte(prefixCursor + name) }

var keyEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

func unescapeKeyPart(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	return strings.NewReplacer("%2F", "/", "%25", "%").Replace(s)
}

// windowID is "<rule>/<group>" escaped, the part shared by h/, g/ and x/ keys.
func windowID(rule, group string) string {
	return keyEscaper.Replace(rule) + "/" + keyEscaper.Replace(group)
}

func windowKey(prefix string, end int64, rule, group string) []byte {
	id := windowID(rule, group)
	b := make([]byte, 0, len(prefix)+9+len(id))
	b = binary.BigEndian.AppendUint64(append(b, prefix...), msToKey(end))
	return append(append(b, '/'), id...)
}

// parseWindowKey splits h/<ms>/<rule>/<group> (or x/...).
func parseWindowKey(k []byte) (end int64, rule, group string, ok bool) {
	const n = 2 + 9
	if len(k) < n || k[n-1] != '/' {
		return 0, "", "", false
	}
	rest := string(k[n:])
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return 0, "", "", false
	}
	return int64(binary.BigEndian.Uint64(k[2:])), unescapeKeyPart(rest[:i]), unescapeKeyPart(rest[i+1:]), true
}

// itemPrefix is g/<rule>/<group>/<end ms>/ : every item of one window.
func itemPrefix(rule, group string, end int64) []byte {
	id := windowID(rule, group)
	b := make([]byte, 0, len(prefixItem)+len(id)+10)
	b = append(append(append(b, prefixItem...), id...), '/')
	b = binary.BigEndian.AppendUint64(b, msToKey(end))
	return append(b, '/')
}

func itemKey(rule, group string, end int64, item string) []byte {
	return append(itemPrefix(rule, group, end), item...)
}
