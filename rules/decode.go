package rules

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Strict decoding of rule files straight from the yaml.Node tree, so that every value keeps its
// position: unknown keys, duplicate keys, wrong kinds and bad values are all reported as
// "file:line:col: msg", and decoding goes on to find the next problem.

// fieldSet is a mapping node whose keys were checked against the known ones.
type fieldSet struct {
	node *yaml.Node
	vals map[string]*yaml.Node
	keys map[string]*yaml.Node
}

// get returns the value node of key, or nil when absent.
func (f *fieldSet) get(key string) *yaml.Node {
	if f == nil {
		return nil
	}
	return f.vals[key]
}

// has reports whether key is present (even with a null value).
func (f *fieldSet) has(key string) bool { return f.get(key) != nil }

// fields checks that n is a mapping with only known keys, each at most once. It returns nil
// (after recording the error) when n is not a mapping.
func (s *source) fields(n *yaml.Node, what string, known []string) *fieldSet {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		s.errorf(n, "%s must be a mapping, got %s", what, kindName(n))
		return nil
	}
	f := &fieldSet{node: n, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, v) // `<<: *shared`: fields not set here come from there
			continue
		}
		if k.Kind != yaml.ScalarNode {
			s.errorf(k, "%s: keys must be strings", what)
			continue
		}
		if prev, dup := f.keys[k.Value]; dup {
			s.errorf(k, "%s: field %q repeated (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		if strings.HasPrefix(k.Value, "x-") && contains(known, "x-*") {
			continue // an extension field: a place for anchors (`x-sms: &sms {...}`)
		}
		if !contains(known, k.Value) {
			s.errorf(k, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(sorted(known), ", "))
			continue
		}
		f.keys[k.Value], f.vals[k.Value] = k, v
	}
	s.merge(f, merged, what, known, 0)
	return f
}

// merge adds the fields of YAML merge values (`<<: *anchor` or `<<: [*a, *b]`) that f does not
// set itself; earlier sources win, as in YAML.
func (s *source) merge(f *fieldSet, values []*yaml.Node, what string, known []string, depth int) {
	for _, v := range values {
		v = resolveAlias(v)
		switch {
		case depth > 8:
			s.errorf(v, "%s: merge keys nested too deep", what)
			return
		case v.Kind == yaml.SequenceNode:
			s.merge(f, v.Content, what, known, depth+1)
			continue
		case v.Kind != yaml.MappingNode:
			s.errorf(v, "%s: << must merge a mapping, got %s", what, kindName(v))
			continue
		}
		inner := s.fields(v, what, known)
		if inner == nil {
			continue
		}
		for key, val := range inner.vals {
			if _, set := f.vals[key]; !set {
				f.keys[key], f.vals[key] = inner.keys[key], val
			}
		}
	}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// scalar returns the text of a scalar node; ok is false (error recorded) for anything else,
// including null.
func (s *source) scalar(n *yaml.Node, field string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		s.errorf(n, "%s must be a value, got %s", field, kindName(n))
		return "", false
	}
	return n.Value, true
}

// nonEmpty is scalar that also refuses an empty or blank string.
func (s *source) nonEmpty(n *yaml.Node, field string) (string, bool) {
	v, ok := s.scalar(n, field)
	if ok && strings.TrimSpace(v) == "" {
		s.errorf(n, "%s is empty", field)
		return "", false
	}
	return v, ok
}

// intField reads a non-negative integer.
func (s *source) intField(n *yaml.Node, field string) (int, bool) {
	v, ok := s.scalar(n, field)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		s.errorf(n, "%s must be a non-negative integer, got %q", field, v)
		return 0, false
	}
	return i, true
}

// parseDuration reads a Go duration ("90m", "2h30m") or a number of days ("3d").
func parseDuration(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n >= 0 && n < 100000 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(v)
}

// durationField reads a positive duration.
func (s *source) durationField(n *yaml.Node, field string) (time.Duration, bool) {
	v, ok := s.scalar(n, field)
	if !ok {
		return 0, false
	}
	d, err := parseDuration(v)
	if err != nil || d <= 0 {
		s.errorf(n, "%s: invalid duration %q (want e.g. 90s, 15m, 4h, 3d)", field, v)
		return 0, false
	}
	return d, true
}

// location reads an IANA timezone name.
func (s *source) location(n *yaml.Node, field string) (*time.Location, bool) {
	v, ok := s.nonEmpty(n, field)
	if !ok {
		return nil, false
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		s.errorf(n, "%s: unknown timezone %q", field, v)
		return nil, false
	}
	return loc, true
}

// clock reads "HH:MM".
func (s *source) clock(n *yaml.Node, field string) (int, bool) {
	v, ok := s.scalar(n, field)
	if !ok {
		return 0, false
	}
	m, err := parseClock(v)
	if err != nil {
		s.errorf(n, "%s: %v", field, err)
		return 0, false
	}
	return m, true
}

// value decodes a constant (vars) into plain Go values: string, int, float64, bool, nil,
// time.Time, []any, map[string]any.
func (s *source) value(n *yaml.Node, field string) (any, bool) {
	var v any
	if err := n.Decode(&v); err != nil {
		s.wrap(n, field, err)
		return nil, false
	}
	return v, true
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// name reads a rule or sweep name: it becomes part of message keys and slots
// ("<rule>:<key>", "<rule>/<entity>"), so ':' '/' and spaces are refused.
func (s *source) ruleName(n *yaml.Node) (string, bool) {
	v, ok := s.nonEmpty(n, "name")
	if !ok {
		return "", false
	}
	if !namePattern.MatchString(v) || len(v) > 100 {
		s.errorf(n, "name %q: use letters, digits, '_', '-' and '.' (at most 100)", v)
		return "", false
	}
	return v, true
}

// tablePattern reads "schema.table" with optional '*' wildcards and compiles it.
func (s *source) tablePattern(n *yaml.Node) (string, *regexp.Regexp, bool) {
	v, ok := s.nonEmpty(n, "table")
	if !ok {
		return "", nil, false
	}
	schema, table, found := strings.Cut(v, ".")
	if !found || schema == "" || table == "" || strings.Contains(table, ".") || strings.ContainsAny(v, " \t`") {
		s.errorf(n, "table %q: want schema.table ('*' allowed, e.g. lending.* )", v)
		return "", nil, false
	}
	if !strings.Contains(v, "*") {
		return v, nil, true
	}
	re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(v), `\*`, `.*`) + "$")
	return v, re, true
}

// sorted returns a sorted copy of list, for messages.
func sorted(list []string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}
