package rules

import (
	"fmt"
	"strings"
)

// E.164 normalisation without a dependency: a compact table of calling codes, trunk prefixes
// and national-number lengths for the countries we send to. It normalises what people type
// ("0170 1234567", "+49 (0)170-123 45 67", "0049 170 1234567", "(212) 555-1234"), and refuses
// what cannot be a number of the country; it does not know number ranges, so a well-formed
// but unassigned number passes (the provider rejects it, a dead letter).

type region struct {
	cc       string // country calling code, no "+"
	trunk    string // national trunk prefix dropped after the calling code ("" where none)
	intl     string // international call prefix besides "00" (e.g. "011" in NANP)
	min, max int    // national significant number length
}

var regions = map[string]region{
	"US": {"1", "1", "011", 10, 10}, "CA": {"1", "1", "011", 10, 10},
	"GB": {"44", "0", "00", 9, 10}, "DE": {"49", "0", "00", 6, 13}, "FR": {"33", "0", "00", 9, 9},
	"ES": {"34", "", "00", 9, 9}, "IT": {"39", "", "00", 6, 11}, "NL": {"31", "0", "00", 9, 9},
	"BE": {"32", "0", "00", 8, 9}, "AT": {"43", "0", "00", 4, 13}, "CH": {"41", "0", "00", 9, 9},
	"PL": {"48", "", "00", 9, 9}, "CZ": {"420", "", "00", 9, 9}, "SE": {"46", "0", "00", 7, 13},
	"NO": {"47", "", "00", 8, 8}, "DK": {"45", "", "00", 8, 8}, "FI": {"358", "0", "00", 5, 12},
	"PT": {"351", "", "00", 9, 9}, "IE": {"353", "0", "00", 7, 9}, "GR": {"30", "", "00", 10, 10},
	"RU": {"7", "8", "810", 10, 10}, "UA": {"380", "0", "00", 9, 9}, "TR": {"90", "0", "00", 10, 10},
	"IN": {"91", "0", "00", 10, 10}, "CN": {"86", "0", "00", 5, 12}, "JP": {"81", "0", "010", 9, 10},
	"KR": {"82", "0", "00", 8, 10}, "AU": {"61", "0", "0011", 9, 9}, "NZ": {"64", "0", "00", 8, 10},
	"BR": {"55", "0", "00", 10, 11}, "MX": {"52", "", "00", 10, 10}, "AR": {"54", "0", "00", 10, 11},
	"ZA": {"27", "0", "00", 9, 9}, "NG": {"234", "0", "009", 8, 10}, "EG": {"20", "0", "00", 9, 10},
	"IL": {"972", "0", "00", 8, 9}, "AE": {"971", "0", "00", 8, 9}, "SA": {"966", "0", "00", 9, 9},
	"SG": {"65", "", "000", 8, 8}, "HK": {"852", "", "001", 8, 8}, "ID": {"62", "0", "001", 9, 12},
	"PH": {"63", "0", "00", 10, 10}, "TH": {"66", "0", "001", 8, 9}, "VN": {"84", "0", "00", 9, 10},
	"MY": {"60", "0", "00", 9, 10}, "HU": {"36", "06", "00", 8, 9}, "RO": {"40", "0", "00", 9, 9},
	"KE": {"254", "0", "000", 9, 9}, "CO": {"57", "", "00", 10, 10}, "CL": {"56", "", "00", 9, 9},
}

// byCC maps a calling code to its region (the first listed for shared codes such as 1).
var byCC = func() map[string]region {
	m := make(map[string]region, len(regions))
	for _, name := range []string{"US"} { // NANP: one entry is enough for length checks
		m[regions[name].cc] = regions[name]
	}
	for _, r := range regions {
		if _, ok := m[r.cc]; !ok {
			m[r.cc] = r
		}
	}
	return m
}()

// validRegion reports whether code is a region e164 knows.
func validRegion(code string) bool {
	_, ok := regions[strings.ToUpper(code)]
	return ok
}

// E164 normalises phone to E.164 ("+491701234567"). A number without an international prefix
// is read as a national number of defaultRegion (an ISO 3166 alpha-2 code such as "DE"). The
// error wraps ErrPhone and never contains the number itself (it is a recipient).
func E164(phone, defaultRegion string) (string, error) {
	s := strings.TrimSpace(phone)
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "00") {
		// "+49 (0)170 …": the trunk zero in parentheses is not dialled from abroad.
		s = strings.Replace(s, "(0)", "", 1)
	}
	var digits strings.Builder
	plus := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' && digits.Len() == 0 && !plus:
			plus = true
		case r == ' ' || r == '-' || r == '.' || r == '/' || r == '(' || r == ')' || r == '\u00a0':
		default:
			return "", fmt.Errorf("unexpected character %q: %w", r, ErrPhone)
		}
	}
	return finish(plus, digits.String(), defaultRegion)
}

func finish(plus bool, d, defaultRegion string) (string, error) {
	if !plus {
		reg, ok := regions[strings.ToUpper(defaultRegion)]
		switch {
		case strings.HasPrefix(d, "00"):
			d, plus = d[2:], true
		case ok && reg.intl != "00" && strings.HasPrefix(d, reg.intl):
			d, plus = d[len(reg.intl):], true
		case !ok:
			if defaultRegion == "" {
				return "", fmt.Errorf("national number and no region to read it in: %w", ErrPhone)
			}
			return "", fmt.Errorf("unknown region %q: %w", defaultRegion, ErrPhone)
		default:
			nsn := d
			if reg.trunk != "" && strings.HasPrefix(nsn, reg.trunk) && (reg.trunk == "0" || len(nsn)-len(reg.trunk) >= reg.min) {
				nsn = nsn[len(reg.trunk):]
			}
			if len(nsn) < reg.min || len(nsn) > reg.max {
				return "", fmt.Errorf("%d digits, want %d–%d for %s: %w", len(nsn), reg.min, reg.max, strings.ToUpper(defaultRegion), ErrPhone)
			}
			return "+" + reg.cc + nsn, nil
		}
	}
	if len(d) < 8 || len(d) > 15 {
		return "", fmt.Errorf("%d digits, want 8–15 with the calling code: %w", len(d), ErrPhone)
	}
	for n := 1; n <= 3; n++ {
		reg, ok := byCC[d[:n]]
		if !ok {
			continue
		}
		nsn := d[n:]
		if reg.trunk != "" && strings.HasPrefix(nsn, reg.trunk) && len(nsn)-len(reg.trunk) >= reg.min &&
			(reg.trunk == "0" || len(nsn) > reg.max) {
			nsn = nsn[len(reg.trunk):] // "+49 0170…": a dialled trunk prefix
		}
		if len(nsn) < reg.min || len(nsn) > reg.max {
			return "", fmt.Errorf("%d digits after +%s, want %d–%d: %w", len(nsn), reg.cc, reg.min, reg.max, ErrPhone)
		}
		return "+" + reg.cc + nsn, nil
	}
	if d[0] == '0' {
		return "", fmt.Errorf("calling code cannot start with 0: %w", ErrPhone)
	}
	return "+" + d, nil
}
