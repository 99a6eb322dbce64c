package ingest

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"notifier/cdc"
	"notifier/state"
)

// TxnVersion is the version of the binlog transaction after which the stream is at p: the
// order of its effects on reminder slots (state.Schedule.TxnVersion). It is strictly
// increasing along the binlog and a function of p alone, so a replay gives every transaction
// the version it had the first time (a commit time would not do: it has a resolution of one
// second, and may even go back a second between consecutive transactions).
//
//   - With GTIDs, the size of the GTID set after the transaction, which grows by one with
//     every transaction and is the same on every replica of the source: for MariaDB
//     ("domain-server-seq,..."), the sum over domains of the domain's sequence number (the
//     highest one if a domain is listed twice); for MySQL ("uuid:1-42:50-60,..."), the number
//     of transactions in the set (42 + 11 here; MySQL 8.4 tags are skipped).
//   - Without GTIDs: the binlog file's index << 32 | pos ("mysql-bin.000123" → 123). That
//     is specific to the replica being read: after a switch to another replica without
//     GTIDs, the reminder slots' versions do not compare (re-snapshot, as for the checkpoint).
//
// The zero Position has version 0 (none). An unparsable position or a version over
// state.MaxTxnVersion is an error wrapping ErrTxnVersion.
func TxnVersion(p cdc.Position) (uint64, error) {
	var (
		v   uint64
		err error
	)
	switch {
	case p.GTID != "" && strings.Contains(p.GTID, ":"):
		v, err = mysqlGTIDCount(p.GTID)
	case p.GTID != "":
		v, err = mariadbGTIDSum(p.GTID)
	case p.File != "":
		v, err = filePosVersion(p.File, p.Pos)
	default:
		return 0, nil
	}
	if err == nil && v > state.MaxTxnVersion {
		err = fmt.Errorf("version %d over %d", v, uint64(state.MaxTxnVersion))
	}
	if err != nil {
		return 0, fmt.Errorf("position %s: %w: %w", p, ErrTxnVersion, err)
	}
	return v, nil
}

// add is a + b, failing on overflow.
func add(a, b uint64) (uint64, error) {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return 0, fmt.Errorf("sum overflows")
	}
	return s, nil
}

// mariadbGTIDSum: "0-1-42,1-2-7" → 42 + 7.
func mariadbGTIDSum(set string) (uint64, error) {
	seqs := map[uint64]uint64{} // domain → highest seq
	for _, g := range strings.Split(set, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		parts := strings.Split(g, "-")
		if len(parts) != 3 {
			return 0, fmt.Errorf("mariadb gtid %q: want domain-server-seq", g)
		}
		var n [3]uint64
		for i, s := range parts {
			x, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("mariadb gtid %q: %w", g, err)
			}
			n[i] = x
		}
		seqs[n[0]] = max(seqs[n[0]], n[2])
	}
	var sum uint64
	for _, seq := range seqs {
		var err error
		if sum, err = add(sum, seq); err != nil {
			return 0, err
		}
	}
	return sum, nil
}

// mysqlGTIDCount: "uuid:1-42:50-60,uuid2:7" → 42 + 11 + 1.
func mysqlGTIDCount(set string) (uint64, error) {
	var sum uint64
	for _, g := range strings.Split(set, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		parts := strings.Split(g, ":")
		if len(parts) < 2 || len(strings.ReplaceAll(parts[0], "-", "")) != 32 {
			return 0, fmt.Errorf("mysql gtid set %q: want uuid:interval[:interval...]", g)
		}
		for _, iv := range parts[1:] {
			iv = strings.TrimSpace(iv)
			if iv != "" && (iv[0] < '0' || iv[0] > '9') {
				continue // a tag (MySQL 8.4 "uuid:tag:1-5"): the intervals after it count
			}
			lo, hi, ok := strings.Cut(iv, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.ParseUint(lo, 10, 64)
			b, err2 := strconv.ParseUint(hi, 10, 64)
			if err1 != nil || err2 != nil || a == 0 || b < a {
				return 0, fmt.Errorf("mysql gtid set %q: interval %q", g, iv)
			}
			var err error
			if sum, err = add(sum, b-a+1); err != nil {
				return 0, err
			}
		}
	}
	return sum, nil
}

// filePosVersion: "mysql-bin.000123", 4567 → 123<<32 | 4567.
func filePosVersion(file string, pos uint32) (uint64, error) {
	i := strings.LastIndexByte(file, '.')
	idx, err := strconv.ParseUint(file[i+1:], 10, 64)
	if i < 0 || err != nil {
		return 0, fmt.Errorf("binlog file %q: want <name>.<number>", file)
	}
	if idx >= 1<<30 {
		return 0, fmt.Errorf("binlog file %q: index over %d", file, 1<<30-1)
	}
	return idx<<32 | uint64(pos), nil
}
