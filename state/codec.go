package state

import (
	"encoding/binary"
	"fmt"
	"math"
)

// A message is stored as two records, both hand-written binary encodings (about a tenth of
// the CPU of JSON and half its size):
//
//   - the state, m/<key>: everything that changes while it is delivered;
//   - the body, b/<key>: what it says and where it goes, written once when it is created
//     (rewritten only when a reminder is rescheduled or revived with new text).
//
// Claim and Complete rewrite only the small state record, so a delivery cycle writes (and
// fsyncs) a few hundred bytes instead of the whole message twice: WAL bytes and memtable
// inserts, not encoding, dominate a delivery cycle (BenchmarkClaimComplete). The state record
// starts with a fixed-size header so that Claim moves a record to `sending` by patching
// status, attempts and update time in place instead of re-encoding it (it decodes it once,
// for the caller), and finds the index entries to move from the same header:
//
//	state  [0] version  [1] status  [2:6] attempts u32  [6:14] updated ms i64  [14:22] due ms i64
//	       then LastError Reason ProviderID (uvarint length + bytes each), history count
//	       (uvarint), and per entry: at (varint ms), status (1 byte), error.
//	body   [0] version, created at (varint ms), then Rule Channel To Subject Text HTML Data
//	       Origin Slot Recheck (uvarint length + bytes each).
//
// The due entry d/<due>/<key> of a scheduled, ready or retry message carries a copy of both
// records (uvarint length of the state, state, body), so that Claim reads the due index
// sequentially and does no random lookup at all: handing over 200k reminders due in the same
// second is then an index scan plus small writes. The copy costs disk only while a message is
// pending.
//
// The key itself is not repeated: it is the rest of m/<key>. Times have millisecond precision
// and come back in UTC (0 stands for the zero time). Decoding never panics on garbage
// (FuzzDecodeMessage).
const (
	recordVersion = 1
	offStatus     = 1
	offAttempts   = 2
	offUpdated    = 6
	offDue        = 14
	headerLen     = 22

	// maxHistory is how many Attempt entries a record keeps (the most recent).
	maxHistory = 10
)

// recordMeta is the fixed header of a record: what the indexes are derived from.
type recordMeta struct {
	status   Status
	attempts uint32
	updated  int64
	due      int64
}

func metaOf(m *Message) recordMeta {
	return recordMeta{status: m.Status, attempts: clampAttempts(m.Attempts), updated: unixMs(m.UpdatedAt), due: unixMs(m.DueAt)}
}

func clampAttempts(n int) uint32 {
	if n < 0 {
		return 0
	}
	if int64(n) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}

// peekMeta reads the fixed header of a record.
func peekMeta(b []byte) (recordMeta, error) {
	if len(b) < headerLen || b[0] != recordVersion {
		return recordMeta{}, fmt.Errorf("message header (%d bytes): %w", len(b), ErrCorrupt)
	}
	return recordMeta{
		status:   Status(b[offStatus]),
		attempts: binary.BigEndian.Uint32(b[offAttempts:]),
		updated:  int64(binary.BigEndian.Uint64(b[offUpdated:])),
		due:      int64(binary.BigEndian.Uint64(b[offDue:])),
	}, nil
}

