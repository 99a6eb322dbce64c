package cdc

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Snapshot reads table ("schema.table") in primary-key order inside one consistent snapshot
// and calls fn once per non-empty page of at most pageSize rows (0: 1000). Rows come as
// Changes with Op OpSnapshot, After set, values normalised exactly as the binlog's are (a row
// read here DeepEquals the After of its binlog insert), and Index the row's ordinal in its
// page. Each page is passed as a Txn whose Position is the snapshot's binlog position (the
// same for every page of one call; it is NOT a checkpoint to store per page) and whose
// CommitTime is when the snapshot was opened, with cursor: the primary key of the page's last
// row, in key order.
//
// Resume an interrupted snapshot by passing the last cursor fn received as after (nil: from the
// start). A resumed call opens a new snapshot at a later position: rows before the cursor were
// read at the earlier one. Tailing the binlog from the FIRST call's Position covers every
// change since; message keys that are the same for snapshot and binlog rows make the overlap
// harmless.
//
// Snapshot returns the snapshot's position. It reads at most Options.SnapshotRowsPerSecond rows
// per second. On MariaDB it takes no lock (START TRANSACTION WITH CONSISTENT SNAPSHOT and the
// binlog_snapshot_* status); on MySQL it briefly holds FLUSH TABLES … WITH READ LOCK on the
// table to read a matching position, which needs the RELOAD privilege (or LOCK TABLES).
// An error from fn stops the snapshot and is returned as is.
func (r *Reader) Snapshot(ctx context.Context, table string, after []any, pageSize int,
	fn func(txn *Txn, cursor []any) error) (Position, error) {
	schema, name, ok := strings.Cut(table, ".")
	if !ok || schema == "" || name == "" {
		return Position{}, fmt.Errorf("snapshot %q: want schema.table", table)
	}
	if pageSize <= 0 {
		pageSize = 1000
	}
	if r.isClosed() {
		return Position{}, ErrClosed
	}
	db := r.metaDB()
	flavor, err := r.detectFlavor(ctx, db)
	if err != nil {
		return Position{}, err
	}
	cache := newSchemaCache(db, flavor)
	t, err := cache.lookup(ctx, schema, name)
	if err != nil {
		return Position{}, fmt.Errorf("snapshot %s: %w", table, err)
	}
	pk, err := primaryKey(ctx, db, t)
	if err != nil {
		return Position{}, err
	}
	if len(after) != 0 && len(after) != len(pk) {
		return Position{}, fmt.Errorf("snapshot %s: cursor has %d values, the primary key %d columns", table, len(after), len(pk))
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		return Position{}, fmt.Errorf("snapshot %s: connect: %w", table, err)
	}
	defer conn.Close()
	pos, err := r.openSnapshot(ctx, db, conn, flavor, t)
	if err != nil {
		return Position{}, fmt.Errorf("snapshot %s: %w", table, err)
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()

	opened := r.opts.Now().UTC()
	s := snapshotQuery{t: t, pk: pk, pageSize: pageSize}
	read := 0
	for cursor := after; ; {
		if err := ctx.Err(); err != nil {
			return pos, err
		}
		changes, err := s.page(ctx, conn, cursor)
		if err != nil {
			return pos, fmt.Errorf("snapshot %s at %s: %w", table, pos, err)
		}
		if len(changes) == 0 {
			return pos, nil
		}
		last := changes[len(changes)-1].After
		cursor = make([]any, len(pk))
		for i, c := range pk {
			cursor[i] = last[t.cols[c].name]
		}
		if err := fn(&Txn{Position: pos, CommitTime: opened, Changes: changes}, cursor); err != nil {
			return pos, err
		}
		read += len(changes)
		snapshotRows.Add(len(changes))
		if len(changes) < pageSize {
			return pos, nil
		}
		if err := r.throttle(ctx, opened, read); err != nil {
			return pos, err
		}
	}
}

// throttle sleeps until reading `read` rows since start is within SnapshotRowsPerSecond.
func (r *Reader) throttle(ctx context.Context, start time.Time, read int) error {
	rate := r.opts.SnapshotRowsPerSecond
	if rate <= 0 {
		return nil
	}
	due := start.Add(time.Duration(float64(read) / float64(rate) * float64(time.Second)))
	if wait := due.Sub(r.opts.Now()); wait > 0 {
		return sleep(ctx, wait)
	}
	return nil
}

func (r *Reader) detectFlavor(ctx context.Context, db *sql.DB) (string, error) {
	if r.opts.Flavor != "" {
		return r.opts.Flavor, nil
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return "", fmt.Errorf("server %s: read version: %w", r.opts.Addr, err)
	}
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return FlavorMariaDB, nil
	}
	return FlavorMySQL, nil
}

