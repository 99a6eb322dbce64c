package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"notifier/render"
	"notifier/state"
)

// Twilio configures the Twilio Programmable Messaging preset:
//
//	POST {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json
//	basic auth AccountSID:AuthToken, form To, From, Body[, StatusCallback]
//
// The answer's "sid" becomes the message's ProviderID. StatusCallback, when set, gets
// "key=<message key>" added to its query so the receipt can be matched (see ReceiptHandler).
type Twilio struct {
	BaseURL        string // default https://api.twilio.com
	AccountSID     string
	AuthToken      string
	From           string // a number in E.164 or a messaging service's sender
	StatusCallback string
}

// NewTwilio builds the Twilio channel; o supplies the name, timeout, TLS and client settings.
func NewTwilio(o Options, t Twilio) (*Channel, error) {
	if t.AccountSID == "" || t.AuthToken == "" || t.From == "" {
		return nil, fmt.Errorf("twilio %s: account_sid, auth_token and from are required: %w", o.Name, ErrConfig)
	}
	base := strings.TrimRight(t.BaseURL, "/")
	if base == "" {
		base = "https://api.twilio.com"
	}
	o.URL = base + "/2010-04-01/Accounts/" + url.PathEscape(t.AccountSID) + "/Messages.json"
	o.Method, o.Body, o.Form, o.IDPath = "POST", "", nil, "sid"
	o.Bearer, o.HMACSecret, o.BasicUser, o.BasicPassword = "", "", t.AccountSID, t.AuthToken
	c, err := newChannel(o)
	if err != nil {
		return nil, err
	}
	c.build = func(m *state.Message, _ *data) ([]byte, string, error) {
		v := url.Values{"To": {m.To}, "From": {t.From}, "Body": {m.Text}}
		if t.StatusCallback != "" {
			cb, err := withQuery(t.StatusCallback, "key", m.Key)
			if err != nil {
				return nil, "", err
			}
			v.Set("StatusCallback", cb)
		}
		return []byte(v.Encode()), "application/x-www-form-urlencoded", nil
	}
	return c, nil
}

// Vonage configures the Vonage (Nexmo) SMS API preset:
//
//	POST {BaseURL}/sms/json
//	form (or, with JSON, a JSON object of) api_key, api_secret, from, to (E.164 without "+"),
//	text, client-ref=<message key>, type=unicode when the text needs UCS-2[, callback]
//
// The answer is 200 with {"messages":[{"status":"0","message-id":…}, …]}: every part must have
// status "0"; status "1" (throttled) is retried as rate_limited, any other status is final
// (reason rejected) with its error-text. messages[0].message-id becomes the ProviderID.
// A key longer than Vonage's 100-character client-ref is sent as its SHA-256 (hex).
type Vonage struct {
	BaseURL        string // default https://rest.nexmo.com
	APIKey         string
	APISecret      string
	From           string
	StatusCallback string // the DLR webhook URL (callback), overriding the account's
	JSON           bool   // send the same fields as a JSON object instead of a form
}

// NewVonage builds the Vonage SMS channel; o supplies the name, timeout, TLS and client settings.
func NewVonage(o Options, v Vonage) (*Channel, error) {
	if v.APIKey == "" || v.APISecret == "" || v.From == "" {
		return nil, fmt.Errorf("vonage %s: api_key, api_secret and from are required: %w", o.Name, ErrConfig)
	}
	base := strings.TrimRight(v.BaseURL, "/")
	if base == "" {
		base = "https://rest.nexmo.com"
	}
	o.URL, o.Method, o.Body, o.Form, o.IDPath = base+"/sms/json", "POST", "", nil, "messages.0.message-id"
	o.Bearer, o.HMACSecret, o.BasicUser, o.BasicPassword = "", "", "", ""
	c, err := newChannel(o)
	if err != nil {
		return nil, err
	}
	c.secrets = append(c.secrets, v.APISecret)
	c.build = func(m *state.Message, _ *data) ([]byte, string, error) {
		f := url.Values{
			"api_key": {v.APIKey}, "api_secret": {v.APISecret}, "from": {v.From},
			"to": {strings.TrimPrefix(m.To, "+")}, "text": {m.Text}, "client-ref": {ClientRef(m.Key)},
		}
		if enc, _ := render.Segments(m.Text); enc == "UCS-2" {
			f.Set("type", "unicode")
		}
		if v.StatusCallback != "" {
			f.Set("callback", v.StatusCallback)
		}
		if v.JSON {
			obj := make(map[string]string, len(f))
			for k := range f {
				obj[k] = f.Get(k)
			}
			b, err := json.Marshal(obj)
			return b, "application/json", err
		}
		return []byte(f.Encode()), "application/x-www-form-urlencoded", nil
	}
	c.check = vonageCheck
	return c, nil
}

// ClientRef is the client-ref sent to Vonage for a message key: the key itself, or its SHA-256
// in hex when longer than Vonage's 100 characters.
func ClientRef(key string) string {
	if len(key) <= 100 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// vonageCheck reads the per-part statuses of a 200 answer.
func vonageCheck(body []byte) error {
	var r struct {
		Messages []struct {
			Status    string `json:"status"`
			ErrorText string `json:"error-text"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Messages) == 0 {
		return &Error{Reason: reasonRejected, Err: fmt.Errorf("%w: unreadable answer", ErrRejected)}
	}
	for _, p := range r.Messages {
		switch p.Status {
		case "0":
			continue
		case "1": // Throttled: "You are sending SMS faster than the account limit"
			return &Error{Reason: reasonRateLimited, Err: fmt.Errorf("%w: status 1 throttled: %s", ErrRejected, p.ErrorText)}
		default:
			return &Error{Reason: reasonRejected, Err: fmt.Errorf("%w: status %s: %s", ErrRejected, p.Status, p.ErrorText)}
		}
	}
	return nil
}

// withQuery adds name=value to a URL's query.
func withQuery(raw, name, value string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("status callback url: %w", ErrConfig)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
