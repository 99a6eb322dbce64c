// Package cdc reads the row-based binlog of a MySQL or MariaDB replica and yields each committed
// transaction as an ordered list of row changes, with the position after it. It also reads
// tables in a consistent snapshot (Reader.Snapshot) with the same value normalisation.
//
// Guarantees: a Txn is delivered only once its commit event (XID, COMMIT, or the DDL statement
// itself) has been read; its Position (GTID set where the server has GTIDs, and file:pos)
// resumes the stream right after it, so Run from a delivered Position yields exactly the
// transactions that follow. After a dropped connection Run resumes from the last delivered
// Txn, so a transaction cut in half is read again whole. Values are normalised to a small set
// of Go types (see Row). A position the server no longer has (ErrPositionPurged), a row image
// that does not match the table's columns (ErrSchemaMismatch) and a binlog without full row
// images (ErrRowImage) stop the stream with an error that says how to recover; nothing is
// skipped silently. Known gap: TRUNCATE TABLE is logged as a statement, so it yields no
// deletes. cdc knows nothing of rules or state.
package cdc

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op is what happened to a row.
type Op uint8

// The operations a Change carries. OpSnapshot marks a row read by the initial snapshot or a
// re-snapshot rather than by the binlog.
const (
	OpInsert Op = iota + 1
	OpUpdate
	OpDelete
	OpSnapshot
)

// String returns the lower-case name used in rule files: insert, update, delete, snapshot.
func (o Op) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpSnapshot:
		return "snapshot"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, error) {
	switch s {
	case "insert":
		return OpInsert, nil
	case "update":
		return OpUpdate, nil
	case "delete":
		return OpDelete, nil
	case "snapshot":
		return OpSnapshot, nil
	}
	return 0, fmt.Errorf("unknown op %q (want insert, update, delete or snapshot)", s)
}

// Row is one row image keyed by column name. Values are normalised to:
//
//	nil                  SQL NULL
//	int64 / uint64       integer columns (uint64 for UNSIGNED)
//	float64              FLOAT, DOUBLE
//	decimal.Decimal      DECIMAL (github.com/shopspring/decimal; exact, never a float)
//	time.Time            DATE (midnight UTC), DATETIME(n), TIMESTAMP(n) (UTC)
//	string               CHAR, VARCHAR, TEXT, ENUM and SET (by name), TIME, zero dates ("0000-00-00")
//	[]byte               BINARY, VARBINARY, BLOB, BIT
//	any from JSON        JSON columns, decoded (map[string]any, []any, float64, string, bool, nil)
type Row map[string]any

// Change is one row change inside a committed transaction.
type Change struct {
	Schema string
	Table  string
	Op     Op
	// Before is the row before the change (update, delete); nil for insert and snapshot.
	Before Row
	// After is the row after the change (insert, update, snapshot); nil for delete.
	After Row
	// Index identifies this row change within its transaction, uniquely and deterministically:
	// with the transaction's Position it names the change. It increases in binlog order and is
	// (ordinal of the rows event in the transaction) << 32 | (ordinal of the row in that event),
	// both 0-based and counting the events of every table, watched or not, so it does not
	// change when Include/Exclude change. A transaction of one statement has 0, 1, 2, ...
	Index int
}

// Image returns the row as it is now: After, or Before for a delete.
func (c *Change) Image() Row {
	if c.After != nil {
		return c.After
	}
	return c.Before
}

// Position is where the binlog stream resumes. GTID is the server's GTID set in its flavor's
// text form (MariaDB "0-1-42", MySQL "uuid:1-42"); when empty, File and Pos are used.
type Position struct {
	GTID string
	File string
	Pos  uint32
}

// IsZero reports whether p names no position.
func (p Position) IsZero() bool { return p.GTID == "" && p.File == "" }

// String renders p as "gtid:<set>" or "file:<name>:<pos>", the form ParsePosition reads and the
// CLI prints. A position with both keeps both: "gtid:<set>;file:<name>:<pos>".
func (p Position) String() string {
	var parts []string
	if p.GTID != "" {
		parts = append(parts, "gtid:"+p.GTID)
	}
	if p.File != "" {
		parts = append(parts, "file:"+p.File+":"+strconv.FormatUint(uint64(p.Pos), 10))
	}
	return strings.Join(parts, ";")
}

// ParsePosition reads what Position.String writes. It also accepts a bare "name:pos" file
// position and a bare GTID set.
func ParsePosition(s string) (Position, error) {
	var p Position
	s = strings.TrimSpace(s)
	if s == "" {
		return p, fmt.Errorf("empty position")
	}
	for _, part := range strings.Split(s, ";") {
		switch {
		case strings.HasPrefix(part, "gtid:"):
			p.GTID = strings.TrimPrefix(part, "gtid:")
		case strings.HasPrefix(part, "file:"):
			f, err := parseFilePos(strings.TrimPrefix(part, "file:"))
			if err != nil {
				return Position{}, fmt.Errorf("position %q: %w", s, err)
			}
			p.File, p.Pos = f.File, f.Pos
		default:
			if f, err := parseFilePos(part); err == nil && strings.Contains(f.File, ".") {
				p.File, p.Pos = f.File, f.Pos
			} else {
				p.GTID = part
			}
		}
	}
	return p, nil
}

func parseFilePos(s string) (Position, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Position{}, fmt.Errorf("want file:pos, got %q", s)
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil {
		return Position{}, fmt.Errorf("want file:pos, got %q: %w", s, err)
	}
	return Position{File: s[:i], Pos: uint32(n)}, nil
}

// Txn is one committed transaction: its row changes in binlog order and the position right
// after its commit. A Txn with no Changes is a progress marker (a transaction on unwatched
// tables, DDL, a rotate) that moves the checkpoint.
type Txn struct {
	Position   Position
	CommitTime time.Time
	Changes    []Change
}