// patchMeta overwrites the fixed header of an encoded record in place.
func patchMeta(b []byte, m recordMeta) {
	b[offStatus] = byte(m.status)
	binary.BigEndian.PutUint32(b[offAttempts:], m.attempts)
	binary.BigEndian.PutUint64(b[offUpdated:], uint64(m.updated))
	binary.BigEndian.PutUint64(b[offDue:], uint64(m.due))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodedSize estimates the bytes of both records of m.
func encodedSize(m *Message) int {
	n := headerLen + 1 + 10 + 13*2 + len(m.Rule) + len(m.Channel) + len(m.To) + len(m.Subject) +
		len(m.Text) + len(m.HTML) + len(m.Data) + len(m.LastError) + len(m.Reason) +
		len(m.ProviderID) + len(m.Origin) + len(m.Slot) + len(m.Recheck) + 2
	for _, h := range m.History {
		n += 12 + len(h.Error)
	}
	return n
}

// encodeState appends the state record of m to dst. Only the last maxHistory entries are kept.
func encodeState(dst []byte, m *Message) []byte {
	var hdr [headerLen]byte
	hdr[0] = recordVersion
	patchMeta(hdr[:], metaOf(m))
	b := append(dst, hdr[:]...)
	for _, s := range [...]string{m.LastError, m.Reason, m.ProviderID} {
		b = appendString(b, s)
	}
	hist := m.History
	if len(hist) > maxHistory {
		hist = hist[len(hist)-maxHistory:]
	}
	b = binary.AppendUvarint(b, uint64(len(hist)))
	for _, h := range hist {
		b = binary.AppendVarint(b, unixMs(h.At))
		b = append(b, byte(h.Status))
		b = appendString(b, h.Error)
	}
	return b
}

// encodeBody appends the body record of m to dst.
func encodeBody(dst []byte, m *Message) []byte {
	b := append(dst, recordVersion)
	b = binary.AppendVarint(b, unixMs(m.CreatedAt))
	for _, s := range [...]string{m.Rule, m.Channel, m.To, m.Subject, m.Text, m.HTML} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Data)))
	b = append(b, m.Data...)
	for _, s := range [...]string{m.Origin, m.Slot, m.Recheck} {
		b = appendString(b, s)
	}
	return b
}

// decoder reads a record; the first error sticks and every later read returns zero values.
type decoder struct {
	b   []byte
	s   string // one string copy of b: every decoded string is a substring of it (one alloc)
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at offset %d: %w", what, d.off, ErrCorrupt)
	}
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) length() int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad length")
		return 0
	}
	d.off += n
	if v > uint64(len(d.b)-d.off) {
		d.fail("length past end")
		return 0
	}
	return int(v)
}

