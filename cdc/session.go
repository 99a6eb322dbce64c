package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"
)

// session is one binlog connection: from a transaction boundary until the connection fails,
// ctx is done or a fatal error. Its event handler runs on go-mysql's reading goroutine
// (SynchronousEventHandler); complete transactions go through a queue to convert, which
// normalises their rows on another goroutine and sends them.
type session struct {
	r      *Reader
	flavor string
	ctx    context.Context
	out    chan<- *Txn
	schema *schemaCache

	start     Position // where this session started
	delivered Position // position after the last Txn sent (the resume point); owned by convert
	sent      int      // Txns sent by this session; owned by convert

	file    string             // current binlog file
	gset    mysql.GTIDSet      // GTID set after the last complete transaction; nil without GTIDs
	next    *mysql.MariadbGTID // MariaDB: GTID of the transaction being read
	nextSID []byte             // MySQL: SID/GNO of the transaction being read
	nextGNO int64

	events    []rowsEvent // watched rows events of the transaction being read
	undecoded []undecoded // watched rows events parsed but not yet handled
	rowsSeq   int         // rows events seen in the transaction being read
	inTxn     bool
	// explicit: the transaction being read ends with XID or COMMIT, not with a query event.
	explicit bool

	// work carries complete transactions from the decoding goroutine to convert, which builds
	// the Rows and sends the Txns: normalisation runs on a second core, in binlog order.
	work    chan *work
	convErr error              // a row image convert could not decode; owned by convert
	stop    context.CancelFunc // ends the session (convert's way to stop the stream)

	progress     *work     // latest progress-only transaction not yet sent
	lastProgress time.Time // when a progress-only Txn was last sent
}

func newSession(r *Reader, from Position, out chan<- *Txn) *session {
	return &session{r: r, out: out, start: from, delivered: from, file: from.File}
}

// run connects and streams until an error. The returned error is classified by fatal.
func (s *session) run(ctx context.Context) error {
	ctx, s.stop = context.WithCancel(ctx)
	defer s.stop()
	s.ctx = ctx
	o := &s.r.opts
	s.flavor = s.r.serverFlavor()
	s.schema = newSchemaCache(s.r.metaDB(), s.flavor)
	if s.flavor == FlavorMariaDB || s.start.GTID != "" {
		gs, err := mysql.ParseGTIDSet(s.flavor, s.start.GTID)
		if err != nil {
			return fmt.Errorf("position %s: %w", s.start, err)
		}
		s.gset = gs
	}
	host, port, _ := net.SplitHostPort(o.Addr)
	p, _ := strconv.ParseUint(port, 10, 16)
	dialer := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	cfg := replication.BinlogSyncerConfig{
		ServerID:        o.ServerID,
		Flavor:          s.flavor,
		Host:            host,
		Port:            uint16(p),
		User:            o.User,
		Password:        o.Password,
		Charset:         "utf8mb4",
		ParseTime:       true,
		UseDecimal:      true,
		HeartbeatPeriod: o.HeartbeatPeriod,
		ReadTimeout:     o.ReadTimeout,
		// We reconnect ourselves from the last delivered transaction boundary: go-mysql's own
		// retry resumes mid-transaction in file:pos mode (go-mysql #48, #396).
		DisableRetrySync: true,
		Logger:           slog.New(levelFilter{Handler: o.Logger.Handler(), min: slog.LevelWarn}),
		Dialer:           dialer.DialContext,
		// MariaDB 11.4+ writes end_log_pos=0 inside transactions (go-mysql #893, #1035).
		FillZeroLogPos:  s.flavor == FlavorMariaDB,
		EventCacheCount: 16, // unused with a synchronous handler
		// Our RowsEventDecodeFunc keeps per-session state: decode compressed MySQL transaction
		// payloads on one goroutine.
		PayloadDecoderConcurrency: 1,
		RowsEventDecodeFunc:       s.decodeRows,
		SynchronousEventHandler:   s,
	}
	s.work = make(chan *work, 32)
	converted := make(chan struct{})
	go func() {
		defer close(converted)
		s.convert()
	}()
	err := s.stream(cfg)
	close(s.work) // the syncer is closed: no handler runs any more
	<-converted
	if s.convErr != nil {
		return s.convErr
	}
	return s.classify(err)
}

