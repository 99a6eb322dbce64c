package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleRules loads configs/rules and runs configs/fixtures/rules_test.yaml: the example
// rules the demo runs must load and do what their fixtures say.
func TestExampleRules(t *testing.T) {
	set, err := LoadDir("../configs/rules", Options{Channels: []string{"sms", "email"}})
	if err != nil {
		t.Fatalf("example rules: %v", err)
	}
	results, err := RunFixtures(set, "../configs/fixtures/rules_test.yaml")
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	if len(results) < 10 {
		t.Fatalf("only %d fixture cases", len(results))
	}
	used := map[string]bool{}
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("%s:%d %s:\n  %s", r.File, r.Line, r.Name, strings.Join(r.Failures, "\n  "))
		}
		for _, e := range r.Effects {
			used[e.Rule.Name] = true
		}
	}
	for _, r := range set.Rules {
		if !used[r.Name] {
			t.Errorf("rule %s has no fixture", r.Name)
		}
	}
	for _, sw := range set.Sweeps {
		if !used[sw.Name] {
			t.Errorf("sweep %s has no fixture", sw.Name)
		}
	}
}

func TestFixtureFailuresAreReported(t *testing.T) {
	set := mustParse(t, contractRule)
	path := filepath.Join(t.TempDir(), "f.yaml")
	writeFile(t, path, `cases:
  - name: wrong text and an unexpected effect
    table: lending.contracts
    op: insert
    new: {id: 7, status: active, amount: !decimal 1500.00, phone: "0170 1234567", name: Ann}
    expect:
      - {rule: contract-activated, key: "contract-activated:7", text: "Hello Bob"}
  - name: nothing expected
    table: lending.contracts
    op: insert
    new: {id: 8, status: active, amount: !decimal 1500.00, phone: "0170 1234567", name: Ann}
    expect: []
`)
	results, err := RunFixtures(set, path)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{`expect line 7: text: got "Hello Ann", want "Hello Bob"`},
		{`unexpected effect: send contract-activated key="contract-activated:8" channel=sms to=+491701234567`},
	}
	for i, r := range results {
		if strings.Join(r.Failures, "|") != strings.Join(want[i], "|") {
			t.Errorf("case %d failures:\n got %q\nwant %q", i, r.Failures, want[i])
		}
	}
}

func TestFixtureFileErrorsArePositioned(t *testing.T) {
	set := mustParse(t, contractRule)
	path := filepath.Join(t.TempDir(), "f.yaml")
	writeFile(t, path, `cases:
  - name: typo
    tabel: lending.contracts
    op: insert
    expect: []
  - name: unknown rule
    table: lending.contracts
    op: upsert
    new: {amount: !decimal abc}
    expect:
      - {rule: nope}
`)
	_, err := RunFixtures(set, path)
	var got []string
	for _, e := range Errors(err) {
		got = append(got, strings.TrimPrefix(e.Error(), path))
	}
	want := []string{
		`:2:5: fixture case: want table and op (or sweep)`,
		`:3:5: fixture case: unknown field "tabel"`,
		`:8:9: op: unknown op "upsert"`,
		`:9:19: !decimal "abc"`,
		`:11:16: expect: no rule named "nope"`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: got %s, want %s...", i, got[i], want[i])
		}
	}
	if !errors.Is(err, ErrFixture) {
		t.Errorf("errors.Is(err, ErrFixture) = false")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