// openSnapshot starts the consistent snapshot on conn and returns its binlog position.
func (r *Reader) openSnapshot(ctx context.Context, db *sql.DB, conn *sql.Conn, flavor string, t *table) (Position, error) {
	// TIMESTAMP values print in the session zone; UTC keeps them equal to the binlog's.
	for _, q := range []string{"SET time_zone = '+00:00'", "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return Position{}, fmt.Errorf("%s: %w", q, err)
		}
	}
	if flavor == FlavorMySQL {
		return r.openMySQLSnapshot(ctx, db, conn, t)
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return Position{}, fmt.Errorf("start consistent snapshot: %w", err)
	}
	rows, err := conn.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return Position{}, fmt.Errorf("read snapshot position: %w", err)
	}
	var p Position
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return Position{}, fmt.Errorf("read snapshot position: %w", err)
		}
		switch strings.ToLower(k) {
		case "binlog_snapshot_file":
			p.File = v
		case "binlog_snapshot_position":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				rows.Close()
				return Position{}, fmt.Errorf("snapshot position %q: %w", v, err)
			}
			p.Pos = uint32(n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Position{}, fmt.Errorf("read snapshot position: %w", err)
	}
	if p.File == "" {
		return Position{}, fmt.Errorf("server %s reports no binlog snapshot position (log_bin off?): %w", r.opts.Addr, ErrRowImage)
	}
	var gtid sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos).Scan(&gtid); err != nil {
		return Position{}, fmt.Errorf("position %s: look up gtid: %w", p, err)
	}
	p.GTID = gtid.String
	return p, nil
}

