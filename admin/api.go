package admin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/state"
)

// The routes. Everything under /api/ answers JSON ({"error": "..."} on failure); the export
// answers JSON lines.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		metrics.WritePrometheus(w, true)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)

	api := http.NewServeMux()
	api.HandleFunc("POST /-/reload", s.reload)
	api.HandleFunc("GET /api/v1/status", s.status)
	api.HandleFunc("GET /api/v1/messages", s.listMessages)
	api.HandleFunc("GET /api/v1/messages/{key}", s.getMessage)
	api.HandleFunc("POST /api/v1/messages/{key}/{action}", s.actMessage)
	api.HandleFunc("GET /api/v1/timers", s.timers)
	api.HandleFunc("GET /api/v1/dead", s.dead)
	api.HandleFunc("POST /api/v1/dead/{action}", s.deadAct)
	api.HandleFunc("GET /api/v1/checkpoint", s.getCheckpoint)
	api.HandleFunc("PUT /api/v1/checkpoint", s.putCheckpoint)
	api.HandleFunc("GET /api/v1/export", s.export)
	for pattern, h := range s.opts.Extra {
		if path := patternPath(pattern); strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/-/") {
			api.Handle(pattern, h)
		} else {
			mux.Handle(pattern, h)
		}
	}
	guarded := s.authorize(api)
	mux.Handle("/api/", guarded)
	mux.Handle("/-/", guarded)
	return mux
}

// patternPath strips the method and host of a ServeMux pattern.
func patternPath(p string) string {
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = strings.TrimSpace(p[i+1:])
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:]
	}
	return p
}

