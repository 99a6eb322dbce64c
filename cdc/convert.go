package cdc

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"
)

// rowsEvent is one watched rows event, verified against its table, not yet normalised: either
// go-mysql's decoded rows or the raw body for the fast decoder.
type rowsEvent struct {
	t    *table
	op   Op
	base int                        // Index of the event's first change
	rows [][]any                    // go-mysql's images; update: before, after, before, after, ...
	body []byte                     // or the undecoded images
	tm   *replication.TableMapEvent // the table map the body refers to
}

// images returns the event's row images as Rows.
func (ev *rowsEvent) images() ([]Row, error) {
	if ev.body != nil {
		return ev.t.decodeImages(ev.tm, ev.body, ev.op == OpUpdate)
	}
	out := make([]Row, len(ev.rows))
	for i, vals := range ev.rows {
		out[i] = ev.t.row(vals)
	}
	return out, nil
}

// work is a complete transaction waiting for convert.
type work struct {
	txn    Txn
	events []rowsEvent
}

// changes builds the transaction's Changes.
func (w *work) changes() ([]Change, error) {
	if len(w.events) == 0 {
		return nil, nil
	}
	imgs := make([][]Row, len(w.events))
	n := 0
	for i := range w.events {
		rows, err := w.events[i].images()
		if err != nil {
			return nil, err
		}
		imgs[i] = rows
		if w.events[i].op == OpUpdate {
			n += len(rows) / 2
		} else {
			n += len(rows)
		}
	}
	out := make([]Change, 0, n)
	for k, ev := range w.events {
		t, rows := ev.t, imgs[k]
		switch ev.op {
		case OpInsert:
			for i, r := range rows {
				out = append(out, Change{Schema: t.schema, Table: t.name, Op: OpInsert, After: r, Index: ev.base | i})
			}
		case OpDelete:
			for i, r := range rows {
				out = append(out, Change{Schema: t.schema, Table: t.name, Op: OpDelete, Before: r, Index: ev.base | i})
			}
		case OpUpdate:
			for i := 0; i+1 < len(rows); i += 2 {
				out = append(out, Change{Schema: t.schema, Table: t.name, Op: OpUpdate,
					Before: rows[i], After: rows[i+1], Index: ev.base | i/2})
			}
		}
	}
	return out, nil
}

// convert normalises queued transactions and sends them, in order, until the queue is closed.
// After ctx is done it only drains the queue.
func (s *session) convert() {
	for w := range s.work {
		if s.ctx.Err() != nil {
			continue
		}
		t := &w.txn
		var err error
		if t.Changes, err = w.changes(); err != nil {
			s.convErr = fmt.Errorf("binlog transaction ending at %s: %w", t.Position, err)
			s.stop()
			continue
		}
		select {
		case s.out <- t:
			s.delivered = t.Position
			s.sent++
		case <-s.ctx.Done():
		}
	}
}
