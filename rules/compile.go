package rules

import (
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// maxNodes bounds the size of one expression (expr's default is 10,000). Rules are short; a
// huge expression is a mistake or an attack on the loader.
const maxNodes = 1000

// binaryFuncs maps an operator to the typed-dynamic function it is rewritten into (ops.go).
var binaryFuncs = map[string]string{
	"==": "_eq", "!=": "_ne", "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge",
	"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod",
}

// rewriter is the expr.Patch visitor applied to every rule expression:
//   - a comparison or arithmetic operator whose operands are not both literals becomes a call
//     of the typed-dynamic function in binaryFuncs (unary minus: _neg);
//   - new.col, old.col and vars.x become _get(new, "col"), ...: a type assertion and a map
//     index, where expr would go through reflect (and allocate) for a map typed `any`;
//   - now() becomes commit_time, the commit time of the transaction being evaluated (the fire
//     time for a recheck), so that evaluating a binlog event again — a replay, a restart, a
//     second pod — gives the same answer; the wall clock would not;
//   - changed(c) becomes old.c != new.c, and became(c, v) becomes new.c == v && old.c != v.
//
// The operator functions live in the environment (envFuncs) with signatures expr calls
// without building an argument slice (OpCallTyped), so a rule that does not match allocates
// nothing. They report errors by panicking with an error value, which vm.Run turns into a
// positioned *file.Error wrapping it.
type rewriter struct{}

func isLiteral(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BoolNode, *ast.NilNode, *ast.ConstantNode:
		return true
	case *ast.UnaryNode:
		return (x.Operator == "-" || x.Operator == "+") && isLiteral(x.Node)
	}
	return false
}

func call(name string, args ...ast.Node) *ast.CallNode {
	return &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args}
}

func get(row string, col ast.Node) ast.Node {
	return call("_get", &ast.IdentifierNode{Value: row}, col)
}

// Visit implements ast.Visitor.
func (rewriter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		fn, ok := binaryFuncs[n.Operator]
		if !ok || (isLiteral(n.Left) && isLiteral(n.Right)) {
			return
		}
		ast.Patch(node, call(fn, n.Left, n.Right))
	case *ast.UnaryNode:
		if n.Operator == "-" && !isLiteral(n.Node) {
			ast.Patch(node, call("_neg", n.Node))
		}
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if ok && !n.Method && (id.Value == "new" || id.Value == "old" || id.Value == "vars") {
			ast.Patch(node, get(id.Value, n.Property))
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		switch {
		case id.Value == "now" && len(n.Arguments) == 0:
			ast.Patch(node, &ast.IdentifierNode{Value: "commit_time"})
		case id.Value == "changed" && len(n.Arguments) == 1 && columnArg(n.Arguments[0]):
			c := n.Arguments[0]
			ast.Patch(node, call("_ne", get("old", c), get("new", c)))
		case id.Value == "became" && len(n.Arguments) == 2 && columnArg(n.Arguments[0]):
			c, v := n.Arguments[0], n.Arguments[1]
			ast.Patch(node, &ast.BinaryNode{Operator: "&&",
				Left:  call("_eq", get("new", c), v),
				Right: call("_ne", get("old", c), v)})
		}
	}
}

// columnArg: a column name argument that may be right (a string literal or a computed value);
// other literals are left for the checker to report against changed/became's signatures.
func columnArg(n ast.Node) bool {
	_, isString := n.(*ast.StringNode)
	return isString || !isLiteral(n)
}

// envFuncs are the typed-dynamic operators, in every expression's environment.
var envFuncs = map[string]any{
	"_eq":  func(a, b any) bool { return equal(a, b) },
	"_ne":  func(a, b any) bool { return !equal(a, b) },
	"_lt":  func(a, b any) bool { return must(compare(a, b)) < 0 },
	"_le":  func(a, b any) bool { return must(compare(a, b)) <= 0 },
	"_gt":  func(a, b any) bool { return must(compare(a, b)) > 0 },
	"_ge":  func(a, b any) bool { return must(compare(a, b)) >= 0 },
	"_add": func(a, b any) any { return must(arith('+', a, b)) },
	"_sub": func(a, b any) any { return must(arith('-', a, b)) },
	"_mul": func(a, b any) any { return must(arith('*', a, b)) },
	"_div": func(a, b any) any { return must(arith('/', a, b)) },
	"_mod": func(a, b any) any { return must(arith('%', a, b)) },
	"_neg": func(a any) any { return must(negate(a)) },
	"_get": func(m, k any) any {
		row, _ := m.(map[string]any)
		key, ok := k.(string)
		if !ok {
			panic(fmt.Errorf("column name must be a string, got %s: %w", typeName(k), ErrType))
		}
		return row[key]
	},
}

// must panics with err (vm.Run recovers it into a positioned error).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// compileEnv is the shape of the environment every rule expression sees.
func compileEnv(vars map[string]any) map[string]any {
	if vars == nil {
		vars = map[string]any{}
	}
	env := map[string]any{
		"new": map[string]any{}, "old": map[string]any{},
		"op": "", "table": "", "commit_time": time.Time{}, "vars": vars,
	}
	for k, f := range envFuncs {
		env[k] = f
	}
	return env
}