// authorize requires "Authorization: Bearer <token>" when a token is configured. Both sides
// are hashed first so that the comparison takes the same time whatever the lengths.
func (s *Server) authorize(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.opts.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(want[:], sum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="notifier"`)
			writeError(w, ErrUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readyz: the store answers, the binlog is connected and the lag is under MaxLag.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	var problems []string
	if _, _, err := s.opts.Store.Checkpoint(); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if s.opts.Status != nil {
		st := s.opts.Status()
		if !st.BinlogConnected {
			problems = append(problems, "binlog: not connected")
		}
		if st.Lag > s.opts.MaxLag {
			problems = append(problems, fmt.Sprintf("binlog: lag %s over %s", st.Lag.Round(time.Second), s.opts.MaxLag))
		}
	}
	if len(problems) > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(problems, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, ErrReloadUnsupported)
		return
	}
	s.opts.Logger.Info("operator action", "action", "reload", "remote", r.RemoteAddr)
	err := s.opts.Reload(r.Context())
	if err == nil {
		res := ReloadResult{OK: true}
		if s.opts.Status != nil {
			res.Hash = s.opts.Status().RulesHash
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	s.opts.Logger.Warn("reload refused", "err", err)
	res := ReloadResult{}
	code := http.StatusInternalServerError
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		code = http.StatusBadRequest
		for _, e := range joined.Unwrap() {
			res.Errors = append(res.Errors, e.Error())
		}
	} else {
		res.Errors = []string{err.Error()}
	}
	writeJSON(w, code, res)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	rep, err := s.local.Status(r.Context())
	reply(w, rep, err)
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	q, err := s.query(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ms, err := s.local.Messages(r.Context(), q)
	reply(w, ms, err)
}

// query reads state, rule, to, since, limit, after and unmask.
func (s *Server) query(r *http.Request) (Query, error) {
	v := r.URL.Query()
	q := Query{State: v.Get("state"), Rule: v.Get("rule"), To: v.Get("to"), After: v.Get("after")}
	var err error
	if q.Since, err = ParseSince(v.Get("since"), s.opts.Now()); err != nil {
		return q, err
	}
	if q.Limit, err = intParam(v.Get("limit")); err != nil {
		return q, err
	}
	q.Unmask = boolParam(v.Get("unmask"))
	return q, nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	m, err := s.local.Message(r.Context(), r.PathValue("key"), boolParam(r.URL.Query().Get("unmask")))
	reply(w, m, err)
}

func (s *Server) actMessage(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	a, err := ParseAction(r.PathValue("action"))
	if err != nil {
		writeError(w, err)
		return
	}
	s.opts.Logger.Info("operator action", "action", string(a), "key", key, "remote", r.RemoteAddr)
	m, err := s.local.Act(r.Context(), a, key)
	reply(w, m, err)
}

func (s *Server) timers(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	before, err := ParseUntil(v.Get("before"), s.opts.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	limit, err := intParam(v.Get("limit"))
	if err != nil {
		writeError(w, err)
		return
	}
	ms, err := s.local.Timers(r.Context(), before, limit)
	reply(w, ms, err)
}

func (s *Server) dead(w http.ResponseWriter, r *http.Request) {
	q, err := s.query(r)
	if err != nil {
		writeError(w, err)
		return
	}
	q.State = state.StatusDead.String()
	ms, err := s.local.Messages(r.Context(), q)
	reply(w, ms, err)
}

// deadRequest is the body of POST /api/v1/dead/retry|drop.
type deadRequest struct {
	Keys []string `json:"keys"`
	All  bool     `json:"all"`
}

func (s *Server) deadAct(w http.ResponseWriter, r *http.Request) {
	var a Action
	switch r.PathValue("action") {
	case "retry":
		a = ActionResend
	case "drop":
		a = ActionDrop
	default:
		writeError(w, fmt.Errorf("dead letters: action %q: want retry or drop: %w", r.PathValue("action"), ErrBadRequest))
		return
	}
	var req deadRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	s.opts.Logger.Info("operator action", "action", "dead "+r.PathValue("action"), "keys", len(req.Keys), "all", req.All, "remote", r.RemoteAddr)
	res, err := s.local.DeadAct(r.Context(), a, req.Keys, req.All)
	reply(w, res, err)
}

func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.local.Checkpoint(r.Context())
	reply(w, cp, err)
}

// checkpointRequest is the body of PUT /api/v1/checkpoint.
type checkpointRequest struct {
	Position string `json:"position"`
	Flavor   string `json:"flavor,omitempty"`
}

func (s *Server) putCheckpoint(w http.ResponseWriter, r *http.Request) {
	var req checkpointRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	s.opts.Logger.Info("operator action", "action", "checkpoint set", "position", req.Position, "remote", r.RemoteAddr)
	ch, err := s.local.SetCheckpoint(r.Context(), req.Position, req.Flavor)
	reply(w, ch, err)
}

// export streams JSON lines. An error after the first line can only be reported by cutting the
// stream: the last line is then {"error": "..."}, which a reader must check.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	q, err := s.query(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := filterOf(q); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	err = s.local.Export(r.Context(), q, func(m MessageView) error { return enc.Encode(m) })
	if err != nil {
		enc.Encode(errorBody{Error: err.Error()})
	}
	bw.Flush()
}

type errorBody struct {
	Error string `json:"error"`
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w: %w", ErrBadRequest, err)
	}
	return nil
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, httpCode(err), errorBody{Error: err.Error()})
}

// httpCode maps an error to its status; Client maps it back to the same sentinel.
func httpCode(err error) int {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrBadRequest), errors.Is(err, state.ErrInvalid):
		return http.StatusBadRequest
	case isNotFound(err):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict), isStateConflict(err):
		return http.StatusConflict
	case errors.Is(err, ErrRewindUnsupported), errors.Is(err, ErrReloadUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func intParam(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit %q: want a number >= 0: %w", s, ErrBadRequest)
	}
	return n, nil
}

func boolParam(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

// ParseSince reads a point in the past: an RFC 3339 time, a date (YYYY-MM-DD, UTC) or a
// duration before now ("24h", "90m"). Empty is the zero time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	return parseTime(s, now, -1)
}

// ParseUntil reads a point in the future: an RFC 3339 time, a date (UTC) or a duration after
// now ("1h"). Empty is the zero time.
func ParseUntil(s string, now time.Time) (time.Time, error) {
	return parseTime(s, now, +1)
}

func parseTime(s string, now time.Time, sign time.Duration) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(sign * d), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339, YYYY-MM-DD or a duration like 24h: %w", s, ErrBadRequest)
}
