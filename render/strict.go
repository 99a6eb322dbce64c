package render

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/shopspring/decimal"
)

// Strictness. text/template with missingkey=error still prints "<no value>" for a NULL (a nil
// map value) and gives no field name. So after parsing, every field reference (.a.b, $x.a,
// (pipe).a) is rewritten into a call of a generated helper that resolves the path itself and
// fails with the field's name when a key is missing, or when the value is NULL and the place
// it is used in needs a value. NULL is allowed where it has a meaning: in the condition of
// if/with/range, as an argument of default, json, and, or, not, eq, ne, and as the value piped
// into one of those. An action whose value may still be nil (a variable, index, call) gets a
// final output check.

// outputCheck fails a NULL about to be printed; what names the action's value.
func outputCheck(what string) func(any) (any, error) {
	msg := what + " is NULL (use default)"
	return func(v any) (any, error) {
		if v == nil {
			return nil, &fieldError{msg: msg, err: ErrNullField}
		}
		p, _ := printable(v)
		return p, nil
	}
}

// printable is the last step of an action that prints a value which is not text yet: a
// decimal prints with its scale (decimalText), since text/template would call its String
// method, which drops trailing zeros ("1234.5" for a DECIMAL(12,2) 1234.50). ok reports a
// conversion.
func printable(v any) (p any, ok bool) {
	switch x := v.(type) {
	case decimal.Decimal:
		return decimalText(x), true
	case *decimal.Decimal:
		if x != nil {
			return decimalText(*x), true
		}
	}
	return v, false
}

// outputPrintable is the output step of an action whose value cannot be NULL.
func outputPrintable(v any) (any, error) {
	p, _ := printable(v)
	return p, nil
}

// fieldError is what the generated helpers return; Render turns it into an *Error.
type fieldError struct {
	msg string
	err error
}

func (e *fieldError) Error() string { return e.msg }
func (e *fieldError) Unwrap() error { return e.err }

// fieldRef is one rewritten field reference.
type fieldRef struct {
	path    []string // keys below the receiver
	display []string // display[i] names the value after path[i] ("new.amount")
	root    string   // names the receiver ("data", "items[]", "$x")
	strict  bool     // NULL is an error
}

// resolve walks the path from v.
func (f *fieldRef) resolve(v any) (any, error) {
	for i, key := range f.path {
		if v == nil {
			if !f.strict {
				return nil, nil
			}
			name := f.root
			if i > 0 {
				name = f.display[i-1]
			}
			return nil, &fieldError{msg: "field " + name + " is NULL", err: ErrNullField}
		}
		next, ok, err := lookup(v, key)
		if err != nil {
			return nil, &fieldError{msg: "field " + f.display[i] + ": " + err.Error(), err: ErrMissingField}
		}
		if !ok {
			name := f.root
			if i > 0 {
				name = f.display[i-1]
			}
			return nil, &fieldError{msg: name + " has no field " + strconv.Quote(key), err: ErrMissingField}
		}
		v = next
	}
	if v == nil && f.strict {
		return nil, &fieldError{msg: "field " + f.display[len(f.display)-1] + " is NULL", err: ErrNullField}
	}
	return v, nil
}

// lookup returns v's field key: a map entry (map[string]any and named map types such as a
// row), an exported struct field, or the result of a method without arguments (time.Time's
// Year, say).
func lookup(v any, key string) (any, bool, error) {
	if m, ok := v.(map[string]any); ok {
		x, ok := m[key]
		return x, ok, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Map && rv.Type().ConvertibleTo(mapAnyType) {
		// A named row type (cdc.Row): the same map, without per-key reflection.
		m := rv.Convert(mapAnyType).Interface().(map[string]any)
		x, ok := m[key]
		return x, ok, nil
	}
	if m := rv.MethodByName(key); m.IsValid() {
		t := m.Type()
		if t.NumIn() != 0 || t.NumOut() == 0 || t.NumOut() > 2 || t.NumOut() == 2 && t.Out(1) != errorType {
			return nil, false, fmt.Errorf("method %s needs arguments", key)
		}
		out := m.Call(nil)
		if len(out) == 2 && !out[1].IsNil() {
			return nil, false, out[1].Interface().(error)
		}
		return out[0].Interface(), true, nil
	}
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil, true, nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		x := rv.MapIndex(reflect.ValueOf(key).Convert(rv.Type().Key()))
		if !x.IsValid() {
			return nil, false, nil
		}
		return x.Interface(), true, nil
	case reflect.Struct:
		sf, ok := rv.Type().FieldByName(key)
		if !ok || !sf.IsExported() {
			return nil, false, nil
		}
		return rv.FieldByIndex(sf.Index).Interface(), true, nil
	}
	return nil, false, fmt.Errorf("%s has no fields", describe(v))
}

var (
	errorType  = reflect.TypeFor[error]()
	mapAnyType = reflect.TypeFor[map[string]any]()
)

// rewriter rewrites the parse trees of one template part.
type rewriter struct {
	funcs  template.FuncMap // generated helpers are added here
	next   *int             // counter shared by the parts of a Template
	checks *callChecker     // compile-time checks of helper calls
}

