package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"notifier/cdc"
)

// mustParse loads one rule file from text or fails the test.
func mustParse(t testing.TB, text string) *Set {
	t.Helper()
	set, err := Parse("test.yaml", []byte(text), Options{Channels: testChannels})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return set
}

var commit = time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)

func meta(pos string) Meta { return Meta{Position: pos, CommitTime: commit} }

const contractRule = `
defaults: {timezone: Europe/Berlin, region: DE, channel: sms}
rules:
  - name: contract-activated
    table: lending.contracts
    on: [insert, update]
    when: became("status", "active") && new.amount > 1000
    key: new.id
    to: e164(new.phone)
    template: "Hello {{.new.name}}"
`

func contract(status string, amount string) cdc.Row {
	return cdc.Row{"id": int64(7), "status": status, "amount": decimal.RequireFromString(amount),
		"phone": "0170 1234567", "name": "Ann"}
}

func TestEvaluateSendsWhenStatusBecomesActive(t *testing.T) {
	set := mustParse(t, contractRule)
	ch := &cdc.Change{Schema: "lending", Table: "contracts", Op: cdc.OpUpdate,
		Before: contract("draft", "1500.00"), After: contract("active", "1500.00")}
	effs := set.Evaluate(ch, meta("gtid:0-1-5"), nil)
	if len(effs) != 1 {
		t.Fatalf("got %d effects, want 1: %+v", len(effs), effs)
	}
	e := effs[0]
	if e.Kind != EffectSend || e.Key != "contract-activated:7" || e.To != "+491701234567" || e.Channel != "sms" {
		t.Errorf("got %s key=%q to=%q channel=%q", e.Kind, e.Key, e.To, e.Channel)
	}
	if e.Data["key"] != e.Key || e.Data["to"] != e.To || e.Data["op"] != "update" || e.Data["table"] != "lending.contracts" {
		t.Errorf("data = %v", e.Data)
	}

	// Already active before: not "became".
	ch.Before = contract("active", "1500.00")
	if effs := set.Evaluate(ch, meta("gtid:0-1-6"), nil); len(effs) != 0 {
		t.Errorf("active→active: got %+v, want nothing", effs)
	}
	// Amount under the limit (decimal compared with an integer literal).
	ch.Before, ch.After = contract("draft", "999.99"), contract("active", "999.99")
	if effs := set.Evaluate(ch, meta("gtid:0-1-7"), nil); len(effs) != 0 {
		t.Errorf("amount 999.99: got %+v, want nothing", effs)
	}
	// Other tables are not evaluated.
	ch.Table = "contract_history"
	if effs := set.Evaluate(ch, meta("gtid:0-1-8"), nil); len(effs) != 0 {
		t.Errorf("other table: got %+v", effs)
	}
}

func TestEvaluateRowErrorIsAFailedEffectNamingRuleAndRow(t *testing.T) {
	set := mustParse(t, contractRule)
	after := contract("active", "1500.00")
	after["amount"] = nil // NULL amount: `new.amount > 1000` cannot be decided
	ch := &cdc.Change{Schema: "lending", Table: "contracts", Op: cdc.OpInsert, After: after, Index: 3}
	effs := set.Evaluate(ch, meta("gtid:0-1-9"), nil)
	if len(effs) != 1 || effs[0].Kind != EffectFailed {
		t.Fatalf("got %+v, want one failed effect", effs)
	}
	err := effs[0].Err
	want := `rule "contract-activated" (test.yaml:7:52), lending.contracts insert id=7 at gtid:0-1-9#3: when: compare NULL with int: value is NULL`
	if err.Error() != want || !errors.Is(err, ErrNull) {
		t.Errorf("err = %v\nwant %s (errors.Is ErrNull)", err, want)
	}
}

const reminderRule = `
defaults: {timezone: Europe/Berlin, channel: sms}
rules:
  - name: repayment-due
    table: lending.installments
    on: [insert, update, snapshot]
    when: new.paid_at == nil
    at: at_local(new.due_date, -3, "09:00")
    to: new.phone
    template: "due"
`

