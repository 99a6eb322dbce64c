package render

import (
	"fmt"
	"strings"
)

// locale holds what render needs of a language: number symbols, the money pattern, date
// layouts with month and day names, and the plural rule. Separators are plain ASCII spaces where
// CLDR has a no-break space, so that an SMS stays in GSM-7.
type locale struct {
	name string
	// group and decimal separators; minGroup is the number of integer digits from which
	// grouping starts (CLDR minimumGroupingDigits: 5 for es, so "1234" but "12.345").
	group, decimal string
	minGroup       int
	// symbolFirst puts the currency symbol before the number ("€1,234.50"), else after it
	// separated by a space ("1.234,50 €").
	symbolFirst bool
	// layouts by name (short, medium, long, full, time) in Go time layout syntax; month and day
	// names are translated from the English ones Go writes.
	layouts  map[string]string
	dateTime string // how date and time join: "%s, %s"
	months   [12]string
	monthsG  [12]string // genitive ("2 января"), used by long and full layouts; empty: months
	monthsA  [12]string // abbreviated
	days     [7]string  // Sunday first, like time.Weekday
	daysA    [7]string
	plural   func(n uint64) int // index of the form to use
	forms    int                // number of plural forms the locale has
}

// pluralOneOther: 1 → one, everything else → other (en, de, es, it).
func pluralOneOther(n uint64) int {
	if n == 1 {
		return 0
	}
	return 1
}

// pluralFrench: 0 and 1 → one, else other.
func pluralFrench(n uint64) int {
	if n <= 1 {
		return 0
	}
	return 1
}

// pluralRussian: one (1, 21, 31 … but not 11), few (2-4, 22-24 … but not 12-14), many.
func pluralRussian(n uint64) int {
	switch m10, m100 := n%10, n%100; {
	case m10 == 1 && m100 != 11:
		return 0
	case m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14):
		return 1
	}
	return 2
}

// localeNames lists the locales render knows, in the order error messages name them.
var localeNames = []string{"en", "de", "fr", "es", "it", "ru"}

var locales = map[string]*locale{
	"en": {
		name: "en", group: ",", decimal: ".", minGroup: 4, symbolFirst: true,
		layouts: map[string]string{
			"short": "1/2/06", "medium": "Jan 2, 2006", "long": "January 2, 2006",
			"full": "Monday, January 2, 2006", "time": "3:04 PM",
		},
		dateTime: "%s, %s",
		months:   [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		monthsA:  [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		days:     [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		daysA:    [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"},
		plural:   pluralOneOther, forms: 2,
	},
	"de": {
		name: "de", group: ".", decimal: ",", minGroup: 4,
		layouts: map[string]string{
			"short": "02.01.06", "medium": "02.01.2006", "long": "2. January 2006",
			"full": "Monday, 2. January 2006", "time": "15:04",
		},
		dateTime: "%s, %s",
		months:   [12]string{"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"},
		monthsA:  [12]string{"Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."},
		days:     [7]string{"Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag"},
		daysA:    [7]string{"So.", "Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa."},
		plural:   pluralOneOther, forms: 2,
	},
	"fr": {
		name: "fr", group: " ", decimal: ",", minGroup: 4,
		layouts: map[string]string{
			"short": "02/01/2006", "medium": "2 Jan 2006", "long": "2 January 2006",
			"full": "Monday 2 January 2006", "time": "15:04",
		},
		dateTime: "%s %s",
		months:   [12]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
		monthsA:  [12]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."},
		days:     [7]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"},
		daysA:    [7]string{"dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."},
		plural:   pluralFrench, forms: 2,
	},
	"es": {
		name: "es", group: ".", decimal: ",", minGroup: 5,
		layouts: map[string]string{
			"short": "2/1/06", "medium": "2 Jan 2006", "long": "2 de January de 2006",
			"full": "Monday, 2 de January de 2006", "time": "15:04",
		},
		dateTime: "%s, %s",
		months:   [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
		monthsA:  [12]string{"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"},
		days:     [7]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"},
		daysA:    [7]string{"dom", "lun", "mar", "mié", "jue", "vie", "sáb"},
		plural:   pluralOneOther, forms: 2,
	},
	"it": {
		name: "it", group: ".", decimal: ",", minGroup: 4,
		layouts: map[string]string{
			"short": "02/01/06", "medium": "2 Jan 2006", "long": "2 January 2006",
			"full": "Monday 2 January 2006", "time": "15:04",
		},
		dateTime: "%s, %s",
		months:   [12]string{"gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre"},
		monthsA:  [12]string{"gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"},
		days:     [7]string{"domenica", "lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato"},
		daysA:    [7]string{"dom", "lun", "mar", "mer", "gio", "ven", "sab"},
		plural:   pluralOneOther, forms: 2,
	},
	"ru": {
		name: "ru", group: " ", decimal: ",", minGroup: 5,
		layouts: map[string]string{
			"short": "02.01.2006", "medium": "2 Jan 2006 г.", "long": "2 January 2006 г.",
			"full": "Monday, 2 January 2006 г.", "time": "15:04",
		},
		dateTime: "%s, %s",
		months:   [12]string{"январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь"},
		monthsG:  [12]string{"января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября", "декабря"},
		monthsA:  [12]string{"янв.", "февр.", "мар.", "апр.", "мая", "июн.", "июл.", "авг.", "сент.", "окт.", "нояб.", "дек."},
		days:     [7]string{"воскресенье", "понедельник", "вторник", "среда", "четверг", "пятница", "суббота"},
		daysA:    [7]string{"вс", "пн", "вт", "ср", "чт", "пт", "сб"},
		plural:   pluralRussian, forms: 3,
	},
}

// lookupLocale resolves "de", "de-AT" or "de_AT" (the region is ignored); "" is "en".
func lookupLocale(name string) (*locale, error) {
	if name == "" {
		return locales["en"], nil
	}
	base := strings.ToLower(name)
	if i := strings.IndexAny(base, "-_"); i >= 0 {
		base = base[:i]
	}
	if l, ok := locales[base]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("unknown locale %q (known: %s)", name, strings.Join(localeNames, ", "))
}
