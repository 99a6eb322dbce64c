package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestAReplayOfARescheduleInSeparateGroupCommitsRepeatsNothing: a reminder inserted due in 3 s
// and moved a day later in the same second, with a transaction of exactly one store batch in
// between (so the insert and the move are committed in separate group commits, live and on
// replay). After its old time has passed, a replay from before the insert must not bring the
// old time back, even for a moment: the provider receives nothing.
//
// The insert and the move commit in the same second (MariaDB's commit time resolution), so a
// slot version taken from the commit time ties and the replayed insert brought "due:1@<old
// time>" back, which the sender sent before the move's batch corrected it. Slot versions are
// now the transactions' positions (ingest.TxnVersion), strictly increasing.
func TestAReplayOfARescheduleInSeparateGroupCommitsRepeatsNothing(t *testing.T) {
	t.Parallel()
	ddl := append([]string{`CREATE TABLE {db}.filler (id BIGINT PRIMARY KEY)`}, tasksDDL...)
	e := newEnv(t, ddl, map[string]string{"tasks.yaml": dueRule + `
  - name: later
    table: {db}.filler
    on: insert
    entity: string(new.id)
    at: date("2030-01-01")
    to: '"x"'
    channel: sms
    template: "later"
`})
	e.writeConfig()
	e.seedCheckpoint()
	st := e.openStoreOnce()
	start, _, err := st.Checkpoint()
	must(t, err)
	maxBatch := st.MaxBatchCount()
	must(t, st.Close())

	svc := e.start()
	filler := "INSERT INTO {db}.filler SELECT seq FROM {db}.seq_1_to_" + fmt.Sprint(maxBatch)
	e.exec(insertTask(1, "UTC_TIMESTAMP() + INTERVAL 3 SECOND"), filler, moveTask(1, "UTC_TIMESTAMP() + INTERVAL 1 DAY"))
	time.Sleep(4 * time.Second)
	e.exec(insertTask(90, "UTC_TIMESTAMP() - INTERVAL 1 SECOND"))
	e.waitFor("the sentinel", 60*time.Second, func() bool { return len(withPrefix(e.gw.counts(), "due:90@")) == 1 })
	must(t, svc.stop())
	assertTaskDeliveries(t, e.gw.counts(), []int{90})

	st = e.openStoreOnce()
	must(t, st.SetCheckpoint(context.Background(), start))
	must(t, st.Close())
	svc = e.start()
	e.exec(insertTask(91, "UTC_TIMESTAMP() - INTERVAL 1 SECOND"))
	e.waitFor("the sentinel after the replay", 60*time.Second, func() bool { return len(withPrefix(e.gw.counts(), "due:91@")) == 1 })
	time.Sleep(time.Second)
	must(t, svc.stop())
	assertTaskDeliveries(t, e.gw.counts(), []int{90, 91})
}
