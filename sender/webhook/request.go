package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"notifier/state"
)

// data is what templates see: .Key .Rule .Channel .To .Text .Subject .HTML, and .Data, the
// message's template data decoded from JSON (decoded on first use).
type data struct {
	m *state.Message
	f map[string]any
}

func newData(m *state.Message) *data { return &data{m: m} }

func (d *data) fields() map[string]any {
	if d.f != nil {
		return d.f
	}
	m := d.m
	d.f = map[string]any{
		"Key": m.Key, "Rule": m.Rule, "Channel": m.Channel, "To": m.To,
		"Text": m.Text, "Subject": m.Subject, "HTML": m.HTML,
	}
	if len(m.Data) > 0 {
		var decoded map[string]any
		if json.Unmarshal(m.Data, &decoded) == nil { // undecodable data shows as missing keys
			d.f["Data"] = decoded
		}
	}
	return d.f
}

// tmpl is one compiled template; a constant string skips execution.
type tmpl struct {
	t       *template.Template
	literal string
}

var funcs = template.FuncMap{
	// json encodes a value as JSON, for embedding into a JSON body: {"to": {{json .To}}}.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

func parse(channel, what, src string) (*tmpl, error) {
	if !strings.Contains(src, "{{") {
		return &tmpl{literal: src}, nil
	}
	t, err := template.New(what).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %s template: %w: %w", channel, what, ErrConfig, err)
	}
	return &tmpl{t: t}, nil
}

func (t *tmpl) exec(d *data) (string, error) {
	if t.t == nil {
		return t.literal, nil
	}
	var b strings.Builder
	if err := t.t.Execute(&b, d.fields()); err != nil {
		return "", err
	}
	return b.String(), nil
}

// defaultBody is {key, rule, channel, to, text, subject?, html?}.
func defaultBody(m *state.Message, _ *data) ([]byte, string, error) {
	b, err := json.Marshal(struct {
		Key     string `json:"key"`
		Rule    string `json:"rule"`
		Channel string `json:"channel"`
		To      string `json:"to"`
		Text    string `json:"text"`
		Subject string `json:"subject,omitempty"`
		HTML    string `json:"html,omitempty"`
	}{m.Key, m.Rule, m.Channel, m.To, m.Text, m.Subject, m.HTML})
	return b, "application/json", err
}

// jsonBody executes a body template and insists on valid JSON.
func jsonBody(t *tmpl) func(*state.Message, *data) ([]byte, string, error) {
	return func(_ *state.Message, d *data) ([]byte, string, error) {
		s, err := t.exec(d)
		if err != nil {
			return nil, "", fmt.Errorf("body: %w", err)
		}
		if !json.Valid([]byte(s)) {
			return nil, "", fmt.Errorf("body is not valid JSON (use {{json .Field}} for values)")
		}
		return []byte(s), "application/json", nil
	}
}

// form is a set of field templates encoded as application/x-www-form-urlencoded, in name order.
type form struct {
	names []string
	tmpls []*tmpl
}

func parseForm(channel string, fields map[string]string) (*form, error) {
	f := &form{}
	for name := range fields {
		f.names = append(f.names, name)
	}
	sort.Strings(f.names)
	for _, name := range f.names {
		t, err := parse(channel, "form "+name, fields[name])
		if err != nil {
			return nil, err
		}
		f.tmpls = append(f.tmpls, t)
	}
	return f, nil
}

func (f *form) build(_ *state.Message, d *data) ([]byte, string, error) {
	v := url.Values{}
	for i, name := range f.names {
		s, err := f.tmpls[i].exec(d)
		if err != nil {
			return nil, "", fmt.Errorf("form %s: %w", name, err)
		}
		v.Set(name, s)
	}
	return []byte(v.Encode()), "application/x-www-form-urlencoded", nil
}

// authFunc returns the request signer and the secret strings to scrub from errors.
func authFunc(o Options) (func(*http.Request, []byte), []string, error) {
	n := 0
	for _, set := range []bool{o.Bearer != "", o.BasicUser != "" || o.BasicPassword != "", o.HMACSecret != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, nil, fmt.Errorf("auth: more than one of bearer, basic, hmac: %w", ErrConfig)
	}
	switch {
	case o.Bearer != "":
		tok := "Bearer " + o.Bearer
		return func(r *http.Request, _ []byte) { r.Header.Set("Authorization", tok) }, []string{o.Bearer}, nil
	case o.BasicUser != "" || o.BasicPassword != "":
		user, pass := o.BasicUser, o.BasicPassword
		enc := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		return func(r *http.Request, _ []byte) { r.SetBasicAuth(user, pass) }, []string{pass, enc}, nil
	case o.HMACSecret != "":
		key := []byte(o.HMACSecret)
		name, prefix := o.HMACHeader, o.HMACPrefix
		if name == "" {
			name = "X-Signature-256"
		}
		if prefix == "" {
			prefix = "sha256="
		}
		return func(r *http.Request, body []byte) {
			r.Header.Set(name, prefix+Sign(key, body))
		}, []string{o.HMACSecret}, nil
	}
	return nil, nil, nil
}

// Sign returns hex(HMAC-SHA256(key, body)), the signature the hmac auth sends (for receivers
// that verify it).
func Sign(key, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// lookupID walks a JSON answer along path (object keys, array indexes) to a string or number.
func lookupID(body []byte, path []string) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return ""
	}
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return ""
			}
			v = x[i]
		default:
			return ""
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}
