package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"notifier/cdc"
)

// RowReader reads the latest image of a row, for a rule's `recheck` at fire time.
//
// LatestRow returns the current row of table ("schema.table") whose primary key has the values
// it has in image (the row as the message's change saw it); found is false when the row is gone.
type RowReader interface {
	LatestRow(ctx context.Context, table string, image map[string]any) (row cdc.Row, found bool, err error)
}

// ReplicaRows is the RowReader over the replica: one connection (opened on first use, reopened
// after an error), primary-key columns from information_schema (cached per table), values
// normalised like the binlog's (cdc.ResultColumns). The replica may lag behind the primary by
// its replication delay; a recheck sees the row as of then.
type ReplicaRows struct {
	Addr, User, Password string
	// Timeout bounds connecting and each query (default 5 s).
	Timeout time.Duration

	mu   sync.Mutex
	conn *client.Conn
	pks  map[string][]string
}

// LatestRow implements RowReader.
func (r *ReplicaRows) LatestRow(ctx context.Context, table string, image map[string]any) (cdc.Row, bool, error) {
	schema, name, ok := strings.Cut(table, ".")
	if !ok || schema == "" || name == "" {
		return nil, false, fmt.Errorf("recheck row of %q: want schema.table", table)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	row, found, err := r.latest(ctx, schema, name, image)
	if err != nil && r.conn != nil {
		_ = r.conn.Close()
		r.conn = nil
	}
	return row, found, err
}

func (r *ReplicaRows) latest(ctx context.Context, schema, name string, image map[string]any) (cdc.Row, bool, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if r.conn == nil {
		conn, err := client.ConnectWithContext(ctx, r.Addr, r.User, r.Password, "", timeout)
		if err != nil {
			return nil, false, fmt.Errorf("recheck: connect to %s: %w", r.Addr, err)
		}
		// TIMESTAMP text is read as UTC (cdc.SQLTable).
		if _, err := conn.Execute("SET time_zone = '+00:00'"); err != nil {
			_ = conn.Close()
			return nil, false, fmt.Errorf("recheck: set time zone: %w", err)
		}
		r.conn = conn
	}
	_ = r.conn.SetDeadline(time.Now().Add(timeout))
	table := schema + "." + name
	pk, ok := r.pks[table]
	if !ok {
		res, err := r.conn.Execute(fmt.Sprintf(`SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
			WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
			mysql.Escape(schema), mysql.Escape(name)))
		if err != nil {
			return nil, false, fmt.Errorf("recheck: primary key of %s: %w", table, err)
		}
		for i := range res.Values {
			pk = append(pk, string(res.Values[i][0].AsString()))
		}
		if len(pk) == 0 {
			return nil, false, fmt.Errorf("recheck: %s has no primary key", table)
		}
		if r.pks == nil {
			r.pks = map[string][]string{}
		}
		r.pks[table] = pk
	}
	var where []string
	for _, col := range pk {
		lit, err := sqlLiteral(image[col])
		if err != nil {
			return nil, false, fmt.Errorf("recheck: %s key column %s: %w", table, col, err)
		}
		where = append(where, "`"+strings.ReplaceAll(col, "`", "``")+"` = "+lit)
	}
	q := fmt.Sprintf("SELECT * FROM `%s`.`%s` WHERE %s", strings.ReplaceAll(schema, "`", "``"),
		strings.ReplaceAll(name, "`", "``"), strings.Join(where, " AND "))
	res, err := r.conn.Execute(q)
	if err != nil {
		return nil, false, fmt.Errorf("recheck: read %s: %w", table, err)
	}
	if len(res.Values) == 0 {
		return nil, false, nil
	}
	vals := make([]any, len(res.Fields))
	for i := range vals {
		vals[i] = res.Values[0][i].Value()
	}
	row, err := cdc.ResultColumns(res.Fields).Row(vals)
	if err != nil {
		return nil, false, fmt.Errorf("recheck: %s: %w", table, err)
	}
	return row, true, nil
}

// sqlLiteral renders a key value decoded from a message's JSON data (numbers kept as
// json.Number) as an SQL literal.
func sqlLiteral(v any) (string, error) {
	switch x := v.(type) {
	case json.Number:
		return x.String(), nil
	case string:
		return "'" + mysql.Escape(x) + "'", nil
	case nil:
		return "", errors.New("NULL or missing in the message data")
	}
	return "", fmt.Errorf("value of type %T cannot be a key", v)
}

// recheckImage extracts the table and the row image (new, else old) from a message's JSON
// template data.
func recheckImage(data []byte) (table string, image map[string]any, err error) {
	var d struct {
		Table string         `json:"table"`
		New   map[string]any `json:"new"`
		Old   map[string]any `json:"old"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return "", nil, fmt.Errorf("message data: %w", err)
	}
	image = d.New
	if image == nil {
		image = d.Old
	}
	if d.Table == "" || image == nil {
		return "", nil, errors.New("message data has no table or row")
	}
	return d.Table, image, nil
}
