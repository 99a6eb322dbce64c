package render

import (
	"fmt"
	"reflect"
	"slices"
	"text/template/parse"
)

// The limits that keep a wrong template from stalling the ingest path; the output size limit
// is MaxOutput (render.go).

// maxRangeInt bounds {{ range N }} over an integer (Go 1.22 templates): a template must not
// spin for hours on a large count.
const maxRangeInt = 100

// rangeGuard passes a range's value through, refusing an integer above maxRangeInt.
func rangeGuard(v any) (any, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if rv.Int() > maxRangeInt {
			return nil, fmt.Errorf("range over %d: at most %d iterations", rv.Int(), maxRangeInt)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if rv.Uint() > maxRangeInt {
			return nil, fmt.Errorf("range over %d: at most %d iterations", rv.Uint(), maxRangeInt)
		}
	}
	return v, nil
}

// checkRecursion refuses a template that calls itself, directly or through others: a
// notification has no use for it, and text/template only stops it 100000 calls deep.
func checkRecursion(trees map[string]*parse.Tree) (parse.Node, string) {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(name string) (parse.Node, string)
	visit = func(name string) (parse.Node, string) {
		state[name] = active
		defer func() { state[name] = done }()
		tree := trees[name]
		if tree == nil {
			return nil, ""
		}
		var found parse.Node
		var cycle string
		walkTemplates(tree.Root, func(tn *parse.TemplateNode) bool {
			switch state[tn.Name] {
			case active:
				found, cycle = tn, tn.Name
				return false
			case unvisited:
				if n, c := visit(tn.Name); n != nil {
					found, cycle = n, c
					return false
				}
			}
			return true
		})
		return found, cycle
	}
	for _, name := range sortedNames(trees) {
		if state[name] == unvisited {
			if n, c := visit(name); n != nil {
				return n, c
			}
		}
	}
	return nil, ""
}

// sortedNames returns the template names in order, so errors and rewrites are deterministic.
func sortedNames(trees map[string]*parse.Tree) []string {
	names := make([]string, 0, len(trees))
	for name := range trees {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// walkTemplates calls f for every {{template}} call under n until f returns false.
func walkTemplates(n parse.Node, f func(*parse.TemplateNode) bool) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return true
		}
		for _, c := range n.Nodes {
			if !walkTemplates(c, f) {
				return false
			}
		}
	case *parse.TemplateNode:
		return f(n)
	case *parse.IfNode:
		return walkTemplates(n.List, f) && walkTemplates(n.ElseList, f)
	case *parse.RangeNode:
		return walkTemplates(n.List, f) && walkTemplates(n.ElseList, f)
	case *parse.WithNode:
		return walkTemplates(n.List, f) && walkTemplates(n.ElseList, f)
	}
	return true
}
