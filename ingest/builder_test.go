package ingest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"notifier/rules"
	"notifier/state"
)

// The effects of every row source (binlog, sweep, snapshot) become store operations through
// one Builder: rendered messages, dead messages for failures, and reminder effects that apply
// in the order they were added although state.Apply applies schedules before cancels: a
// cancel that a later schedule of its slot follows is left out, also across the builders of
// merged transactions.
func TestBuilderAppliesSlotEffectsInOrderAndBuildsMessages(t *testing.T) {
	set := loadRules(t, `
rules:
  - name: r
    table: app.contracts
    on: insert
    entity: string(new.id)
    at: commit_time + duration("1h")
    to: new.phone
    channel: sms
    template: "Hi {{ .new.nick }}"
`)
	r := set.Rules[0]
	at := t0.Add(time.Hour)
	data := func(nick any) map[string]any { return map[string]any{"new": map[string]any{"nick": nick}} }
	sched := func(slot, key string) rules.Effect {
		return rules.Effect{Kind: rules.EffectSchedule, Rule: r, Key: key, To: "+4915112345678", Channel: "sms",
			At: at, Slot: slot, Data: data("A")}
	}
	cancel := func(slot string) rules.Effect { return rules.Effect{Kind: rules.EffectCancel, Rule: r, Slot: slot} }
	src := &Source{Origin: "gtid:0-1-7;file:mysql-bin.000001:400", KeyOrigin: "gtid:0-1-7", RowIndex: 3, Version: t0, Now: t0}

	var first, second Builder
	for _, eff := range []rules.Effect{
		sched("r/1", "r:1@a"), cancel("r/1"), sched("r/1", "r:1@b"), // 1: cancelled, then scheduled again
		cancel("r/2"), // 2: scheduled here, cancelled in the next transaction
		sched("r/3", "r:3@a"),
		{Kind: rules.EffectFailed, Rule: r, Err: errors.New("boom")},
		{Kind: rules.EffectSend, Rule: r, Key: "r:nick", To: "+4915112345678", Channel: "sms", Data: data(nil)},
	} {
		first.Add(&eff, src)
	}
	for _, eff := range []rules.Effect{sched("r/2", "r:2@a"), cancel("r/2"), sched("r/4", "r:4@a")} {
		second.Add(&eff, src)
	}
	first.Append(&second)
	if first.Ops() != 10 || first.Messages() != 6 {
		t.Fatalf("ops, messages = %d, %d before Finish, want 10, 6", first.Ops(), first.Messages())
	}
	b, dropped := first.Finish()
	var got []string
	for _, sc := range b.Schedules {
		got = append(got, sc.Slot+"="+sc.Message.Key)
	}
	for _, c := range b.Cancels {
		got = append(got, "cancel "+c)
	}
	for _, m := range b.Messages {
		got = append(got, fmt.Sprintf("%s %s %s", m.Key, m.Status, m.Reason))
	}
	want := "[r/1=r:1@a r/1=r:1@b r/3=r:3@a r/2=r:2@a r/4=r:4@a cancel r/2 r/error/gtid:0-1-7/3 dead rule_error r:nick dead template]"
	if fmt.Sprint(got) != want || dropped != 2 || first.Ops() != 8 {
		t.Fatalf("batch %v, dropped %d, ops %d\nwant  %s, dropped 2, ops 8", got, dropped, first.Ops(), want)
	}
	if m := b.Schedules[1].Message; m.Text != "Hi A" || m.Status != state.StatusScheduled || !m.DueAt.Equal(at) ||
		m.Origin != src.Origin || b.Schedules[1].Version != t0 {
		t.Fatalf("schedule %+v (version %s)", m, b.Schedules[1].Version)
	}
}
