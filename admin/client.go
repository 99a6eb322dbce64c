package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"notifier/state"
)

// Client talks to a running service's admin API. It implements API, so the CLI uses it and a
// Local interchangeably. Errors wrap this package's sentinels (and state.ErrNotFound for 404).
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

var _ API = (*Client)(nil)

// NewClient returns a client for the admin API at addr ("http://host:port" or "host:port").
// token may be empty; hc nil uses a client with a 30 s timeout (exports stream longer: they
// use no timeout beyond ctx).
func NewClient(addr, token string, hc *http.Client) (*Client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("admin address %q: want http://host:port", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: u, token: token, http: hc}, nil
}

// URL is the API's base address, for "online: via …".
func (c *Client) URL() string { return c.base.Redacted() }

// Ping checks that a service answers at the address (GET /healthz), within timeout. An
// unreachable service is ErrUnavailable.
func (c *Client) Ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.send(ctx, method, path, query, in, func(body io.Reader) error {
		if out == nil {
			_, err := io.Copy(io.Discard, body)
			return err
		}
		return json.NewDecoder(body).Decode(out)
	})
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any, read func(io.Reader) error) error {
	// path is already escaped (keys go through url.PathEscape).
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("admin %s %s: %w", method, c.URL(), ctxErr)
		}
		return fmt.Errorf("admin %s: %w: %w", c.URL(), ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.failure(resp, method, path)
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("admin %s %s: read answer: %w", method, path, err)
	}
	return nil
}

// failure turns an error answer back into the sentinel the server mapped it from.
func (c *Client) failure(resp *http.Response, method, path string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	var sentinel error
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("admin %s: %w (set %s or --admin-token-file)", c.URL(), ErrUnauthorized, TokenEnv)
	case http.StatusBadRequest:
		sentinel = ErrBadRequest
	case http.StatusNotFound:
		sentinel = state.ErrNotFound
	case http.StatusConflict:
		sentinel = ErrConflict
	case http.StatusNotImplemented:
		switch {
		case strings.Contains(msg, ErrRewindUnsupported.Error()):
			sentinel = ErrRewindUnsupported
		default:
			sentinel = ErrReloadUnsupported
		}
	default:
		return fmt.Errorf("admin %s %s: %s: %s", method, path, resp.Status, msg)
	}
	return &remoteError{msg: msg, sentinel: sentinel}
}

// remoteError is the server's message, errors.Is-able to the sentinel of its status.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func queryValues(q Query) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("state", q.State)
	set("rule", q.Rule)
	set("to", q.To)
	set("after", q.After)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Unmask {
		v.Set("unmask", "1")
	}
	return v
}

// Status implements API.
func (c *Client) Status(ctx context.Context) (StatusReport, error) {
	var r StatusReport
	err := c.do(ctx, http.MethodGet, "/api/v1/status", nil, nil, &r)
	return r, err
}

// Messages implements API.
func (c *Client) Messages(ctx context.Context, q Query) ([]MessageView, error) {
	var ms []MessageView
	err := c.do(ctx, http.MethodGet, "/api/v1/messages", queryValues(q), nil, &ms)
	return ms, err
}

func keyPath(key string) string { return "/api/v1/messages/" + url.PathEscape(key) }

// Message implements API.
func (c *Client) Message(ctx context.Context, key string, unmask bool) (MessageView, error) {
	var m MessageView
	err := c.do(ctx, http.MethodGet, keyPath(key), queryValues(Query{Unmask: unmask}), nil, &m)
	return m, err
}

// Act implements API.
func (c *Client) Act(ctx context.Context, action Action, key string) (MessageView, error) {
	var m MessageView
	err := c.do(ctx, http.MethodPost, keyPath(key)+"/"+string(action), nil, nil, &m)
	return m, err
}

// Timers implements API.
func (c *Client) Timers(ctx context.Context, before time.Time, limit int) ([]MessageView, error) {
	v := queryValues(Query{Limit: limit})
	if !before.IsZero() {
		v.Set("before", before.UTC().Format(time.RFC3339Nano))
	}
	var ms []MessageView
	err := c.do(ctx, http.MethodGet, "/api/v1/timers", v, nil, &ms)
	return ms, err
}

// DeadAct implements API.
func (c *Client) DeadAct(ctx context.Context, action Action, keys []string, all bool) (BulkResult, error) {
	var res BulkResult
	verb := map[Action]string{ActionResend: "retry", ActionDrop: "drop"}[action]
	if verb == "" {
		return res, fmt.Errorf("dead letters: action %q: want resend or drop: %w", action, ErrBadRequest)
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/dead/"+verb, nil, deadRequest{Keys: keys, All: all}, &res)
	return res, err
}

// Checkpoint implements API.
func (c *Client) Checkpoint(ctx context.Context) (CheckpointView, error) {
	var cp CheckpointView
	err := c.do(ctx, http.MethodGet, "/api/v1/checkpoint", nil, nil, &cp)
	return cp, err
}

// SetCheckpoint implements API.
func (c *Client) SetCheckpoint(ctx context.Context, pos, flavor string) (CheckpointChange, error) {
	var ch CheckpointChange
	err := c.do(ctx, http.MethodPut, "/api/v1/checkpoint", nil, checkpointRequest{Position: pos, Flavor: flavor}, &ch)
	return ch, err
}

// Reload asks the service to re-read its rules (POST /-/reload). A refused configuration is
// returned as the result with OK false and its errors, not as an error.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	err := c.send(ctx, http.MethodPost, "/-/reload", nil, nil, func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&res)
	})
	var re *remoteError
	if errors.As(err, &re) && errors.Is(err, ErrBadRequest) {
		var body ReloadResult
		if json.Unmarshal([]byte(re.msg), &body) == nil {
			return body, nil
		}
		return ReloadResult{Errors: []string{re.msg}}, nil
	}
	return res, err
}

// Export implements API. The stream ends with an {"error": …} line if the server failed half
// way; that is returned as an error after the lines before it were passed to fn.
func (c *Client) Export(ctx context.Context, q Query, fn func(MessageView) error) error {
	q.Limit = 0
	return c.send(ctx, http.MethodGet, "/api/v1/export", queryValues(q), nil, func(body io.Reader) error {
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if bytes.HasPrefix(line, []byte(`{"error":`)) {
				var eb errorBody
				if json.Unmarshal(line, &eb) == nil {
					return errors.New(eb.Error)
				}
			}
			var m MessageView
			if err := json.Unmarshal(line, &m); err != nil {
				return fmt.Errorf("export line: %w", err)
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		return sc.Err()
	})
}
