package render

import "testing"

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
