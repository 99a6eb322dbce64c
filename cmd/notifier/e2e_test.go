package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"notifier/state"
)

// The contracts table and rule most end-to-end tests use.
var contractsDDL = []string{`CREATE TABLE {db}.contracts (
	id BIGINT PRIMARY KEY,
	phone VARCHAR(20) NOT NULL,
	status VARCHAR(16) NOT NULL,
	amount DECIMAL(12,2) NOT NULL,
	name VARCHAR(50) NULL
)`}

const activatedRule = `
rules:
  - name: activated
    table: {db}.contracts
    on: [insert, update]
    when: became("status", "active")
    key: string(new.id)
    to: new.phone
    channel: sms
    template: "Hello {{ .new.name }}, contract {{ .new.id }} is active ({{ money .new.amount \"EUR\" }})."
`

func insertContract(id int, status, name string) string {
	return fmt.Sprintf("INSERT INTO {db}.contracts VALUES (%d, '+49151000%05d', '%s', %d.50, '%s')", id, id, status, id*100, name)
}

// sentinel inserts an active contract and waits until its SMS arrived: every change made
// before it on the primary has then been read, evaluated and committed (one ordered stream).
func (e *env) sentinel(id int) {
	e.t.Helper()
	e.exec(insertContract(id, "active", "Sentinel"))
	key := fmt.Sprintf("activated:%d", id)
	waitFor(e.t, "the sentinel SMS "+key, 60*time.Second, func() bool { return e.gw.counts()[key] > 0 })
}

func sortedKeys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

func TestChangesOnThePrimaryProduceExactlyTheExpectedMessages(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	e.writeConfig()
	e.seedCheckpoint()
	svc := e.start()

	e.exec(
		insertContract(1, "active", "Ann"),                         // match: inserted active
		insertContract(2, "draft", "Bob"),                          // no match
		"UPDATE {db}.contracts SET status = 'active' WHERE id = 2", // match: became active
		"UPDATE {db}.contracts SET name = 'Annie' WHERE id = 1",    // no match: already active
		insertContract(3, "pending", "Cid"),                        // no match
		"DELETE FROM {db}.contracts WHERE id = 3",                  // no match
	)
	e.sentinel(99)
	if err := svc.stop(); err != nil {
		t.Fatalf("service stop: %v", err)
	}

	counts := e.gw.counts()
	want := []string{"activated:1", "activated:2", "activated:99"}
	if got := sortedKeys(counts); !slices.Equal(got, want) {
		t.Fatalf("provider received keys %v, want %v", got, want)
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s received %d times", k, n)
		}
	}
	texts := map[string]string{}
	for _, sms := range e.gw.ledger() {
		texts[sms.Key] = sms.To + " " + sms.Text
	}
	if got := texts["activated:2"]; got != "+4915100000002 Hello Bob, contract 2 is active (€200.50)." {
		t.Errorf("activated:2 = %q", got)
	}
	if got := texts["activated:1"]; got != "+4915100000001 Hello Ann, contract 1 is active (€100.50)." {
		t.Errorf("activated:1 = %q", got)
	}

	st := e.openStore()
	msgs := messagesByKey(t, st)
	if got := slices.Sorted(maps.Keys(msgs)); !slices.Equal(got, want) {
		t.Fatalf("store holds %v, want %v", got, want)
	}
	for k, m := range msgs {
		if m.Status != state.StatusSent {
			t.Errorf("%s is %s in the store, want sent", k, m.Status)
		}
	}
	if cp, ok, _ := st.Checkpoint(); !ok || !strings.HasPrefix(cp.Position, "gtid:") {
		t.Errorf("checkpoint = %+v, want a GTID position", cp)
	}
}
