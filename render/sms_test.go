package render

import (
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	ya := func(n int) string { return strings.Repeat("я", n) }
	tests := []struct {
		name, text, enc string
		segments        int
	}{
		{"empty", "", EncodingGSM7, 0},
		{"one char", "a", EncodingGSM7, 1},
		{"160 septets fit one part", a(160), EncodingGSM7, 1},
		{"161 septets need two", a(161), EncodingGSM7, 2},
		{"2*153 septets fit two parts", a(306), EncodingGSM7, 2},
		{"2*153+1 septets need three", a(307), EncodingGSM7, 3},
		{"3*153 septets", a(459), EncodingGSM7, 3},
		{"GSM basic non-ASCII", "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", EncodingGSM7, 1},
		{"extension chars count two: 158+€ = 160", a(158) + "€", EncodingGSM7, 1},
		{"extension chars count two: 159+€ = 161", a(159) + "€", EncodingGSM7, 2},
		{"80 braces are 160 septets", strings.Repeat("{", 80), EncodingGSM7, 1},
		{"81 braces are 162 septets", strings.Repeat("}", 81), EncodingGSM7, 2},
		{"all extension chars", "\f^{}\\[~]|€", EncodingGSM7, 1},
		{"escape not split across parts", a(152) + "€" + a(152), EncodingGSM7, 3},
		{"escape at part end fits", a(151) + "€" + a(153), EncodingGSM7, 2},
		{"newline and CR are GSM", "a\r\nb", EncodingGSM7, 1},
		{"lower c-cedilla is not GSM", "ç", EncodingUCS2, 1},
		{"ellipsis char is not GSM", "…", EncodingUCS2, 1},
		{"70 UCS-2 units fit one part", ya(70), EncodingUCS2, 1},
		{"71 UCS-2 units need two", ya(71), EncodingUCS2, 2},
		{"2*67 units fit two parts", ya(134), EncodingUCS2, 2},
		{"2*67+1 units need three", ya(135), EncodingUCS2, 3},
		{"one non-GSM char makes all UCS-2", a(69) + "я", EncodingUCS2, 1},
		{"emoji is two units: 68+2 = 70", ya(68) + "😀", EncodingUCS2, 1},
		{"emoji is two units: 69+2 = 71", ya(69) + "😀", EncodingUCS2, 2},
		{"surrogate pair not split across parts", ya(66) + "😀" + ya(66), EncodingUCS2, 3},
		{"surrogate pair at part end fits", ya(65) + "😀" + ya(67), EncodingUCS2, 2},
		{"35 emoji are 70 units", strings.Repeat("😀", 35), EncodingUCS2, 1},
		{"GSM extension in UCS-2 counts one unit", ya(69) + "€", EncodingUCS2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, n := Segments(tt.text)
			if enc != tt.enc || n != tt.segments {
				t.Fatalf("Segments = %s, %d; want %s, %d", enc, n, tt.enc, tt.segments)
			}
		})
	}
}
