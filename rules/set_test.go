package rules

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"notifier/cdc"
)

func TestLoadDirReportsProblemsAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	rule := "rules:\n  - name: %s\n    table: s.t\n    on: insert\n    to: new.phone\n    channel: %s\n    template: hi\n"
	writeFile(t, filepath.Join(dir, "a.yaml"), fmt.Sprintf(rule, "dup", "sms"))
	writeFile(t, filepath.Join(dir, "b.yml"), fmt.Sprintf(rule, "dup", "fax"))
	writeFile(t, filepath.Join(dir, "notes.txt"), "not a rule file")
	_, err := LoadDir(dir, Options{Channels: []string{"sms"}})
	var got []string
	for _, e := range Errors(err) {
		got = append(got, strings.TrimPrefix(e.Error(), dir+"/"))
	}
	want := []string{
		`b.yml:2:11: duplicate name "dup" (first defined at ` + dir + `/a.yaml:2:11)`,
		`b.yml:6:14: unknown channel "fax" (configured: sms)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadDirRefusesAnEmptyOrMissingDirectory(t *testing.T) {
	if _, err := LoadDir(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "no *.yaml or *.yml files") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := LoadDir(filepath.Join(t.TempDir(), "nope"), Options{}); err == nil {
		t.Error("missing dir: no error")
	}
	if _, err := LoadDir(t.TempDir(), Options{DefaultTimezone: "Nowhere/Town"}); err == nil || !strings.Contains(err.Error(), "default timezone") {
		t.Errorf("bad option: %v", err)
	}
}

func TestHashCoversRuleAndTemplateFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "rules:\n  - name: a\n    table: s.t\n    on: insert\n    to: new.phone\n    channel: sms\n    template_file: a.tmpl\n")
	writeFile(t, filepath.Join(dir, "a.tmpl"), "Hello {{.new.name}}")
	load := func() string {
		set, err := LoadDir(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return set.Hash
	}
	h1, h2 := load(), load()
	writeFile(t, filepath.Join(dir, "a.tmpl"), "Hi {{.new.name}}")
	h3 := load()
	if h1 != h2 || h1 == h3 || len(h1) != 64 {
		t.Errorf("hashes %s %s %s: want stable and changed by the template", h1, h2, h3)
	}
}

const mixedRules = `
defaults: {channel: sms, timezone: UTC}
rules:
  - name: any-lending
    table: lending.*
    on: [insert]
    key: table + "/" + new.id
    to: new.phone
    template: t
  - name: contracts
    table: lending.contracts
    on: [insert]
    key: new.id
    to: new.phone
    template: t
  - name: digest
    table: crm.requests
    on: [insert]
    key: new.id
    to: new.supplier_email
    channel: email
    subject: s
    digest: {group_by: new.supplier_id, every: 4h, max_items: 2}
    template: '{{range .items}}{{.new.id}} {{end}}({{.count}}, {{.more}} more)'
  - name: follow-up
    table: crm.requests
    on: [update]
    when: changed("answered_at") && new.answered_at != nil
    at: addDays(new.answered_at, 3)
    entity: '"req-" + new.id'
    recheck: new.closed == false
    to: new.customer_email
    channel: email
    subject: s
    template: t
sweeps:
  - name: wish
    schedule: "0 9 24 12 *"
    timezone: Europe/Berlin
    query: SELECT id, phone FROM crm.customers
    key_column: id
    when: new.phone != nil
    to: new.phone
    template: t
`

func TestTablesAndPatternRules(t *testing.T) {
	set := mustParse(t, mixedRules)
	if got := strings.Join(set.Tables(), ","); got != "crm.requests,lending.*,lending.contracts" {
		t.Errorf("Tables() = %s", got)
	}
	ch := &cdc.Change{Schema: "lending", Table: "contracts", Op: cdc.OpInsert, After: cdc.Row{"id": int64(1), "phone": "p"}}
	var keys []string
	for _, e := range set.Evaluate(ch, meta("gtid:0-1-1"), nil) {
		keys = append(keys, e.Key)
	}
	if got := strings.Join(keys, " "); got != "any-lending:lending.contracts/1 contracts:1" {
		t.Errorf("keys = %s (pattern and exact rules, in file order)", got)
	}
	ch.Table = "installments"
	if effs := set.Evaluate(ch, meta("gtid:0-1-2"), nil); len(effs) != 1 || effs[0].Key != "any-lending:lending.installments/1" {
		t.Errorf("pattern on another table: %+v", effs)
	}
}

func TestDigestEffectAndData(t *testing.T) {
	set := mustParse(t, mixedRules)
	ch := &cdc.Change{Schema: "crm", Table: "requests", Op: cdc.OpInsert,
		After: cdc.Row{"id": int64(501), "supplier_id": int64(9), "supplier_email": "s@example.com"}}
	effs := set.Evaluate(ch, Meta{Position: "p", CommitTime: time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)}, nil)
	if len(effs) != 1 {
		t.Fatalf("got %+v", effs)
	}
	e := effs[0]
	if e.Kind != EffectDigest || e.Group != "9" || !e.Window.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) ||
		e.Key != "digest:501" || e.To != "s@example.com" || e.Channel != "email" {
		t.Errorf("got %s group=%q window=%s key=%q to=%q channel=%q", e.Kind, e.Group, e.Window, e.Key, e.To, e.Channel)
	}
	items := []map[string]any{e.Data, e.Data, e.Data}
	out, err := e.Rule.Template.Render(e.Rule.DigestData(e.Group, e.To, e.Window, items, 3))
	if err != nil || out.Text != "501 501 (3, 1 more)" {
		t.Errorf("digest text %q, %v", out.Text, err)
	}
}

func TestReminderWithEntityAndRecheck(t *testing.T) {
	set := mustParse(t, mixedRules)
	answered := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	old := cdc.Row{"id": int64(5), "answered_at": nil, "closed": false, "customer_email": "c@example.com"}
	upd := cdc.Row{"id": int64(5), "answered_at": answered, "closed": false, "customer_email": "c@example.com"}
	ch := &cdc.Change{Schema: "crm", Table: "requests", Op: cdc.OpUpdate, Before: old, After: upd}
	effs := set.Evaluate(ch, meta("p"), nil)
	if len(effs) != 1 || effs[0].Kind != EffectSchedule || effs[0].Slot != "follow-up/req-5" ||
		effs[0].Key != "follow-up:req-5@2026-03-04T10:00:00Z" || !effs[0].Rule.Scheduled() {
		t.Fatalf("got %+v", effs)
	}
	ok, err := set.Recheck("follow-up", upd, answered.AddDate(0, 0, 3))
	if err != nil || !ok {
		t.Errorf("recheck open: %v, %v", ok, err)
	}
	closed := cdc.Row{"id": int64(5), "closed": true}
	if ok, err := set.Recheck("follow-up", closed, answered); err != nil || ok {
		t.Errorf("recheck closed: %v, %v", ok, err)
	}
	if ok, err := set.Recheck("contracts", closed, answered); err != nil || !ok {
		t.Errorf("rule without recheck: %v, %v", ok, err)
	}
	if _, err := set.Recheck("nope", closed, answered); err == nil {
		t.Error("unknown rule: no error")
	}
	// A second update that keeps answered_at: `when` is false, the slot is cancelled.
	ch.Before = upd
	effs = set.Evaluate(ch, meta("p2"), nil)
	if len(effs) != 1 || effs[0].Kind != EffectCancel || effs[0].Slot != "follow-up/req-5" {
		t.Errorf("got %+v", effs)
	}
}

func TestSweep(t *testing.T) {
	set := mustParse(t, mixedRules)
	if len(set.Sweeps) != 1 {
		t.Fatalf("sweeps: %d", len(set.Sweeps))
	}
	sw := set.Sweeps[0]
	next := sw.Next(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 12, 24, 8, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("Next = %s, want %s (09:00 Berlin)", next, want)
	}
	ev := set.NewEvaluator()
	effs := ev.EvaluateSweep(sw, cdc.Row{"id": int64(3), "phone": "+491701234567"}, next, nil)
	if len(effs) != 1 || effs[0].Key != "wish:2026-12-24T08:00:00Z:3" || effs[0].Data["op"] != "sweep" {
		t.Errorf("got %+v", effs)
	}
	if effs := set.EvaluateSweep(sw, cdc.Row{"id": int64(4), "phone": nil}, next, nil); len(effs) != 0 {
		t.Errorf("when false: %+v", effs)
	}
	if effs := ev.EvaluateSweep(sw, cdc.Row{"phone": "+491701234567"}, next, nil); len(effs) != 1 || effs[0].Kind != EffectFailed {
		t.Errorf("no key column: %+v", effs)
	}
}

// TestEvaluateConcurrently: a Set is shared; Set.Evaluate borrows an Evaluator per call.
// Run with -race.
func TestEvaluateConcurrently(t *testing.T) {
	set := mustParse(t, contractRule)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ch := &cdc.Change{Schema: "lending", Table: "contracts", Op: cdc.OpInsert, After: contract("active", "1500.00")}
				ch.After["id"] = int64(g*1000 + i)
				effs := set.Evaluate(ch, meta("p"), nil)
				if len(effs) != 1 || effs[0].Key != fmt.Sprintf("contract-activated:%d", g*1000+i) {
					t.Errorf("got %+v", effs)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestDescribeEffectMasksTheRecipient(t *testing.T) {
	e := Effect{Kind: EffectSchedule, Rule: &Rule{Name: "r"}, Key: "r:1", Channel: "sms", To: "+491701234567",
		At: time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC), Slot: "r/1"}
	got := DescribeEffect(&e)
	if strings.Contains(got, "1701234567") || !strings.HasPrefix(got, `schedule r key="r:1" channel=sms to=+49`) ||
		!strings.HasSuffix(got, " at=2026-03-28T08:00:00Z slot=r/1") {
		t.Errorf("DescribeEffect = %s", got)
	}
}
