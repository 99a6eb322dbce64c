package render

import (
	"strings"
	"unicode/utf8"
)

// maskRun replaces the hidden part; its length is fixed so a masked value does not reveal the
// length of the original.
const maskRun = "***"

// Mask hides most of a recipient for logs and errors:
//
//	phone   "+4917612345689"       → "+49*******89"  (first 3 characters, 7 stars, last 2 digits)
//	e-mail  "john.doe@example.com" → "j***@example.com"
//	other   "some-token"           → "so***" ("***" when 3 characters or fewer)
//
// A phone is an optional "+" followed by at least 6 digits (spaces, dashes, dots and
// parentheses are ignored). Every package that logs a recipient uses Mask.
func Mask(recipient string) string {
	s := strings.TrimSpace(recipient)
	if s == "" {
		return ""
	}
	if digits, ok := phoneDigits(s); ok {
		return digits[:3] + "*******" + digits[len(digits)-2:]
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		local, domain := s[:at], s[at+1:]
		if local == "" {
			return maskRun + "@" + domain
		}
		_, n := utf8.DecodeRuneInString(local)
		return local[:n] + maskRun + "@" + domain
	}
	if utf8.RuneCountInString(s) <= 3 {
		return maskRun
	}
	_, a := utf8.DecodeRuneInString(s)
	_, b := utf8.DecodeRuneInString(s[a:])
	return s[:a+b] + maskRun
}

// phoneDigits returns s without separators if it looks like a phone number.
func phoneDigits(s string) (string, bool) {
	var b strings.Builder
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			b.WriteByte(c)
		case c == '+' && i == 0:
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/':
		default:
			return "", false
		}
	}
	if digits < 6 {
		return "", false
	}
	return b.String(), true
}

// Clip cuts s to at most n bytes at a UTF-8 character boundary, marking a cut with "…" (which
// counts towards n). It bounds provider answers kept in records and logs.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	if cut <= 0 {
		if n < len("…") {
			return "" // not even the mark fits
		}
		return "…"
	}
	return s[:cut] + "…"
}
