// Package admintest builds a state store with one message in every state, for the tests of the
// admin API and of the operator CLI. It is test support: nothing in the service imports it.
package admintest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"notifier/state"
)

// T0 is the fixture's clock: the store's Now and every time in it.
var T0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// Recipients used by the fixture; tests assert they never appear in masked output.
const (
	Phone1 = "+4917612345601"
	Phone2 = "+4917612345602"
	Mail1  = "anna@example.com"
	Mail2  = "ben@example.com"
)

// Checkpoint is the fixture's stored checkpoint.
var Checkpoint = state.Checkpoint{Flavor: "mariadb", Position: "gtid:0-1-42", CommitTime: T0.Add(-3 * time.Second)}

// Open opens a real store in a temporary directory with the clock fixed at T0 (closed by
// t.Cleanup) and fills it with Populate. It returns the store and its directory.
func Open(t testing.TB) (*state.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := state.Open(state.Options{Dir: dir, NoSync: true, Now: func() time.Time { return T0 }})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := Populate(context.Background(), st); err != nil {
		t.Fatalf("populate store: %v", err)
	}
	return st, dir
}

func data(id int, to string) []byte {
	return fmt.Appendf(nil, `{"new":{"id":%d,"contact":%q},"op":"insert","table":"app.contracts","to":%q}`, id, to, to)
}

func msg(key, rule, channel, to, text string, id int, due time.Time) *state.Message {
	return &state.Message{
		Key: key, Rule: rule, Channel: channel, To: to, Text: text, Data: data(id, to),
		Status: state.StatusReady, CreatedAt: T0.Add(-time.Hour), DueAt: due,
		Origin: "gtid:0-1-40",
	}
}

// Populate writes the fixture (all at T0):
//
//	reminder:1001   scheduled  due T0+22h  (slot repayment-reminder/1001)
//	reminder:1002   scheduled  due T0+2h   (slot repayment-reminder/1002)
//	reminder:1003   cancelled  by rule     (slot repayment-reminder/1003)
//	sms:3001        uncertain  crash during send
//	sms:3002        ready      due T0
//	sms:3003        held       (blast-radius guard)
//	welcome:2001    sent       provider id prov-1
//	welcome:2002    retry      due T0+5m, 503
//	welcome:2003    dead       550 mailbox unavailable
//	coupon:4001     dead       template failed
//
// and the checkpoint gtid:0-1-42.
func Populate(ctx context.Context, st *state.Store) error {
	rem := func(key string, id int, due time.Time) state.Schedule {
		m := msg(key, "repayment-reminder", "sms", Phone1, "Your repayment of 120.50 EUR is due tomorrow.", id, due)
		m.Status, m.Slot = state.StatusScheduled, fmt.Sprintf("repayment-reminder/%d", id)
		return state.Schedule{Slot: m.Slot, Message: m}
	}
	// Delivered ones first: claim them all, then give each its outcome.
	_, err := st.Apply(ctx, &state.Batch{Messages: []*state.Message{
		msg("welcome:2001", "welcome", "email", Mail1, "Welcome, Anna!", 2001, T0),
		msg("welcome:2002", "welcome", "email", Mail2, "Welcome, Ben!", 2002, T0),
		msg("welcome:2003", "welcome", "email", "anna2@example.com", "Welcome again!", 2003, T0),
		msg("sms:3001", "activation", "sms", Phone2, "Your contract is active.", 3001, T0),
	}})
	if err != nil {
		return fmt.Errorf("apply delivered: %w", err)
	}
	claimed, err := st.Claim(ctx, T0, 10)
	if err != nil || len(claimed) != 4 {
		return fmt.Errorf("claim: %d claimed, %v", len(claimed), err)
	}
	err = st.Complete(ctx, []state.Outcome{
		{Key: "welcome:2001", Result: state.ResultSent, At: T0, ProviderID: "prov-1"},
		{Key: "welcome:2002", Result: state.ResultRetry, At: T0, RetryAt: T0.Add(5 * time.Minute), Error: "503 Service Unavailable", Reason: "server_error"},
		{Key: "welcome:2003", Result: state.ResultDead, At: T0, Error: "550 mailbox unavailable: anna2@example.com", Reason: "rejected"},
	})
	if err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	// sms:3001 stays in sending: settle it as after a crash on a non-idempotent channel.
	if _, _, err := st.Settle(ctx, func(string) bool { return false }); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	held := msg("sms:3003", "activation", "sms", Phone2, "Your contract is active.", 3003, T0)
	held.Status = state.StatusHeld
	dead := msg("coupon:4001", "coupon", "sms", Phone1, "", 4001, T0)
	dead.Status, dead.Reason, dead.LastError = state.StatusDead, "template", "template coupon: text: missing field new.code"
	cp := Checkpoint
	_, err = st.Apply(ctx, &state.Batch{
		Checkpoint: &cp,
		Messages:   []*state.Message{msg("sms:3002", "activation", "sms", Phone2, "Your contract is active.", 3002, T0), held, dead},
		Schedules:  []state.Schedule{rem("reminder:1001", 1001, T0.Add(22*time.Hour)), rem("reminder:1002", 1002, T0.Add(2*time.Hour)), rem("reminder:1003", 1003, T0.Add(3*time.Hour))},
	})
	if err != nil {
		return fmt.Errorf("apply pending: %w", err)
	}
	if _, err := st.Apply(ctx, &state.Batch{Cancels: []string{"repayment-reminder/1003"}}); err != nil {
		return fmt.Errorf("apply cancel: %w", err)
	}
	return nil
}
