package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"notifier/cdc"
)

// FuzzLoad: loading arbitrary bytes never panics, and every problem is a positioned *Error;
// a set that loads evaluates a change without panicking. The seed corpus is in code (the
// example rules, the testdata files and a few edge cases); generated corpora are not committed.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"../configs/rules/*.yaml", "testdata/*.yaml"} {
		files, _ := filepathGlob(glob)
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(data)
			}
		}
	}
	for _, s := range []string{contractRule, reminderRule, mixedRules, "", "rules:", "rules: [1, [2], {a: b}]",
		"rules:\n  - &a {name: x}\n  - *a\n", "rules:\n  - name: \"\\u00e9\"\n    when: \"\\x41 >\"\n",
		"rules:\n  - name: x\n    table: a.b\n    on: insert\n    to: '1'\n    channel: sms\n    template: '{{'\n    when: |\n      \t>\n",
		"defaults: {timezone: Local}\n---\n", "\xff\xfe", "rules:\n- {name: a, table: 'a.*', on: [delete], to: new.x, channel: sms, template: x, at: now(), entity: 1/0}\n"} {
		f.Add([]byte(s))
	}
	noFiles := func(string) ([]byte, error) { return nil, os.ErrNotExist }
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := load([]ruleFile{{name: "fuzz.yaml", data: data}}, Options{Channels: testChannels}, noFiles)
		if err != nil {
			for _, e := range Errors(err) {
				if e.File != "fuzz.yaml" || e.Line < 1 || e.Col < 1 {
					t.Fatalf("unpositioned error %q (%+v)", e.Error(), e)
				}
			}
			return
		}
		var pe *Error
		if errors.As(err, &pe) {
			t.Fatal("set and error")
		}
		row := cdc.Row{"id": int64(1), "x": "a", "phone": "+491701234567"}
		for _, op := range []cdc.Op{cdc.OpInsert, cdc.OpUpdate, cdc.OpDelete, cdc.OpSnapshot} {
			for _, r := range set.Rules {
				schema, table := "a", "b"
				if r.tableRe == nil {
					schema, table = splitTable(r.Table)
				}
				ch := &cdc.Change{Schema: schema, Table: table, Op: op, Before: row, After: row}
				set.Evaluate(ch, Meta{Position: "p", CommitTime: time.Unix(0, 0)}, nil)
			}
		}
	})
}

func splitTable(t string) (string, string) {
	for i := 0; i < len(t); i++ {
		if t[i] == '.' {
			return t[:i], t[i+1:]
		}
	}
	return t, ""
}

func filepathGlob(pattern string) ([]string, error) { return filepath.Glob(pattern) }
