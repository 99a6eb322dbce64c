package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"notifier/cdc"
	"notifier/ingest"
	"notifier/rules"
	"notifier/snapshot"
)

// run executes or resumes one run of sw for tick. The caller holds the sweep's claim.
func (s *Scheduler) run(ctx context.Context, sw *rules.Sweep, tick time.Time) (res Result, err error) {
	begin := time.Now()
	tick = tick.UTC()
	res.Sweep, res.Tick = sw.Name, tick
	cur, ok, err := LoadCursor(s.opts.Store, sw.Name)
	if err != nil {
		return res, err
	}
	switch {
	case ok && cur.Tick.Equal(tick) && cur.Done:
		res.Rows, res.Messages, res.Done, res.Already = cur.Rows, cur.Messages, true, true
		return res, nil
	case ok && cur.Tick.Equal(tick):
		res.Resumed = true
		s.log.Warn("resuming an interrupted sweep run", "sweep", sw.Name, "tick", tick, "after", cur.After.String(), "rows", cur.Rows)
	default:
		cur = Cursor{Tick: tick, Started: s.opts.Now().UTC()}
	}
	runsCounter(sw.Name).Inc()
	defer func() {
		res.Took = time.Since(begin)
		if err != nil {
			errorsCounter(sw.Name).Inc()
			err = fmt.Errorf("sweep %q run %s: %w", sw.Name, tick.Format(time.RFC3339), err)
			return
		}
		lastSuccessGauge(sw.Name).Set(float64(s.opts.Now().Unix()))
	}()

	conn, err := client.Connect(s.opts.Addr, s.opts.User, s.opts.Password, "")
	if err != nil {
		return res, fmt.Errorf("connect to %s: %w", s.opts.Addr, err)
	}
	defer conn.Close()
	// TIMESTAMP values print in the session zone; UTC keeps them equal to the binlog's.
	if _, err := conn.Execute("SET time_zone = '+00:00'"); err != nil {
		return res, fmt.Errorf("set time zone: %w", err)
	}
	set := s.rules.Load()
	origin := "sweep:" + sw.Name + "@" + tick.Format(time.RFC3339)
	query := strings.TrimRight(strings.TrimSpace(sw.Query), ";")
	var cols *cdc.SQLTable
	keyIdx := -1
	var effects []rules.Effect
	var read int64 // rows read by this call, for the throttle
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		page, err := s.page(ctx, conn, query, sw.KeyColumn, cur.After)
		if err != nil {
			return res, err
		}
		if cols == nil {
			cols = cdc.ResultColumns(page.Fields)
			for i, c := range cols.Columns {
				if c == sw.KeyColumn {
					keyIdx = i
				}
			}
			if keyIdx < 0 {
				return res, fmt.Errorf("query result has no column %q (columns %v): %w", sw.KeyColumn, cols.Columns, ErrKeyColumn)
			}
		}
		// The blast-radius guard (max_per_minute) is not applied to sweeps: a sweep is a
		// planned mass send, paced by the channels' rates.
		var b ingest.Builder
		src := ingest.Source{Origin: origin, Version: tick, Now: s.opts.Now()}
		vals := make([]any, len(page.Fields))
		for i := range page.Values {
			for j := range vals {
				vals[j] = page.Values[i][j].Value()
			}
			row, err := cols.Row(vals)
			if err != nil {
				return res, err
			}
			key := row[sw.KeyColumn]
			if key == nil {
				return res, fmt.Errorf("row %d after %s: key column %q is NULL: %w", i, cur.After.String(), sw.KeyColumn, ErrKeyColumn)
			}
			effects = set.EvaluateSweep(sw, row, tick, effects[:0])
			src.Row = snapshot.Values{key}.String()
			for k := range effects {
				s.add(&b, &effects[k], &src)
			}
			cur.After = snapshot.Values{key}
		}
		clear(effects)
		n := len(page.Values)
		page.Close()
		cur.Rows += int64(n)
		cur.Messages += int64(b.Messages())
		cur.Done = n < s.opts.PageSize
		if cur.Done {
			cur.Finished = s.opts.Now().UTC()
		}
		c, err := json.Marshal(cur)
		if err != nil {
			return res, fmt.Errorf("encode cursor: %w", err)
		}
		batch, _ := b.Finish()
		batch.Cursors = map[string][]byte{CursorName(sw.Name): c}
		if _, err := s.opts.Store.Apply(ctx, batch); err != nil {
			return res, fmt.Errorf("commit %d rows after %s: %w", n, cur.After.String(), err)
		}
		rowsCounter(sw.Name).Add(n)
		messagesCounter(sw.Name).Add(b.Messages())
		if b.Messages() > 0 && s.opts.Kick != nil {
			s.opts.Kick()
		}
		res.Rows, res.Messages, res.Done = cur.Rows, cur.Messages, cur.Done
		if s.opts.OnProgress != nil {
			s.opts.OnProgress(res.Progress)
		}
		if cur.Done {
			s.log.Info("sweep run finished", "sweep", sw.Name, "tick", tick, "rows", cur.Rows, "messages", cur.Messages)
			return res, nil
		}
		read += int64(n)
		if err := s.throttle(ctx, begin, read); err != nil {
			return res, err
		}
	}
}

// page runs one keyset page of the query: rows whose key column is after `after`, in key
// order. The query is wrapped as a derived table, so it may join and compute columns; the
// server pushes the key condition into it where it can.
func (s *Scheduler) page(ctx context.Context, conn *client.Conn, query, keyCol string, after snapshot.Values) (*mysql.Result, error) {
	col := "`sweep_page`.`" + strings.ReplaceAll(keyCol, "`", "``") + "`"
	var q strings.Builder
	q.WriteString("SELECT * FROM (" + query + ") AS `sweep_page`")
	if len(after) == 1 {
		lit, err := cdc.SQLLiteral(after[0])
		if err != nil {
			return nil, fmt.Errorf("cursor: %w", err)
		}
		q.WriteString(" WHERE " + col + " > " + lit)
	}
	q.WriteString(" ORDER BY " + col + " LIMIT " + strconv.Itoa(s.opts.PageSize))
	// go-mysql's client has no context: a deadline on the connection bounds the query, and
	// cancelling ctx closes it.
	_ = conn.SetDeadline(time.Now().Add(s.opts.QueryTimeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	res, err := conn.Execute(q.String())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("query page after %s: %w", after.String(), err)
	}
	return res, nil
}

// throttle sleeps until `read` rows since start fit in RowsPerSecond.
func (s *Scheduler) throttle(ctx context.Context, start time.Time, read int64) error {
	if s.opts.RowsPerSecond <= 0 {
		return nil
	}
	wait := time.Until(start.Add(time.Duration(float64(read) / float64(s.opts.RowsPerSecond) * float64(time.Second))))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