// stream runs the syncer until the stream ends; the handler queues complete transactions.
func (s *session) stream(cfg replication.BinlogSyncerConfig) error {
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	var streamer *replication.BinlogStreamer
	var err error
	if s.start.GTID != "" {
		streamer, err = syncer.StartSyncGTID(s.gset.Clone())
	} else {
		streamer, err = syncer.StartSync(mysql.Position{Name: s.start.File, Pos: s.start.Pos})
	}
	if err != nil {
		return err
	}
	s.r.opts.Logger.Info("binlog connected", "addr", s.r.opts.Addr, "from", s.start.String())
	s.r.setConnected(true)
	defer s.r.setConnected(false)
	// With a synchronous handler the streamer only ever carries the terminating error.
	_, err = streamer.GetEvent(s.ctx)
	return err
}

// classify maps a stream error to our sentinels where it is one.
func (s *session) classify(err error) error {
	if err == nil || errors.Is(err, ErrSchemaMismatch) || errors.Is(err, ErrRowImage) || errors.Is(err, ErrPositionPurged) {
		return err
	}
	var me *mysql.MyError
	if errors.As(err, &me) && (me.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG || me.Code == mysql.ER_MASTER_HAS_PURGED_REQUIRED_GTIDS) {
		return purgedError(s.delivered, "the server cannot send it: "+me.Message)
	}
	// Errors from the start of the dump are flattened to text by go-mysql.
	if msg := err.Error(); strings.Contains(msg, "ERROR 1236") || strings.Contains(msg, "ERROR 1789") {
		return purgedError(s.delivered, "the server cannot send it: "+msg)
	}
	return fmt.Errorf("binlog stream from %s: %w", s.r.opts.Addr, err)
}

// decodeRows decodes only the header of a rows event; the rows of watched tables are decoded
// later, by rows (go-mysql's decoder) or convert (the fast decoder), and unwatched ones never.
func (s *session) decodeRows(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	if e.Table == nil || !s.r.filter.watched(e.Table.Schema, e.Table.Table) {
		return nil
	}
	s.undecoded = append(s.undecoded, undecoded{e: e, pos: pos, data: data})
	return nil
}

// undecoded is the body of a watched rows event that was parsed but not decoded yet.
type undecoded struct {
	e    *replication.RowsEvent
	pos  int
	data []byte
}

// takeUndecoded returns the stashed body of e; ok is false for unwatched tables.
func (s *session) takeUndecoded(e *replication.RowsEvent) (undecoded, bool) {
	for i, u := range s.undecoded {
		if u.e == e {
			s.undecoded = append(s.undecoded[:i], s.undecoded[i+1:]...)
			return u, true
		}
	}
	return undecoded{}, false
}

// HandleEvent is called by go-mysql for every event, in order.
func (s *session) HandleEvent(ev *replication.BinlogEvent) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
	case *replication.MariadbGTIDEvent:
		if err := s.begin(h); err != nil {
			return err
		}
		g := e.GTID
		s.next = &g
		// A standalone event group (DDL, a non-transactional statement) ends with its query
		// event; any other ends with XID or COMMIT, even when it holds a DDL statement
		// (CREATE TABLE … SELECT).
		s.explicit = !e.IsStandalone()
	case *replication.GTIDEvent:
		if err := s.begin(h); err != nil {
			return err
		}
		s.nextSID, s.nextGNO = e.SID, e.GNO
	case *replication.QueryEvent:
		return s.query(h, e)
	case *replication.RowsEvent:
		return s.rows(h, e)
	case *replication.XIDEvent:
		return s.commit(h)
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			if err := s.HandleEvent(inner); err != nil {
				return err
			}
		}
	default:
		if h.EventType == replication.HEARTBEAT_EVENT || h.EventType == replication.HEARTBEAT_LOG_EVENT_V2 {
			return s.flushProgress(true)
		}
	}
	return nil
}

