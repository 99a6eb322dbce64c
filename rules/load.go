package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"notifier/cdc"
)

// Set is a loaded, compiled set of rules and sweeps. It is immutable and safe to share between
// goroutines; each goroutine evaluates through its own Evaluator (Set.NewEvaluator), or through
// Set.Evaluate, which borrows one from a pool.
type Set struct {
	Rules  []*Rule
	Sweeps []*Sweep
	// Hash is the hex sha256 over the names and contents of the rule files and the template
	// files they use, in name order: equal hashes mean equal rules (reload skips, metrics,
	// `status`).
	Hash string
	// Files are the rule files read, in load order.
	Files []string

	exact    map[tableKey][]*Rule
	patterns []*Rule
	pool     sync.Pool
}

type tableKey struct{ schema, table string }

// Tables returns the distinct table patterns of the rules ("schema.table", '*' allowed), sorted:
// the cdc Include list.
func (s *Set) Tables() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range s.Rules {
		if !seen[r.Table] {
			seen[r.Table] = true
			out = append(out, r.Table)
		}
	}
	sort.Strings(out)
	return out
}

// Rule returns the rule or sweep rule called name, or nil.
func (s *Set) Rule(name string) *Rule {
	for _, r := range s.Rules {
		if r.Name == name {
			return r
		}
	}
	for _, sw := range s.Sweeps {
		if sw.Name == name {
			return sw.Rule
		}
	}
	return nil
}

// ruleFile is one rule file to load.
type ruleFile struct {
	name string
	data []byte
}

// readFunc reads a template file named by a rule file.
type readFunc func(path string) ([]byte, error)

// LoadDir loads every *.yaml and *.yml file in dir (not recursive) into one Set. It returns all
// problems at once, each an *Error "file:line:col: msg", joined with errors.Join; on error the
// Set is nil (invariant 5: the caller keeps its old rules).
func LoadDir(dir string, opts Options) (*Set, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rules directory %q: %w", dir, err)
	}
	var files []ruleFile
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		name := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("rule file %q: %w", name, err)
		}
		files = append(files, ruleFile{name: name, data: data})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("rules directory %q: no *.yaml or *.yml files", dir)
	}
	return load(files, opts, os.ReadFile)
}

// Parse loads one rule file from memory; name is used in messages and to resolve template_file
// paths (relative to its directory).
func Parse(name string, data []byte, opts Options) (*Set, error) {
	return load([]ruleFile{{name: name, data: data}}, opts, os.ReadFile)
}

func load(files []ruleFile, opts Options, read readFunc) (*Set, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var errs []error
	l := &loader{opts: opts, read: read, names: map[string]string{}, hash: sha256.New(), set: &Set{}}
	for _, f := range files {
		l.file(&source{name: f.name, data: f.data, errs: &errs})
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	set := l.set
	set.Hash = hex.EncodeToString(l.hash.Sum(nil))
	set.index()
	set.pool.New = func() any { return set.NewEvaluator() }
	return set, nil
}

// validate checks the options.
func (o Options) validate() error {
	if o.DefaultTimezone != "" {
		if _, err := time.LoadLocation(o.DefaultTimezone); err != nil {
			return fmt.Errorf("rules options: default timezone: %w", err)
		}
	}
	if o.DefaultRegion != "" && !validRegion(o.DefaultRegion) {
		return fmt.Errorf("rules options: unknown default region %q", o.DefaultRegion)
	}
	return nil
}

func (s *Set) index() {
	s.exact = map[tableKey][]*Rule{}
	for i, r := range s.Rules {
		r.order = i
		if r.tableRe != nil {
			s.patterns = append(s.patterns, r)
			continue
		}
		schema, table, _ := strings.Cut(r.Table, ".")
		k := tableKey{schema, table}
		s.exact[k] = append(s.exact[k], r)
	}
}

// loader holds what is shared across the files of one load.
type loader struct {
	opts  Options
	read  readFunc
	names map[string]string // rule/sweep name → "file:line:col" of its first definition
	hash  interface {
		io.Writer
		Sum([]byte) []byte
	}
	set *Set
}

// defaults are the file-level defaults, each with the node it came from (for positions).
type defaults struct {
	loc          *time.Location
	locale       string
	region       string
	channel      string
	channelNode  *yaml.Node
	maxPerMinute int
	maxSegments  int
}

var (
	fileFields     = []string{"defaults", "rules", "sweeps", "x-*"}
	defaultsFields = []string{"timezone", "locale", "region", "channel", "max_per_minute", "max_segments"}
)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (l *loader) file(s *source) {
	fmt.Fprintf(l.hash, "%s\x00%d\x00", filepath.Base(s.name), len(s.data))
	l.hash.Write(s.data)
	l.set.Files = append(l.set.Files, s.name)

	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(s.data)))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return // an empty file is an empty rule set
		}
		line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		s.errAt(line, 1, "yaml: "+msg, err)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		s.errorf(&extra, "only one YAML document per rule file")
		return
	} else if !errors.Is(err, io.EOF) {
		// The second document is malformed; yaml reports it like the first.
		s.errAt(1, 1, "yaml: "+strings.TrimPrefix(err.Error(), "yaml: "), err)
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	top := s.fields(doc.Content[0], "rule file", fileFields)
	if top == nil {
		return
	}
	d := l.defaults(s, top.get("defaults"))
	if n := top.get("rules"); n != nil {
		s.list(n, "rules", func(item *yaml.Node) {
			if r, _ := l.rule(s, item, d, nil); r != nil {
				l.set.Rules = append(l.set.Rules, r)
			}
		})
	}
	if n := top.get("sweeps"); n != nil {
		s.list(n, "sweeps", func(item *yaml.Node) {
			if sw := l.sweep(s, item, d); sw != nil {
				l.set.Sweeps = append(l.set.Sweeps, sw)
			}
		})
	}
}

