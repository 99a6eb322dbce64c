package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"notifier/state"
)

// ReceiptStore records a provider's delivery report on a sent message. status is "delivered"
// or "failed"; detail is the provider's status or error code. It returns state.ErrNotFound for
// an unknown key. (*state.Store does not have this method yet: see the sender's report.)
type ReceiptStore interface {
	RecordReceipt(ctx context.Context, key, status, providerID, detail string) error
}

// The receipt statuses.
const (
	ReceiptDelivered = "delivered"
	ReceiptFailed    = "failed"
)

// ReceiptHandler serves delivery-status callbacks and records them in store. It accepts:
//
//   - ours: JSON {"key", "status": "delivered"|"failed", "provider_id"};
//   - Twilio's status callback: a form with MessageSid, MessageStatus, ErrorCode, and the
//     message key in the query (NewTwilio adds key=<key> to StatusCallback);
//   - Vonage's delivery receipt (JSON, form or query): messageId, status, err-code, client-ref.
//
// Every request must present the shared secret in the X-Notifier-Token header or the `token`
// query parameter (compared in constant time), else 401. Intermediate statuses (queued, sent,
// accepted, buffered …) are acknowledged and ignored. An unknown key answers 404, a store
// failure 500 (so the provider calls again).
func ReceiptHandler(store ReceiptStore, secret string) http.Handler {
	want := sha256.Sum256([]byte(secret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Notifier-Token")
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		got := sha256.Sum256([]byte(tok))
		if secret == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			http.Error(w, ErrUnauthorized.Error(), http.StatusUnauthorized)
			return
		}
		rc, err := parseReceipt(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if rc.status == "" { // an intermediate status
			w.WriteHeader(http.StatusNoContent)
			return
		}
		switch err := store.RecordReceipt(r.Context(), rc.key, rc.status, rc.providerID, rc.detail); {
		case errors.Is(err, state.ErrNotFound):
			http.Error(w, "unknown message", http.StatusNotFound)
		case err != nil:
			http.Error(w, "store unavailable", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
}

type receipt struct{ key, status, providerID, detail string }

// parseReceipt reads the fields, then recognises the provider by their names.
func parseReceipt(r *http.Request) (receipt, error) {
	f, err := receiptFields(r)
	if err != nil {
		return receipt{}, err
	}
	var rc receipt
	switch {
	case f["MessageSid"] != "" || f["SmsSid"] != "":
		rc = twilioReceipt(f)
	case f["messageId"] != "" || f["client-ref"] != "":
		rc = vonageReceipt(f)
	default: // ours
		rc = receipt{key: f["key"], providerID: f["provider_id"], detail: f["detail"]}
		switch s := strings.ToLower(f["status"]); s {
		case ReceiptDelivered, ReceiptFailed:
			rc.status = s
		default:
			return receipt{}, fmt.Errorf("receipt: status %q, want delivered or failed", f["status"])
		}
	}
	if rc.key == "" {
		return receipt{}, errors.New("receipt: no message key")
	}
	return rc, nil
}

// receiptFields merges the query with a form or JSON body (64 KiB at most).
func receiptFields(r *http.Request) (map[string]string, error) {
	f := map[string]string{}
	for k, v := range r.URL.Query() {
		f[k] = v[0]
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("receipt: read body: %w", err)
		}
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case ct == "application/json" || (ct == "" && len(body) > 0 && body[0] == '{'):
			var j map[string]any
			if err := json.Unmarshal(body, &j); err != nil {
				return nil, fmt.Errorf("receipt: json body: %w", err)
			}
			for k, v := range j {
				switch x := v.(type) {
				case string:
					f[k] = x
				case float64:
					f[k] = fmt.Sprint(x)
				}
			}
		default:
			v, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, fmt.Errorf("receipt: form body: %w", err)
			}
			for k, vs := range v {
				f[k] = vs[0]
			}
		}
	}
	return f, nil
}

// twilioReceipt reads Twilio's status callback; the key comes from the callback URL's query.
func twilioReceipt(f map[string]string) receipt {
	status := first(f["MessageStatus"], f["SmsStatus"])
	rc := receipt{key: f["key"], providerID: first(f["MessageSid"], f["SmsSid"]), detail: first(f["ErrorCode"], status)}
	switch status {
	case "delivered", "read":
		rc.status = ReceiptDelivered
	case "undelivered", "failed", "canceled":
		rc.status = ReceiptFailed
	}
	return rc
}

// vonageReceipt reads a Vonage delivery receipt; the key is the client-ref we sent.
func vonageReceipt(f map[string]string) receipt {
	rc := receipt{key: f["client-ref"], providerID: f["messageId"], detail: f["status"]}
	if e := f["err-code"]; e != "" && e != "0" {
		rc.detail += " err-code " + e
	}
	switch f["status"] {
	case "delivered":
		rc.status = ReceiptDelivered
	case "failed", "rejected", "expired":
		rc.status = ReceiptFailed
	}
	return rc
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