// begin starts a transaction at its GTID event. Rows still pending mean the previous event
// group ended without a commit: an XA transaction, which ends at XA PREPARE and is decided
// later. Attributing its rows to the next transaction, or dropping them, would be wrong.
func (s *session) begin(h *replication.EventHeader) error {
	if len(s.events) > 0 {
		t := s.events[0].t
		return fmt.Errorf("binlog %s:%d: the transaction before this one changed %s.%s but ended without a commit "+
			"(an XA transaction?): %w", s.file, h.LogPos, t.schema, t.name, ErrUnsupported)
	}
	s.events, s.undecoded = nil, s.undecoded[:0]
	s.rowsSeq = 0
	s.inTxn, s.explicit = true, false
	s.next, s.nextSID = nil, nil
	return nil
}

// query handles a query event: BEGIN, COMMIT (transactions on non-XA engines end with it),
// DDL (ends its own transaction, clears the schema cache), or a statement-based row change,
// which would lose rows silently and is therefore fatal.
func (s *session) query(h *replication.EventHeader, e *replication.QueryEvent) error {
	q := strings.TrimSpace(string(e.Query))
	verb := strings.ToUpper(firstWord(q))
	switch verb {
	case "BEGIN":
		s.inTxn, s.explicit = true, true
		return nil
	case "COMMIT", "ROLLBACK":
		if verb == "ROLLBACK" && len(q) > len("ROLLBACK") {
			return nil // ROLLBACK TO SAVEPOINT
		}
		return s.commit(h)
	case "SAVEPOINT", "RELEASE", "XA":
		return nil
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD":
		return fmt.Errorf("binlog %s:%d holds a statement-based row change (%.60q): the source's binlog_format "+
			"must be ROW: %w", s.file, h.LogPos, q, ErrRowImage)
	}
	// DDL and other statements: the table definitions may have changed.
	s.schema.clear()
	if verb == "TRUNCATE" {
		s.r.opts.Logger.Warn("TRUNCATE in the binlog: its deleted rows yield no changes", "statement", fmt.Sprintf("%.100s", q),
			"binlog", s.file, "pos", h.LogPos)
	}
	if strings.HasSuffix(strings.ToUpper(strings.TrimRight(q, "; \t\r\n")), "START TRANSACTION") {
		s.explicit = true // MySQL 8 CREATE TABLE … SELECT: rows and XID follow
	}
	if s.explicit {
		return nil // the transaction goes on: XID or COMMIT ends it
	}
	return s.commit(h)
}

func firstWord(q string) string {
	for len(q) > 0 && (q[0] == '/' || q[0] == '(') { // skip /* comments */ and parentheses
		if strings.HasPrefix(q, "/*") {
			if i := strings.Index(q, "*/"); i >= 0 {
				q = strings.TrimSpace(q[i+2:])
				continue
			}
		}
		q = strings.TrimSpace(q[1:])
	}
	if i := strings.IndexAny(q, " \t\r\n;("); i >= 0 {
		return q[:i]
	}
	return q
}

