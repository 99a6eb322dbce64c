package render

import "unicode/utf8"

// SMS encodings reported in Output.Encoding.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// Segment sizes (3GPP TS 23.038/23.040): a single message holds 160 septets or 70 UTF-16 code
// units; a concatenated one loses 7 septets (6 bytes of UDH) per part.
const (
	gsmSingle  = 160
	gsmMulti   = 153
	ucs2Single = 70
	ucs2Multi  = 67
)

// gsmBasic is the GSM 03.38 default alphabet (without ESC); gsmExtension holds the characters
// that need the escape prefix and so count 2 septets.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "\f^{}\\[~]|€"
)

// asciiSeptets[c] is the septet count of ASCII byte c in GSM-7 (0 = not representable).
var asciiSeptets [utf8.RuneSelf]uint8

// gsmOther holds the septet count of the non-ASCII GSM-7 characters.
var gsmOther = map[rune]uint8{}

func init() {
	for _, r := range gsmBasic {
		if r < utf8.RuneSelf {
			asciiSeptets[r] = 1
		} else {
			gsmOther[r] = 1
		}
	}
	for _, r := range gsmExtension {
		if r < utf8.RuneSelf {
			asciiSeptets[r] = 2
		} else {
			gsmOther[r] = 2
		}
	}
}

// gsmSeptets returns the septets r needs in GSM-7, 0 if r is not in the alphabet.
func gsmSeptets(r rune) int {
	if r < utf8.RuneSelf {
		return int(asciiSeptets[r])
	}
	return int(gsmOther[r])
}

// Segments returns the encoding an SMS with this text is sent in ("GSM-7" when every character
// is in the GSM 03.38 alphabet or its extension table, else "UCS-2") and the number of segments
// it needs: GSM-7 160 septets in one part, else 153 per part, an extension character counting 2
// septets and never split across parts; UCS-2 70 UTF-16 code units in one part, else 67 per
// part, a surrogate pair (emoji) never split. The empty text needs 0 segments.
func Segments(text string) (encoding string, segments int) {
	if text == "" {
		return EncodingGSM7, 0
	}
	if n, ok := gsmSegments(text); ok {
		return EncodingGSM7, n
	}
	return EncodingUCS2, ucs2Segments(text)
}

// gsmSegments counts GSM-7 segments; ok is false if a character is not in the alphabet.
func gsmSegments(text string) (segments int, ok bool) {
	total, parts, used := 0, 1, 0
	for _, r := range text {
		n := gsmSeptets(r)
		if n == 0 {
			return 0, false
		}
		total += n
		if used+n > gsmMulti { // an escape sequence is not split across parts
			parts++
			used = 0
		}
		used += n
	}
	if total <= gsmSingle {
		return 1, true
	}
	return parts, true
}

// ucs2Segments counts UCS-2 (UTF-16) segments.
func ucs2Segments(text string) int {
	total, parts, used := 0, 1, 0
	for _, r := range text {
		n := 1
		if r >= 0x10000 {
			n = 2 // surrogate pair, not split across parts
		}
		total += n
		if used+n > ucs2Multi {
			parts++
			used = 0
		}
		used += n
	}
	if total <= ucs2Single {
		return 1
	}
	return parts
}