func TestEvaluateReminderSchedulesAndCancels(t *testing.T) {
	set := mustParse(t, reminderRule)
	due := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC) // a DATE column
	row := cdc.Row{"id": int64(9), "due_date": due, "paid_at": nil, "phone": "+4917012345678"}
	ch := &cdc.Change{Schema: "lending", Table: "installments", Op: cdc.OpInsert, After: row}
	effs := set.Evaluate(ch, meta("gtid:0-1-5"), nil)
	if len(effs) != 1 || effs[0].Kind != EffectSchedule {
		t.Fatalf("got %+v", effs)
	}
	// 3 days before March 31 is March 28, 09:00 Berlin = 08:00 UTC (CET, before the DST switch).
	wantAt := time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC)
	if e := effs[0]; !e.At.Equal(wantAt) || e.Slot != "repayment-due/9" || e.Key != "repayment-due:9@2026-03-28T08:00:00Z" {
		t.Errorf("got at=%s slot=%q key=%q", e.At.UTC(), e.Slot, e.Key)
	}

	paid := cdc.Row{"id": int64(9), "due_date": due, "paid_at": commit, "phone": "+4917012345678"}
	upd := &cdc.Change{Schema: "lending", Table: "installments", Op: cdc.OpUpdate, Before: row, After: paid}
	effs = set.Evaluate(upd, meta("gtid:0-1-6"), nil)
	if len(effs) != 1 || effs[0].Kind != EffectCancel || effs[0].Slot != "repayment-due/9" {
		t.Errorf("paid: got %+v, want cancel of repayment-due/9", effs)
	}

	del := &cdc.Change{Schema: "lending", Table: "installments", Op: cdc.OpDelete, Before: row}
	effs = set.Evaluate(del, meta("gtid:0-1-7"), nil)
	if len(effs) != 1 || effs[0].Kind != EffectCancel || effs[0].Slot != "repayment-due/9" {
		t.Errorf("delete: got %+v, want cancel of repayment-due/9", effs)
	}
}

func TestEvaluateOps(t *testing.T) {
	set := mustParse(t, `
defaults: {channel: sms}
rules:
  - name: deleted
    table: s.t
    on: [delete]
    when: old.status == "active"
    key: old.id
    to: old.phone
    template: bye
  - name: not-bool
    table: s.t
    on: [insert]
    when: new.status
    to: new.phone
    template: x
  - name: remind
    table: s.t
    on: [insert, update, snapshot]
    when: new.status == "active"
    at: new.due
    to: new.phone
    template: x
`)
	due := time.Date(2026, 3, 31, 9, 0, 0, 0, time.UTC)
	row := func(status string) cdc.Row {
		return cdc.Row{"id": int64(1), "status": status, "phone": "+491701234567", "due": due}
	}
	tests := []struct {
		name string
		ch   cdc.Change
		want []string // "kind rule key/slot"
	}{
		{"insert active", cdc.Change{Op: cdc.OpInsert, After: row("active")},
			[]string{`failed not-bool ""`, `schedule remind remind:1@2026-03-31T09:00:00Z`}},
		{"insert draft: no reminder, nothing to cancel", cdc.Change{Op: cdc.OpInsert, After: row("draft")},
			[]string{`failed not-bool ""`}},
		{"snapshot draft cancels", cdc.Change{Op: cdc.OpSnapshot, After: row("draft")},
			[]string{`cancel remind remind/1`}},
		{"delete: old image only; the reminder is cancelled", cdc.Change{Op: cdc.OpDelete, Before: row("active")},
			[]string{`send deleted deleted:1`, `cancel remind remind/1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ch.Schema, tt.ch.Table = "s", "t"
			var got []string
			for _, e := range set.Evaluate(&tt.ch, meta("p"), nil) {
				id := e.Key
				if e.Kind == EffectCancel {
					id = e.Slot
				}
				if e.Kind == EffectFailed {
					id = fmt.Sprintf("%q", e.Key)
					if !strings.Contains(e.Err.Error(), `when: invalid operation: bool(string)`) {
						t.Errorf("error: %v", e.Err)
					}
				}
				got = append(got, fmt.Sprintf("%s %s %s", e.Kind, e.Rule.Name, id))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestFailedRecipientKeepsTheMessageKeyFree(t *testing.T) {
	set := mustParse(t, contractRule)
	after := contract("active", "1500.00")
	after["phone"] = "call me"
	ch := &cdc.Change{Schema: "lending", Table: "contracts", Op: cdc.OpInsert, After: after}
	effs := set.Evaluate(ch, meta("gtid:0-1-9"), nil)
	if len(effs) != 1 || effs[0].Kind != EffectFailed || effs[0].Key != "" {
		t.Fatalf("got %+v", effs)
	}
	want := `rule "contract-activated" (test.yaml:9:9), lending.contracts insert id=7 at gtid:0-1-9#0: ` +
		`to (message contract-activated:7): unexpected character 'c': invalid phone number`
	if got := effs[0].Err.Error(); got != want || !errors.Is(effs[0].Err, ErrPhone) {
		t.Errorf("err = %s\nwant %s", got, want)
	}
}
