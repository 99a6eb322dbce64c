package render

import (
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
)

// valueFirst are the helpers whose first argument is the value ({{ money .x "EUR" }}); piping
// a value into them with more arguments would pass it last, in the wrong place.
var valueFirst = map[string]bool{
	"money": true, "number": true, "date": true, "datetime": true, "plural": true, "truncate": true,
}

// callChecker finds helper calls that would fail on every row, so that Compile reports them
// with their position instead of each message failing: a wrong number of arguments, a value
// piped into a value-first helper, and literal arguments that are invalid (an unknown currency
// or date layout, the wrong number of plural forms, a negative length).
type callChecker struct {
	funcs     template.FuncMap
	loc       *locale
	part, src string
	errs      []error
}

func (c *callChecker) fail(n parse.Node, format string, args ...any) {
	line, col := position(c.src, int(n.Position()))
	c.errs = append(c.errs, &Error{Part: c.part, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// call checks one command; piped is true when the previous command's value is passed last.
func (c *callChecker) call(cmd *parse.CommandNode, piped bool) {
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok {
		return
	}
	fn, ok := c.funcs[id.Ident]
	if !ok {
		return // a builtin: text/template checks those
	}
	args := cmd.Args[1:]
	got := len(args)
	if piped {
		got++
	}
	t := reflect.TypeOf(fn)
	switch min := t.NumIn(); {
	case t.IsVariadic() && got < min-1:
		c.fail(id, "wrong number of args for %s: want at least %d, got %d", id.Ident, min-1, got)
		return
	case !t.IsVariadic() && got != min:
		c.fail(id, "wrong number of args for %s: want %d, got %d", id.Ident, min, got)
		return
	}
	if piped && len(args) > 0 && valueFirst[id.Ident] {
		c.fail(id, "%s takes the value first ({{ %s .value ... }}), it cannot be piped into with arguments", id.Ident, id.Ident)
		return
	}
	if piped || len(args) < 2 {
		return
	}
	switch id.Ident {
	case "money":
		if s, ok := args[1].(*parse.StringNode); ok {
			if _, err := lookupCurrency(s.Text); err != nil {
				c.fail(s, "money: %v", err)
			}
		}
	case "date", "datetime":
		if s, ok := args[1].(*parse.StringNode); ok {
			if _, named := c.loc.layouts[s.Text]; !named && !strings.ContainsAny(s.Text, "0123456789") {
				c.fail(s, "%s: unknown layout %q (want short, medium, long, full, time or a Go layout)", id.Ident, s.Text)
			}
		}
	case "plural":
		if n := len(args) - 1; n != c.loc.forms {
			c.fail(id, "plural: locale %s takes %d forms, got %d", c.loc.name, c.loc.forms, n)
		}
	case "truncate", "number":
		if n, ok := args[1].(*parse.NumberNode); ok && (!n.IsInt || n.Int64 < 0 || id.Ident == "number" && n.Int64 > 18) {
			c.fail(n, "%s: %s is not a valid %s", id.Ident, n.Text, map[string]string{"truncate": "length", "number": "number of decimals (0..18)"}[id.Ident])
		}
	}
}
