package smtp

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"notifier/state"
)

// FuzzBuildMessage checks that any subject and bodies give a message a standard parser reads
// back: exactly our headers (no injection through the subject), the subject decoding to the
// original with line breaks flattened, and both parts decoding to the bodies (CRLF
// normalised).
func FuzzBuildMessage(f *testing.F) {
	f.Add("Hello", "Hi.\nBye.", "")
	f.Add("Grüße – ☃ "+strings.Repeat("x", 100), "=?UTF-8?q?x?=\r\n.\r\n", "<p>ü</p>")
	f.Add("a\r\nBcc: evil@example.org", "--=_notifier_", "\n.\n")
	f.Add(" \n ", "", "")
	s, err := (&Config{Host: "h", From: "Notifier <n@example.com>"}).validate()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, subject, text, html string) {
		if !utf8Valid(subject, text, html) {
			t.Skip("message texts are UTF-8 (rendered templates)")
		}
		m := &state.Message{Key: "k", Subject: subject, Text: text, HTML: html}
		var buf bytes.Buffer
		buildMessage(&buf, s, &mail.Address{Address: "a@example.org"}, m, t0)
		pm, err := mail.ReadMessage(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("unparseable: %v\n%s", err, buf.Bytes())
		}
		wantHeaders := 8 // From To Subject Date Message-ID Auto-Submitted MIME-Version Content-Type
		if html == "" {
			wantHeaders++ // Content-Transfer-Encoding of the single part
		}
		if len(pm.Header) != wantHeaders {
			t.Fatalf("%d headers, want %d: %v", len(pm.Header), wantHeaders, pm.Header)
		}
		got, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
		// Header values lose surrounding white space in any parser.
		want := strings.TrimSpace(strings.Join(strings.FieldsFunc(subject, func(r rune) bool { return r == '\r' || r == '\n' }), " "))
		if err != nil || strings.TrimSpace(got) != want {
			t.Fatalf("subject %q (%v), want %q", got, err, want)
		}
		norm := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n") }
		if html == "" {
			body, _ := io.ReadAll(quotedprintable.NewReader(pm.Body))
			if norm(string(body)) != norm(text) {
				t.Fatalf("text %q, want %q", body, text)
			}
			return
		}
		_, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(pm.Body, params["boundary"])
		for _, want := range []string{text, html} {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part: %v\n%s", err, buf.Bytes())
			}
			body, _ := io.ReadAll(p)
			if norm(string(body)) != norm(want) {
				t.Fatalf("part %q, want %q", body, want)
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Fatalf("extra part or bad end: %v", err)
		}
	})
}

func utf8Valid(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
