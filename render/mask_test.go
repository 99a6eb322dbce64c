package render

import (
	"testing"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+4917612345689", "+49*******89"},
		{"+1 (202) 555-0100", "+12*******00"},
		{"017612345689", "017*******89"},
		{"+49 176 1234 5689", "+49*******89"},
		{"john.doe@example.com", "j***@example.com"},
		{"ü@example.de", "ü***@example.de"},
		{"@example.com", "***@example.com"},
		{"some-token", "so***"},
		{"Zoë Meier", "Zo***"},
		{"abc", "***"},
		{"12345", "12***"},
		{"  +4917612345689 ", "+49*******89"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456…"},
		{"ääääää", 8, "ää…"}, // 12 bytes; a cut never splits a character
		{"abcdef", 2, ""},    // not even the mark fits
		{"abcdef", 3, "…"},
	}
	for _, tc := range tests {
		got := Clip(tc.s, tc.n)
		if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q, want %q (at most %d bytes, valid UTF-8)", tc.s, tc.n, got, tc.want, tc.n)
		}
	}
}