// list calls fn for each item of a sequence node (a null value is an empty list).
func (s *source) list(n *yaml.Node, what string, fn func(*yaml.Node)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		s.errorf(n, "%s must be a list, got %s", what, kindName(n))
		return
	}
	for _, item := range n.Content {
		fn(resolveAlias(item))
	}
}

func (l *loader) defaults(s *source, n *yaml.Node) *defaults {
	d := &defaults{loc: time.UTC, locale: "en", region: l.opts.DefaultRegion}
	if l.opts.DefaultTimezone != "" {
		d.loc, _ = time.LoadLocation(l.opts.DefaultTimezone)
	}
	if n == nil {
		return d
	}
	f := s.fields(n, "defaults", defaultsFields)
	if f == nil {
		return d
	}
	if v := f.get("timezone"); v != nil {
		if loc, ok := s.location(v, "timezone"); ok {
			d.loc = loc
		}
	}
	if v := f.get("locale"); v != nil {
		d.locale, _ = s.nonEmpty(v, "locale")
	}
	if v := f.get("region"); v != nil {
		d.region, _ = s.region(v)
	}
	if v := f.get("channel"); v != nil {
		d.channel, _ = s.nonEmpty(v, "channel")
		d.channelNode = v
	}
	if v := f.get("max_per_minute"); v != nil {
		d.maxPerMinute, _ = s.intField(v, "max_per_minute")
	}
	if v := f.get("max_segments"); v != nil {
		d.maxSegments, _ = s.intField(v, "max_segments")
	}
	return d
}

func (s *source) region(n *yaml.Node) (string, bool) {
	v, ok := s.nonEmpty(n, "region")
	if !ok {
		return "", false
	}
	if !validRegion(v) {
		s.errorf(n, "region %q: unknown (want an ISO 3166 code such as DE, US, GB)", v)
		return "", false
	}
	return strings.ToUpper(v), true
}

// claimName records a rule or sweep name, refusing duplicates across all files.
func (l *loader) claimName(s *source, n *yaml.Node, name string) bool {
	if first, dup := l.names[name]; dup {
		s.errorf(n, "duplicate name %q (first defined at %s)", name, first)
		return false
	}
	l.names[name] = fmt.Sprintf("%s:%d:%d", s.name, n.Line, n.Column)
	return true
}

// parseOps reads `on`: a list (or one) of insert, update, delete, snapshot.
func (s *source) parseOps(n *yaml.Node) (uint8, []cdc.Op) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			s.errorf(n, "on: empty list (want insert, update, delete, snapshot)")
		}
	}
	var bits uint8
	var ops []cdc.Op
	for _, it := range items {
		v, ok := s.scalar(it, "on")
		if !ok {
			continue
		}
		op, err := cdc.ParseOp(v)
		if err != nil {
			s.errorf(it, "on: %v", err)
			continue
		}
		if bits&(1<<op) == 0 {
			ops = append(ops, op)
		}
		bits |= 1 << op
	}
	return bits, ops
}

// sortErrors orders positioned errors by file, line and column (stable: equal positions keep
// the order they were found in).
func sortErrors(errs []error) {
	pos := func(e error) (string, int, int) {
		var pe *Error
		if errors.As(e, &pe) {
			return pe.File, pe.Line, pe.Col
		}
		return "", 0, 0
	}
	sort.SliceStable(errs, func(i, j int) bool {
		fi, li, ci := pos(errs[i])
		fj, lj, cj := pos(errs[j])
		if fi != fj {
			return fi < fj
		}
		if li != lj {
			return li < lj
		}
		return ci < cj
	})
}