// exprOptions are the options for one rule's expressions: its timezone (for date(), at_local,
// days, addDays) and default phone region (e164).
func exprOptions(vars map[string]any, loc *time.Location, region string, asBool bool) []expr.Option {
	opts := []expr.Option{
		expr.Env(compileEnv(vars)),
		expr.DisableBuiltin("now"),
		// expr's date() with a timezone patch breaks on a method call on its result
		// (date("…").Day() fails with "interface conversion" in v1.17.8); ours replaces it.
		expr.DisableBuiltin("date"),
		expr.MaxNodes(maxNodes),
		expr.Patch(rewriter{}),
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	return append(opts, functions(loc, region)...)
}

func compileExpr(src string, vars map[string]any, loc *time.Location, region string, asBool bool) (*vm.Program, error) {
	return expr.Compile(src, exprOptions(vars, loc, region, asBool)...)
}

func functions(loc *time.Location, region string) []expr.Option {
	return []expr.Option{
		// changed and became are declared with their signatures for the checker (argument
		// errors); the rewriter replaces every well-formed call.
		expr.Function("changed", unreachable, new(func(string) bool)),
		expr.Function("became", unreachable, new(func(string, any) bool)),

		expr.Function("date", func(p ...any) (any, error) { return parseDate(p, loc) },
			new(func(any) time.Time), new(func(string, string) time.Time), new(func(string, string, string) time.Time)),
		expr.Function("days", func(p ...any) (any, error) {
			a, b, err := twoTimes("days", p[0], p[1])
			if err != nil {
				return nil, err
			}
			return days(a, b, loc), nil
		}, new(func(any, any) int)),
		expr.Function("addDays", func(p ...any) (any, error) {
			t, err := asTime("addDays", p[0])
			if err != nil {
				return nil, err
			}
			n, err := asInt("addDays", p[1])
			if err != nil {
				return nil, err
			}
			return addDays(t, n, loc), nil
		}, new(func(any, int) time.Time)),
		expr.Function("at_local", func(p ...any) (any, error) {
			t, err := asTime("at_local", p[0])
			if err != nil {
				return nil, err
			}
			n, err := asInt("at_local", p[1])
			if err != nil {
				return nil, err
			}
			hhmm, ok := p[2].(string)
			if !ok {
				return nil, fmt.Errorf("at_local: time of day must be a string like \"09:00\": %w", ErrType)
			}
			return atLocal(t, n, hhmm, loc)
		}, new(func(any, int, string) time.Time)),
		expr.Function("e164", func(p ...any) (any, error) {
			reg := region
			if len(p) > 1 {
				s, ok := p[1].(string)
				if !ok {
					return nil, fmt.Errorf("e164: region must be a string: %w", ErrType)
				}
				reg = s
			}
			if p[0] == nil {
				return nil, fmt.Errorf("e164: phone: %w", ErrNull)
			}
			return E164(Format(p[0]), reg)
		}, new(func(any) string), new(func(any, string) string)),
	}
}

// parseDate is date(): date(s) reads "2006-01-02" as a DATE (midnight UTC, equal to a DATE
// column) and other forms ("2006-01-02 15:04[:05]", RFC 3339, "15:04:05", RFC 822/850/1123) in
// the rule's timezone; date(s, layout) reads s with a Go layout in the rule's timezone;
// date(s, layout, tz) in the timezone tz. A time passes through.
func parseDate(p []any, loc *time.Location) (any, error) {
	if t, ok := p[0].(time.Time); ok && len(p) == 1 {
		return t, nil
	}
	if p[0] == nil {
		return nil, fmt.Errorf("date: %w", ErrNull)
	}
	s, ok := p[0].(string)
	if !ok {
		return nil, fmt.Errorf("date: want a string, got %s: %w", typeName(p[0]), ErrType)
	}
	switch len(p) {
	case 1:
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return t, nil
		}
		for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", time.RFC3339Nano, "15:04:05",
			time.RFC822, time.RFC850, time.RFC1123} {
			if t, err := time.ParseInLocation(layout, s, loc); err == nil {
				return t, nil
			}
		}
		return nil, fmt.Errorf("date: %q is not a date or time: %w", s, ErrType)
	case 3:
		tz, err := time.LoadLocation(p[2].(string))
		if err != nil {
			return nil, fmt.Errorf("date: %w", err)
		}
		loc = tz
	}
	t, err := time.ParseInLocation(p[1].(string), s, loc)
	if err != nil {
		return nil, fmt.Errorf("date: %w", err)
	}
	return t, nil
}

func unreachable(...any) (any, error) {
	return nil, fmt.Errorf("internal error: call not rewritten")
}

func asTime(fn string, v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		return parseTimeString(t)
	case nil:
		return time.Time{}, fmt.Errorf("%s: time: %w", fn, ErrNull)
	}
	return time.Time{}, fmt.Errorf("%s: want a time, got %s: %w", fn, typeName(v), ErrType)
}

func twoTimes(fn string, a, b any) (time.Time, time.Time, error) {
	x, err := asTime(fn, a)
	if err != nil {
		return x, x, err
	}
	y, err := asTime(fn, b)
	return x, y, err
}

func asInt(fn string, v any) (int, error) {
	n := num(v)
	switch {
	case n.k == kInt:
		return int(n.i), nil
	case n.k == kUint && n.u < 1<<31:
		return int(n.u), nil
	case n.k == kDec && n.d.IsInteger():
		return int(n.d.IntPart()), nil
	case v == nil:
		return 0, fmt.Errorf("%s: number: %w", fn, ErrNull)
	}
	return 0, fmt.Errorf("%s: want an integer, got %s: %w", fn, typeName(v), ErrType)
}
