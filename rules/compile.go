package rules

import (
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/patcher"
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
//   - now() becomes commit_time, the commit time of the transaction being evaluated (the fire
//     time for a recheck), so that evaluating a binlog event again — a replay, a restart, a
//     second pod — gives the same answer; the wall clock would not;
//   - changed("col") and became("col", v) get the row images as extra arguments.
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

func callee(name string) *ast.IdentifierNode { return &ast.IdentifierNode{Value: name} }

// Visit implements ast.Visitor.
func (rewriter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		fn, ok := binaryFuncs[n.Operator]
		if !ok || (isLiteral(n.Left) && isLiteral(n.Right)) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: callee(fn), Arguments: []ast.Node{n.Left, n.Right}})
	case *ast.UnaryNode:
		if n.Operator == "-" && !isLiteral(n.Node) {
			ast.Patch(node, &ast.CallNode{Callee: callee("_neg"), Arguments: []ast.Node{n.Node}})
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		switch {
		case id.Value == "now" && len(n.Arguments) == 0:
			ast.Patch(node, &ast.IdentifierNode{Value: "commit_time"})
		case id.Value == "changed" && len(n.Arguments) == 1,
			id.Value == "became" && len(n.Arguments) == 2:
			args := append([]ast.Node{&ast.IdentifierNode{Value: "old"}, &ast.IdentifierNode{Value: "new"}}, n.Arguments...)
			ast.Patch(node, &ast.CallNode{Callee: callee("_" + id.Value), Arguments: args})
		}
	}
}

// compileEnv is the shape of the environment every rule expression sees.
func compileEnv(vars map[string]any) map[string]any {
	if vars == nil {
		vars = map[string]any{}
	}
	return map[string]any{
		"new": map[string]any{}, "old": map[string]any{},
		"op": "", "table": "", "commit_time": time.Time{}, "vars": vars,
	}
}

// exprOptions are the options for one rule's expressions: its timezone (for date(), at_local,
// days, addDays) and default phone region (e164).
func exprOptions(vars map[string]any, loc *time.Location, region string, asBool bool) []expr.Option {
	opts := []expr.Option{
		expr.Env(compileEnv(vars)),
		expr.DisableBuiltin("now"),
		expr.MaxNodes(maxNodes),
		expr.Patch(rewriter{}),
		expr.Patch(patcher.WithTimezone{Location: loc}),
	}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	return append(opts, functions(loc, region)...)
}

func compileExpr(src string, vars map[string]any, loc *time.Location, region string, asBool bool) (*vm.Program, error) {
	return expr.Compile(src, exprOptions(vars, loc, region, asBool)...)
}

var (
	cmpType   = new(func(any, any) bool)
	arithType = new(func(any, any) any)
)

func cmpFunc(name string, test func(int) bool) expr.Option {
	return expr.Function(name, func(p ...any) (any, error) {
		c, err := compare(p[0], p[1])
		if err != nil {
			return nil, err
		}
		return test(c), nil
	}, cmpType)
}

func arithFunc(name string, op byte) expr.Option {
	return expr.Function(name, func(p ...any) (any, error) { return arith(op, p[0], p[1]) }, arithType)
}

func functions(loc *time.Location, region string) []expr.Option {
	return []expr.Option{
		expr.Function("_eq", func(p ...any) (any, error) { return equal(p[0], p[1]), nil }, cmpType),
		expr.Function("_ne", func(p ...any) (any, error) { return !equal(p[0], p[1]), nil }, cmpType),
		cmpFunc("_lt", func(c int) bool { return c < 0 }),
		cmpFunc("_le", func(c int) bool { return c <= 0 }),
		cmpFunc("_gt", func(c int) bool { return c > 0 }),
		cmpFunc("_ge", func(c int) bool { return c >= 0 }),
		arithFunc("_add", '+'), arithFunc("_sub", '-'), arithFunc("_mul", '*'),
		arithFunc("_div", '/'), arithFunc("_mod", '%'),
		expr.Function("_neg", func(p ...any) (any, error) { return negate(p[0]) }, new(func(any) any)),

		// changed and became are declared with their user-facing signatures for the checker;
		// the rewriter turns every well-formed call into _changed/_became with the row images.
		expr.Function("changed", unreachable, new(func(string) bool)),
		expr.Function("became", unreachable, new(func(string, any) bool)),
		expr.Function("_changed", func(p ...any) (any, error) {
			col, err := column(p[2])
			if err != nil {
				return nil, err
			}
			return !equal(rowValue(p[0], col), rowValue(p[1], col)), nil
		}, new(func(any, any, any) bool)),
		expr.Function("_became", func(p ...any) (any, error) {
			col, err := column(p[2])
			if err != nil {
				return nil, err
			}
			now := rowValue(p[1], col)
			if !equal(now, p[3]) {
				return false, nil
			}
			old, ok := p[0].(map[string]any)
			return !ok || old == nil || !equal(old[col], p[3]), nil
		}, new(func(any, any, any, any) bool)),

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

func unreachable(...any) (any, error) {
	return nil, fmt.Errorf("internal error: call not rewritten")
}

func column(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("column name must be a string, got %s: %w", typeName(v), ErrType)
	}
	return s, nil
}

func rowValue(row any, col string) any {
	m, _ := row.(map[string]any)
	return m[col]
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
	k, i, u, _, d := num(v)
	switch {
	case k == kInt:
		return int(i), nil
	case k == kUint && u < 1<<31:
		return int(u), nil
	case k == kDec && d.IsInteger():
		return int(d.IntPart()), nil
	case v == nil:
		return 0, fmt.Errorf("%s: number: %w", fn, ErrNull)
	}
	return 0, fmt.Errorf("%s: want an integer, got %s: %w", fn, typeName(v), ErrType)
}