// rows turns one rows event into Changes. Each Change's Index is the rows event's ordinal in
// the transaction (counting events of every table, watched or not) << 32 | the row's ordinal
// in the event: unique, increasing, and independent of the Include/Exclude filter.
func (s *session) rows(h *replication.EventHeader, e *replication.RowsEvent) error {
	seq := s.rowsSeq
	s.rowsSeq++
	u, ok := s.takeUndecoded(e)
	if !ok {
		return nil // an unwatched table
	}
	if h.EventType == replication.PARTIAL_UPDATE_ROWS_EVENT {
		return fmt.Errorf("binlog %s:%d: partial JSON update of %s.%s: set binlog_row_value_options='' on the source: %w",
			s.file, h.LogPos, e.Table.Schema, e.Table.Table, ErrRowImage)
	}
	t, err := s.schema.forRows(s.ctx, e.Table)
	if err != nil {
		return fmt.Errorf("binlog %s:%d: %w", s.file, h.LogPos, err)
	}
	ev := rowsEvent{t: t, base: seq << 32, tm: e.Table}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		ev.op = OpInsert
	case replication.EnumRowsEventTypeDelete:
		ev.op = OpDelete
	case replication.EnumRowsEventTypeUpdate:
		ev.op = OpUpdate
	default:
		return fmt.Errorf("binlog %s:%d: unknown rows event type %s", s.file, h.LogPos, h.EventType)
	}
	ncol := len(t.cols)
	compressed := h.EventType == replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1 ||
		h.EventType == replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1 ||
		h.EventType == replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1
	if !compressed && t.fastFor(e.Table) && fullImage(e.ColumnBitmap1, ncol) &&
		(ev.op != OpUpdate || fullImage(e.ColumnBitmap2, ncol)) && !s.r.opts.slowDecode {
		ev.body = u.data[u.pos:] // decoded by convert, on another core
	} else {
		if err := e.DecodeData(u.pos, u.data); err != nil {
			return fmt.Errorf("binlog %s:%d: table %s.%s: %w", s.file, h.LogPos, t.schema, t.name, err)
		}
		for i := range e.SkippedColumns {
			if len(e.SkippedColumns[i]) > 0 {
				return fmt.Errorf("binlog %s:%d: table %s.%s: row image lacks %d columns: the source's binlog_row_image "+
					"must be FULL: %w", s.file, h.LogPos, t.schema, t.name, len(e.SkippedColumns[i]), ErrRowImage)
			}
		}
		if ev.op == OpUpdate && len(e.Rows)%2 != 0 {
			return fmt.Errorf("binlog %s:%d: update of %s.%s has an odd number of images", s.file, h.LogPos, t.schema, t.name)
		}
		ev.rows = e.Rows
	}
	s.events = append(s.events, ev)
	return nil
}

// commit ends the transaction being read: its GTID joins the set, and it is sent (or, with no
// watched change, kept as a progress marker).
func (s *session) commit(h *replication.EventHeader) error {
	if s.gset != nil {
		switch gs := s.gset.(type) {
		case *mysql.MariadbGTIDSet:
			if s.next != nil {
				if err := gs.AddSet(s.next); err != nil {
					return fmt.Errorf("binlog %s:%d: gtid %s: %w", s.file, h.LogPos, s.next, err)
				}
			}
		case *mysql.MysqlGTIDSet:
			if s.nextSID != nil {
				u, err := uuid.FromBytes(s.nextSID)
				if err != nil {
					return fmt.Errorf("binlog %s:%d: gtid: %w", s.file, h.LogPos, err)
				}
				gs.AddGTID(u, s.nextGNO)
			}
		}
	}
	pos := Position{File: s.file, Pos: h.LogPos}
	if s.gset != nil {
		pos.GTID = s.gset.String()
	}
	w := &work{txn: Txn{Position: pos, CommitTime: time.Unix(int64(h.Timestamp), 0).UTC()}, events: s.events}
	s.events, s.next, s.nextSID, s.inTxn, s.explicit, s.rowsSeq = nil, nil, nil, false, false, 0
	if len(w.events) > 0 {
		s.progress = nil
		return s.queue(w)
	}
	s.progress = w
	return s.flushProgress(false)
}

// flushProgress sends the pending progress-only Txn when ProgressInterval has passed since the
// last one (idle: on a heartbeat).
func (s *session) flushProgress(idle bool) error {
	if s.progress == nil || s.inTxn && !idle {
		return nil
	}
	now := s.r.opts.Now()
	if now.Sub(s.lastProgress) < s.r.opts.ProgressInterval {
		return nil
	}
	w := s.progress
	s.progress = nil
	s.lastProgress = now
	return s.queue(w)
}

func (s *session) queue(w *work) error {
	select {
	case s.work <- w:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}
