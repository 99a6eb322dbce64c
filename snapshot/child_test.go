package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"notifier/cdc"
	"notifier/devdb"
	"notifier/rules"
	"notifier/snapshot"
	"notifier/state"
)

// childEnv makes the test binary a snapshot process (for SIGKILL tests): it snapshots
// $SNAPSHOT_TABLE from $SNAPSHOT_ADDR into the store $SNAPSHOT_STORE with the rules in
// $SNAPSHOT_RULES, printing "committed <rows>" after each commit.
const childEnv = "SNAPSHOT_TEST_CHILD"

func childMain() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	set, err := rules.Parse("child.yaml", []byte(os.Getenv("SNAPSHOT_RULES")), rules.Options{})
	if err != nil {
		return fail(err)
	}
	st, err := state.Open(state.Options{Dir: os.Getenv("SNAPSHOT_STORE")})
	if err != nil {
		return fail(err)
	}
	rate, _ := strconv.Atoi(os.Getenv("SNAPSHOT_RATE"))
	r, err := cdc.New(cdc.Options{Addr: os.Getenv("SNAPSHOT_ADDR"), User: devdb.NotifierUser, Password: notifierPassword,
		ServerID: 999, SnapshotRowsPerSecond: rate})
	if err != nil {
		return fail(err)
	}
	s, err := snapshot.New(snapshot.Options{Source: r, Store: st, Rules: set, Tables: []string{os.Getenv("SNAPSHOT_TABLE")},
		MoveCheckpoint: true, PageSize: 500, OnProgress: func(p snapshot.Progress) {
			fmt.Printf("committed %d\n", p.Rows)
		}})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.Run(ctx); err != nil {
		return fail(err)
	}
	fmt.Println("finished")
	return 0
}