func (d *decoder) str() string {
	n := d.length()
	if d.err != nil || n == 0 {
		return ""
	}
	s := d.s[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) bytes() []byte {
	n := d.length()
	if d.err != nil || n == 0 {
		return nil
	}
	out := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return out
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// decodeMessage decodes the state and body records of message key. The result does not
// alias the inputs, so they may be Badger value buffers.
func decodeMessage(key string, state, body []byte) (*Message, error) {
	m, err := decodeState(key, state)
	if err != nil {
		return nil, err
	}
	if err := decodeBody(m, body); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeState decodes the state record of message key; the body fields stay empty.
func decodeState(key string, state []byte) (*Message, error) {
	meta, err := peekMeta(state)
	if err != nil {
		return nil, fmt.Errorf("message %q: %w", key, err)
	}
	if int64(meta.attempts) > math.MaxInt32 {
		return nil, fmt.Errorf("message %q: attempts %d: %w", key, meta.attempts, ErrCorrupt)
	}
	m := &Message{
		Key:       key,
		Status:    meta.status,
		Attempts:  int(meta.attempts),
		UpdatedAt: fromMs(meta.updated),
		DueAt:     fromMs(meta.due),
	}
	if len(state) == headerLen+4 && state[headerLen] == 0 && state[headerLen+1] == 0 &&
		state[headerLen+2] == 0 && state[headerLen+3] == 0 {
		return m, nil // the common fresh record: no error, reason, provider id or history
	}
	d := &decoder{b: state, s: string(state), off: headerLen}
	m.LastError, m.Reason, m.ProviderID = d.str(), d.str(), d.str()
	n := d.length() // bounded by the remaining bytes: each entry takes at least 3
	if d.err == nil && n > 0 {
		m.History = make([]Attempt, 0, min(n, maxHistory))
		for i := 0; i < n && d.err == nil; i++ {
			a := Attempt{At: fromMs(d.varint())}
			a.Status = Status(d.byte1())
			a.Error = d.str()
			m.History = append(m.History, a)
		}
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("message %q state: %w", key, d.err)
	}
	return m, nil
}

// decodeBody fills the body fields of m from its body record. Strings and Data are slices of
// one private copy of body.
func decodeBody(m *Message, body []byte) error {
	if len(body) < 1 || body[0] != recordVersion {
		return fmt.Errorf("message %q: body version: %w", m.Key, ErrCorrupt)
	}
	own := make([]byte, len(body))
	copy(own, body)
	d := &decoder{b: own, s: string(own), off: 1}
	m.CreatedAt = fromMs(d.varint())
	m.Rule, m.Channel, m.To = d.str(), d.str(), d.str()
	m.Subject, m.Text, m.HTML = d.str(), d.str(), d.str()
	m.Data = d.bytes()
	m.Origin, m.Slot, m.Recheck = d.str(), d.str(), d.str()
	if d.err == nil && d.off != len(d.b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("message %q body: %w", m.Key, d.err)
	}
	return nil
}

// encodeDue is the value of a due entry: both records of the message.
func encodeDue(state, body []byte) []byte {
	b := make([]byte, 0, binary.MaxVarintLen32+len(state)+len(body))
	b = binary.AppendUvarint(b, uint64(len(state)))
	return append(append(b, state...), body...)
}

// decodeDue splits a due entry value; the results alias v.
func decodeDue(v []byte) (state, body []byte, err error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return nil, nil, fmt.Errorf("due entry: %w", ErrCorrupt)
	}
	return v[k : k+int(n) : k+int(n)], v[k+int(n):], nil
}

// dueStatus reads the status from the header of the state record inside a due entry.
func dueStatus(v []byte) (Status, bool) {
	state, _, err := decodeDue(v)
	if err != nil || len(state) < headerLen {
		return 0, false
	}
	return Status(state[offStatus]), true
}

// The checkpoint record: version, flavor, position, commit time.
func encodeCheckpoint(cp Checkpoint) []byte {
	b := []byte{recordVersion}
	b = appendString(b, cp.Flavor)
	b = appendString(b, cp.Position)
	return binary.AppendVarint(b, unixMs(cp.CommitTime))
}

func decodeCheckpoint(b []byte) (Checkpoint, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return Checkpoint{}, fmt.Errorf("checkpoint record: version: %w", ErrCorrupt)
	}
	d := &decoder{b: b, s: string(b), off: 1}
	cp := Checkpoint{Flavor: d.str(), Position: d.str()}
	cp.CommitTime = fromMs(d.varint())
	if d.err == nil && d.off != len(b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", d.err)
	}
	return cp, nil
}

// The slot record: its version (8 bytes, big-endian: 0, a time in unix ms, or
// txnVersionTag|TxnVersion; see Schedule) then the message key.
func encodeSlot(version int64, key string) []byte {
	b := make([]byte, 0, 8+len(key))
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	return append(b, key...)
}

func decodeSlot(b []byte) (version int64, key string, err error) {
	if len(b) < 8 {
		return 0, "", fmt.Errorf("slot record (%d bytes): %w", len(b), ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(b)), string(b[8:]), nil
}

// The digest window header: version, channel, to.
func encodeWindow(channel, to string) []byte {
	return appendString(appendString([]byte{recordVersion}, channel), to)
}

func decodeWindow(b []byte) (channel, to string, err error) {
	if len(b) < 1 || b[0] != recordVersion {
		return "", "", fmt.Errorf("digest window record: version: %w", ErrCorrupt)
	}
	d := &decoder{b: b, s: string(b), off: 1}
	channel, to = d.str(), d.str()
	if d.err != nil {
		return "", "", fmt.Errorf("digest window: %w", d.err)
	}
	return channel, to, nil
}
