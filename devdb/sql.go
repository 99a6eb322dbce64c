package devdb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// Exec runs each statement in order as root and stops at the first error.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := s.DB()
	if err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("devdb: %s: exec %q: %w", s.Name, abbrev(q), err)
		}
	}
	return nil
}

func abbrev(q string) string {
	if len(q) > 200 {
		return q[:200] + "…"
	}
	return q
}

// QueryRow runs a query as root and returns its first row as strings (NULL as ""), keyed by
// column name; nil when there is no row.
func (s *Server) QueryRow(ctx context.Context, query string, args ...any) (map[string]string, error) {
	db, err := s.DB()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("devdb: %s: query %q: %w", s.Name, abbrev(query), err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("devdb: %s: query %q: %w", s.Name, abbrev(query), err)
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("devdb: %s: query %q: %w", s.Name, abbrev(query), err)
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, rows.Err()
}

// SlaveStatus returns SHOW SLAVE STATUS as column → value (nil map when not a replica).
func (s *Server) SlaveStatus(ctx context.Context) (map[string]string, error) {
	return s.QueryRow(ctx, "SHOW SLAVE STATUS")
}

// GTIDBinlogPos returns @@gtid_binlog_pos: the GTID set in the server's own binlog.
func (s *Server) GTIDBinlogPos(ctx context.Context) (string, error) {
	m, err := s.QueryRow(ctx, "SELECT @@GLOBAL.gtid_binlog_pos AS pos")
	if err != nil {
		return "", err
	}
	return m["pos"], nil
}

// MasterStatus returns the server's current binlog file and position.
func (s *Server) MasterStatus(ctx context.Context) (file string, pos uint32, err error) {
	m, err := s.QueryRow(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return "", 0, err
	}
	if m == nil {
		return "", 0, fmt.Errorf("devdb: %s: binlog is off", s.Name)
	}
	p, err := strconv.ParseUint(m["Position"], 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("devdb: %s: master status position %q: %w", s.Name, m["Position"], err)
	}
	return m["File"], uint32(p), nil
}

// PurgeBinlogs rotates the server's binlog and purges every file before the new one, so that
// any earlier position is gone. It retries until the server has let go of the old files (InnoDB
// keeps a binlog until its binlog checkpoint is written) or ctx is done. A file still read by a
// connected binlog reader is kept by the server, so stop readers first.
func (s *Server) PurgeBinlogs(ctx context.Context) error {
	if err := s.Exec(ctx, "FLUSH BINARY LOGS"); err != nil {
		return err
	}
	file, _, err := s.MasterStatus(ctx)
	if err != nil {
		return err
	}
	for {
		if err := s.Exec(ctx, fmt.Sprintf("PURGE BINARY LOGS TO '%s'", file)); err != nil {
			return err
		}
		first, err := s.QueryRow(ctx, "SHOW BINARY LOGS")
		if err != nil {
			return err
		}
		if first["Log_name"] == file {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devdb: %s: purge binlogs before %s: %s still kept: %w", s.Name, file, first["Log_name"], ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
