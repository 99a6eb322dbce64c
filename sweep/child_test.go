package sweep_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"notifier/devdb"
	"notifier/rules"
	"notifier/state"
	"notifier/sweep"
)

// childEnv makes the test binary a sweep process (for SIGKILL tests): it runs the holiday
// sweep of database $SWEEP_DB for its 09:00 tick from $SWEEP_ADDR into the store $SWEEP_STORE,
// printing "committed <rows>" after each page.
const childEnv = "SWEEP_TEST_CHILD"

func childMain() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "child:", err); return 1 }
	set, err := rules.Parse("child.yaml", []byte(holidaySource(os.Getenv("SWEEP_DB"))), rules.Options{})
	if err != nil {
		return fail(err)
	}
	st, err := state.Open(state.Options{Dir: os.Getenv("SWEEP_STORE")})
	if err != nil {
		return fail(err)
	}
	s, err := sweep.New(sweep.Options{Addr: os.Getenv("SWEEP_ADDR"), User: devdb.NotifierUser, Password: notifierPassword,
		Store: st, Rules: set, PageSize: 500, RowsPerSecond: 10000,
		OnProgress: func(p sweep.Progress) { fmt.Printf("committed %d\n", p.Rows) }})
	if err != nil {
		return fail(err)
	}
	loc, _ := time.LoadLocation("Europe/Berlin")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.RunOnce(ctx, "holiday", time.Date(2026, 12, 24, 9, 0, 0, 0, loc)); err != nil {
		return fail(err)
	}
	fmt.Println("finished")
	return 0
}