type mode uint8

const (
	modeValue mode = iota // output, assignment, helper argument: NULL is an error
	modeCond              // if/with/range condition, template argument: NULL is allowed
)

func (r *rewriter) list(l *parse.ListNode, prefix string) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		r.node(n, prefix)
	}
}

func (r *rewriter) node(n parse.Node, prefix string) {
	switch n := n.(type) {
	case *parse.ActionNode:
		what := n.Pipe.String()
		r.pipe(n.Pipe, prefix, modeValue)
		if len(n.Pipe.Decl) == 0 && !isText(n.Pipe) {
			last := n.Pipe.Cmds[len(n.Pipe.Cmds)-1]
			f := outputPrintable
			if mayBeNil(n.Pipe) {
				f = outputCheck(what)
			}
			name := r.add(f)
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: last.Pos,
				Args: []parse.Node{parse.NewIdentifier(name).SetPos(last.Pos)}})
		}
	case *parse.IfNode:
		r.pipe(n.Pipe, prefix, modeCond)
		r.list(n.List, prefix)
		r.list(n.ElseList, prefix)
	case *parse.WithNode:
		inner := dotPrefix(n.Pipe, prefix, "")
		r.pipe(n.Pipe, prefix, modeCond)
		r.list(n.List, inner)
		r.list(n.ElseList, prefix)
	case *parse.RangeNode:
		inner := dotPrefix(n.Pipe, prefix, "[]")
		r.pipe(n.Pipe, prefix, modeCond)
		last := n.Pipe.Cmds[len(n.Pipe.Cmds)-1]
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: last.Pos,
			Args: []parse.Node{parse.NewIdentifier(r.add(rangeGuard)).SetPos(last.Pos)}})
		r.list(n.List, inner)
		r.list(n.ElseList, prefix)
	case *parse.TemplateNode:
		if n.Pipe != nil {
			r.pipe(n.Pipe, prefix, modeCond)
		}
	case *parse.ListNode:
		r.list(n, prefix)
	}
}

// dotPrefix names the dot inside a with or range body ("new", "items[]"), or "" if unknown.
func dotPrefix(p *parse.PipeNode, prefix, suffix string) string {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return ""
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return joinPath(prefix, a.Ident) + suffix
	case *parse.VariableNode:
		if a.Ident[0] == "$" {
			return joinPath("", a.Ident[1:]) + suffix
		}
		return joinPath("", a.Ident) + suffix
	}
	return ""
}

func joinPath(prefix string, idents []string) string {
	s := strings.Join(idents, ".")
	if prefix == "" {
		return s
	}
	if s == "" {
		return prefix
	}
	return prefix + "." + s
}

// isText reports whether an output pipeline ends in something that prints as itself: a
// literal, or a helper that returns text, a bool or a count (stringFuncs), never nil or a
// decimal.
func isText(p *parse.PipeNode) bool {
	last := p.Cmds[len(p.Cmds)-1]
	switch a := last.Args[0].(type) {
	case *parse.IdentifierNode:
		return stringFuncs[a.Ident]
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode:
		return true
	}
	return false
}

// mayBeNil reports whether an output pipeline can still end in nil after the rewrite.
func mayBeNil(p *parse.PipeNode) bool {
	last := p.Cmds[len(p.Cmds)-1]
	switch a := last.Args[0].(type) {
	case *parse.IdentifierNode:
		if strings.HasPrefix(a.Ident, genFuncPrefix) {
			return false // a strict field
		}
		return !stringFuncs[a.Ident]
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode:
		return false
	}
	return true
}

func (r *rewriter) pipe(p *parse.PipeNode, prefix string, m mode) {
	if p == nil {
		return
	}
	for i, cmd := range p.Cmds {
		lenient := m == modeCond
		if i+1 < len(p.Cmds) {
			if id, ok := p.Cmds[i+1].Args[0].(*parse.IdentifierNode); ok && lenientFuncs[id.Ident] {
				lenient = true // {{ .new.x | default "n/a" }}
			}
		}
		if r.checks != nil {
			r.checks.call(cmd, i > 0)
		}
		r.command(cmd, prefix, lenient)
	}
}

func (r *rewriter) command(cmd *parse.CommandNode, prefix string, lenient bool) {
	switch first := cmd.Args[0].(type) {
	case *parse.IdentifierNode:
		strictArgs := !lenientFuncs[first.Ident]
		for j := 1; j < len(cmd.Args); j++ {
			cmd.Args[j] = r.arg(cmd.Args[j], prefix, strictArgs)
		}
	case *parse.FieldNode, *parse.VariableNode, *parse.ChainNode:
		if len(cmd.Args) > 1 {
			// A method call with arguments (.new.due.Format "2006").
			for j := 1; j < len(cmd.Args); j++ {
				cmd.Args[j] = r.arg(cmd.Args[j], prefix, true)
			}
			cmd.Args[0] = r.methodReceiver(first, prefix)
			return
		}
		if call := r.arg(first, prefix, !lenient); call != first {
			cmd.Args = call.(*parse.PipeNode).Cmds[0].Args
		}
	case *parse.PipeNode:
		if lenient {
			r.pipe(first, prefix, modeCond)
		} else {
			r.pipe(first, prefix, modeValue)
		}
	}
}