// openMySQLSnapshot holds a read lock on the table on a second connection while conn starts
// its snapshot and the position is read, so position and snapshot match.
func (r *Reader) openMySQLSnapshot(ctx context.Context, db *sql.DB, conn *sql.Conn, t *table) (Position, error) {
	lock, err := db.Conn(ctx)
	if err != nil {
		return Position{}, fmt.Errorf("connect for the read lock: %w", err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "FLUSH TABLES "+quoteName(t.schema, t.name)+" WITH READ LOCK"); err != nil {
		return Position{}, fmt.Errorf("lock table for a consistent position (needs RELOAD or LOCK TABLES): %w", err)
	}
	defer func() { _, _ = lock.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES") }()
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return Position{}, fmt.Errorf("start consistent snapshot: %w", err)
	}
	return r.current(ctx, db, FlavorMySQL)
}

// primaryKey returns the indexes (into t.cols) of the table's primary key columns.
func primaryKey(ctx context.Context, db *sql.DB, t *table) ([]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, t.schema, t.name)
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: read primary key: %w", t.schema, t.name, err)
	}
	defer rows.Close()
	var pk []int
	for rows.Next() {
		var col string
		if err := rows.Scan(&col); err != nil {
			return nil, fmt.Errorf("table %s.%s: read primary key: %w", t.schema, t.name, err)
		}
		for i := range t.cols {
			if t.cols[i].name == col {
				pk = append(pk, i)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table %s.%s: read primary key: %w", t.schema, t.name, err)
	}
	if len(pk) == 0 {
		return nil, fmt.Errorf("table %s.%s has no primary key: a snapshot pages by primary key", t.schema, t.name)
	}
	return pk, nil
}

// snapshotQuery builds and runs the keyset-paginated SELECT of one table.
type snapshotQuery struct {
	t        *table
	pk       []int
	pageSize int
	head     string // SELECT … FROM …
}

func (s *snapshotQuery) page(ctx context.Context, conn *sql.Conn, after []any) ([]Change, error) {
	t := s.t
	if s.head == "" {
		cols := make([]string, len(t.cols))
		for i := range t.cols {
			cols[i] = quoteIdent(t.cols[i].name)
			if t.cols[i].dataType == "float" {
				// The server prints FLOAT with 6 digits; as DOUBLE it keeps every bit of the
				// float32, which textValue rounds to the binlog's shortest form.
				cols[i] = "CAST(" + cols[i] + " AS DOUBLE)"
			}
		}
		s.head = "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteName(t.schema, t.name)
	}
	var q strings.Builder
	q.WriteString(s.head)
	if len(after) > 0 {
		// (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …: a range on the primary key for any optimizer.
		lits := make([]string, len(s.pk))
		for j := range s.pk {
			lit, err := SQLLiteral(after[j])
			if err != nil {
				return nil, fmt.Errorf("cursor column %s: %w", t.cols[s.pk[j]].name, err)
			}
			lits[j] = lit
		}
		clauses := make([]string, len(s.pk))
		for i := range s.pk {
			parts := make([]string, 0, i+1)
			for j := 0; j < i; j++ {
				parts = append(parts, quoteIdent(t.cols[s.pk[j]].name)+" = "+lits[j])
			}
			parts = append(parts, quoteIdent(t.cols[s.pk[i]].name)+" > "+lits[i])
			clauses[i] = "(" + strings.Join(parts, " AND ") + ")"
		}
		q.WriteString(" WHERE " + strings.Join(clauses, " OR "))
	}
	q.WriteString(" ORDER BY ")
	for i, c := range s.pk {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(quoteIdent(t.cols[c].name))
	}
	q.WriteString(" LIMIT " + strconv.Itoa(s.pageSize))

	rows, err := conn.QueryContext(ctx, q.String())
	if err != nil {
		return nil, fmt.Errorf("select page: %w", err)
	}
	defer rows.Close()
	out := make([]Change, 0, s.pageSize)
	vals := make([]any, len(t.cols))
	ptrs := make([]any, len(t.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read row: %w", err)
		}
		r := make(Row, len(t.cols))
		for i := range t.cols {
			v, err := t.cols[i].textValue(vals[i])
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", t.cols[i].name, err)
			}
			r[t.names[i]] = v
		}
		out = append(out, Change{Schema: t.schema, Table: t.name, Op: OpSnapshot, After: r, Index: len(out)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return out, nil
}

// textValue normalises a value read over the text protocol (go-mysql gives int64/uint64 for
// integers, float64 for FLOAT/DOUBLE, bytes for the rest) to what the binlog path yields.
func (c *column) textValue(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		if c.kind == kindUint {
			return uint64(x), nil
		}
		return x, nil
	case uint64:
		if c.kind == kindInt || c.kind == kindYear {
			return int64(x), nil
		}
		return x, nil
	case float64:
		if c.dataType == "float" {
			return float32Value(float32(x)), nil
		}
		return x, nil
	case string:
		return c.text2(x), nil
	case []byte:
		return c.text2(string(x)), nil
	}
	return nil, fmt.Errorf("unexpected %T from the server", v)
}

func (c *column) text2(s string) any {
	switch c.kind {
	case kindDecimal:
		if d, err := decimal.NewFromString(s); err == nil {
			return d
		}
	case kindDate:
		return parseDate(s)
	case kindDateTime, kindTimestamp:
		return parseDateTime(s)
	case kindBytes, kindBit:
		return []byte(s)
	case kindJSON:
		return decodeJSON([]byte(s))
	case kindInt, kindYear:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case kindUint:
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n
		}
	case kindFloat:
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return s // strings, ENUM and SET names, TIME
}

// SQLLiteral renders a keyset cursor value (as found in a Row) as an SQL literal. Strings go
// hex-encoded with a character set introducer, so no escaping or sql_mode matters and the
// column's collation orders them; bytes go as hex. Snapshots and sweeps page with it.
func SQLLiteral(v any) (string, error) {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case decimal.Decimal:
		return x.String(), nil
	case time.Time:
		return "'" + x.UTC().Format("2006-01-02 15:04:05.999999") + "'", nil
	case string:
		if x == "" {
			return "''", nil
		}
		return "_utf8mb4 X'" + hex.EncodeToString([]byte(x)) + "'", nil
	case []byte:
		if len(x) == 0 {
			return "X''", nil
		}
		return "X'" + hex.EncodeToString(x) + "'", nil
	case int:
		return strconv.Itoa(x), nil
	}
	return "", errors.New("unsupported cursor value type " + fmt.Sprintf("%T", v))
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteName(schema, table string) string { return quoteIdent(schema) + "." + quoteIdent(table) }
