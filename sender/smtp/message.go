package smtp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"

	"notifier/state"
)

// MessageID returns the Message-ID of the message with this key: "<hex(sha256(key))[:32]@domain>".
// It is the same on every attempt, so a mailbox or provider that deduplicates by Message-ID
// drops a resend.
func MessageID(key, domain string) string {
	sum := sha256.Sum256([]byte(key))
	return "<" + hex.EncodeToString(sum[:])[:32] + "@" + domain + ">"
}

// recipient parses m.To as exactly one address.
func recipient(to string) (*mail.Address, error) {
	a, err := mail.ParseAddress(to)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// buildMessage renders the RFC 5322 message: headers, then a text/plain part, or a
// multipart/alternative of text and HTML when m.HTML is set; bodies quoted-printable UTF-8.
// Lines end in CRLF. The boundary is derived from the key, so the bytes are deterministic.
func buildMessage(buf *bytes.Buffer, s *settings, to *mail.Address, m *state.Message, date time.Time) {
	header := func(name, value string) {
		buf.WriteString(name)
		buf.WriteString(": ")
		buf.WriteString(value)
		buf.WriteString("\r\n")
	}
	header("From", s.from.String())
	header("To", to.String())
	header("Subject", encodeHeader(m.Subject))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", MessageID(m.Key, s.idDomain))
	header("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies to notifications
	header("MIME-Version", "1.0")
	if m.HTML == "" {
		writePart(buf, "text/plain", m.Text)
		return
	}
	boundary := boundaryFor(m)
	header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	buf.WriteString("\r\n")
	buf.WriteString("--" + boundary + "\r\n")
	writePart(buf, "text/plain", m.Text)
	buf.WriteString("\r\n--" + boundary + "\r\n")
	writePart(buf, "text/html", m.HTML)
	buf.WriteString("\r\n--" + boundary + "--\r\n")
}

// writePart writes a part's (or a single-part message's remaining) headers and its body.
func writePart(buf *bytes.Buffer, contentType, body string) {
	buf.WriteString("Content-Type: " + contentType + "; charset=UTF-8\r\n")
	buf.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	// Every line break becomes "\n" first: the writer's text mode turns "\n" into CRLF, but after
	// a bare "\r" it drops a later "\n" ("\r\x7f\n" came out as "\r\n=7F", losing the last line
	// break; found by FuzzBuildMessage). SMTP allows no bare CR anyway.
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	qp := quotedprintable.NewWriter(buf) // text mode: line breaks become CRLF
	qp.Write([]byte(body))               // writes to a bytes.Buffer cannot fail
	qp.Close()
}

// boundaryFor returns a boundary that does not occur in the bodies.
func boundaryFor(m *state.Message) string {
	sum := sha256.Sum256([]byte(m.Key))
	b := "=_notifier_" + hex.EncodeToString(sum[:12])
	// "=_" cannot appear in quoted-printable output unencoded ('=' is always escaped), the
	// usual trick; the check is belt and braces.
	for strings.Contains(m.Text, b) || strings.Contains(m.HTML, b) {
		b += "_"
	}
	return b
}

// encodeHeader returns an unstructured header value: CR/LF flattened (no header injection),
// RFC 2047 Q-encoded when not plain ASCII, folded between encoded words.
func encodeHeader(v string) string {
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
	enc := mime.QEncoding.Encode("UTF-8", v)
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}