// genFuncPrefix starts the names of the generated helpers.
const genFuncPrefix = "_render_"

// add registers a generated helper under a new name.
func (r *rewriter) add(f func(any) (any, error)) string {
	name := genFuncPrefix + strconv.Itoa(*r.next)
	*r.next++
	r.funcs[name] = f
	return name
}

// arg rewrites one argument; a field reference becomes (_render_fN receiver).
func (r *rewriter) arg(n parse.Node, prefix string, strict bool) parse.Node {
	return r.argAt(n, prefix, strict, fieldStart(n))
}

// methodReceiver rewrites the receiver of a method call with arguments
// (.new.due.Format "2006" → (_render_N .new.due).Format "2006"), so that a missing or NULL
// receiver is reported like any field.
func (r *rewriter) methodReceiver(n parse.Node, prefix string) parse.Node {
	start := fieldStart(n)
	var recv parse.Node
	var method string
	switch a := n.(type) {
	case *parse.FieldNode:
		if len(a.Ident) < 2 {
			return n // a method of the dot
		}
		recv = &parse.FieldNode{NodeType: parse.NodeField, Pos: a.Pos, Ident: a.Ident[:len(a.Ident)-1]}
		method = a.Ident[len(a.Ident)-1]
	case *parse.VariableNode:
		if len(a.Ident) < 2 {
			return n
		}
		recv = &parse.VariableNode{NodeType: parse.NodeVariable, Pos: a.Pos, Ident: a.Ident[:len(a.Ident)-1]}
		method = a.Ident[len(a.Ident)-1]
	case *parse.ChainNode:
		if len(a.Field) < 2 {
			if p, ok := a.Node.(*parse.PipeNode); ok {
				r.pipe(p, prefix, modeValue)
			}
			return n
		}
		recv = &parse.ChainNode{NodeType: parse.NodeChain, Pos: a.Pos, Node: a.Node, Field: a.Field[:len(a.Field)-1]}
		method = a.Field[len(a.Field)-1]
	default:
		return n
	}
	return &parse.ChainNode{NodeType: parse.NodeChain, Pos: start, Node: r.argAt(recv, prefix, true, start), Field: []string{method}}
}

// argAt is arg with the position errors are reported at.
func (r *rewriter) argAt(n parse.Node, prefix string, strict bool, pos parse.Pos) parse.Node {
	var receiver parse.Node
	var path []string
	root := prefix
	switch a := n.(type) {
	case *parse.FieldNode:
		receiver = &parse.DotNode{NodeType: parse.NodeDot, Pos: a.Pos}
		path = a.Ident
	case *parse.VariableNode:
		if len(a.Ident) == 1 {
			if !strict {
				return n
			}
			// {{ printf "%s" $x }}: a NULL variable is caught like a NULL field.
			check := r.add(outputCheck(a.Ident[0]))
			return &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{{
				NodeType: parse.NodeCommand, Pos: pos,
				Args: []parse.Node{parse.NewIdentifier(check).SetPos(pos), a},
			}}}
		}
		receiver = &parse.VariableNode{NodeType: parse.NodeVariable, Pos: a.Pos, Ident: a.Ident[:1]}
		path = a.Ident[1:]
		root = a.Ident[0]
		if root == "$" {
			root = ""
		}
	case *parse.ChainNode:
		if p, ok := a.Node.(*parse.PipeNode); ok {
			r.pipe(p, prefix, modeValue)
		}
		receiver = a.Node
		path = a.Field
		root = a.Node.String()
	case *parse.PipeNode:
		if strict {
			r.pipe(a, prefix, modeValue)
		} else {
			r.pipe(a, prefix, modeCond)
		}
		return n
	default:
		return n
	}
	ref := &fieldRef{path: path, display: make([]string, len(path)), root: root, strict: strict}
	for i := range path {
		ref.display[i] = joinPath(root, path[:i+1])
	}
	if ref.root == "" {
		ref.root = "data"
	}
	name := r.add(ref.resolve)
	return &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{{
		NodeType: parse.NodeCommand, Pos: pos,
		Args: []parse.Node{parse.NewIdentifier(name).SetPos(pos), receiver},
	}}}
}

// fieldStart is where a field reference starts in the source: text/template positions a
// multi-part field (.new.amount, $x.a) at its second part.
func fieldStart(n parse.Node) parse.Pos {
	pos := n.Position()
	switch a := n.(type) {
	case *parse.FieldNode:
		if len(a.Ident) > 1 {
			pos -= parse.Pos(1 + len(a.Ident[0]))
		}
	case *parse.VariableNode:
		if len(a.Ident) > 1 {
			pos -= parse.Pos(len(a.Ident[0]))
		}
	}
	if pos < 0 {
		pos = 0
	}
	return pos
}

// asFieldError finds a generated helper's error in a template execution error.
func asFieldError(err error) (*fieldError, bool) {
	var fe *fieldError
	ok := errors.As(err, &fe)
	return fe, ok
}
