package sweep_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"notifier/devdb"
	"notifier/rules"
	"notifier/state"
	"notifier/sweep"
)

// cluster is shared by every test of the package: starting one costs seconds.
var cluster *devdb.Cluster

const notifierPassword = "s3cret-sweep"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(devdb.Main(m, devdb.Options{NotifierPassword: notifierPassword}, func(c *devdb.Cluster) { cluster = c }))
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func primary(t testing.TB, stmts ...string) {
	t.Helper()
	if err := cluster.Primary().Exec(ctxT(t, 2*time.Minute), stmts...); err != nil {
		t.Fatal(err)
	}
}

// database creates a fresh database named after the test on the primary.
func database(t testing.TB) string { return cluster.Database(t) }

// loadUsers creates db.users with ids 1..n (every 5th inactive) and waits for the replica.
func loadUsers(t testing.TB, db string, n int) {
	t.Helper()
	primary(t, "CREATE TABLE "+db+".users (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, phone VARCHAR(20), active TINYINT NOT NULL)")
	const per = 2000
	var stmts []string
	for lo := 1; lo <= n; lo += per {
		var b strings.Builder
		b.WriteString("INSERT INTO " + db + ".users VALUES ")
		for id := lo; id < lo+per && id <= n; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,'User %d','+4917%08d',%d)", id, id, id, map[bool]int{true: 0, false: 1}[id%5 == 0])
		}
		stmts = append(stmts, b.String())
	}
	primary(t, stmts...)
	if err := cluster.WaitReplicated(ctxT(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// activeUsers is how many of ids 1..n loadUsers makes active.
func activeUsers(n int) int { return n - n/5 }

// holidaySource is a sweep at 09:00 and 15:00 Berlin time on December 24th whose key is the
// user and the date: a second run the same day sends nothing.
func holidaySource(db string) string {
	return fmt.Sprintf(`
defaults: {timezone: Europe/Berlin, channel: sms}
sweeps:
  - name: holiday
    schedule: "0 9,15 24 12 *"
    query: SELECT id, name, phone FROM %s.users WHERE active = 1
    key_column: id
    key: 'new.id + ":" + commit_time.Format("2006-01-02")'
    to: new.phone
    template: "Frohe Weihnachten, {{.new.name}}!"
`, db)
}

func parseRules(t testing.TB, src string) *rules.Set {
	t.Helper()
	set, err := rules.Parse("sweeps.yaml", []byte(src), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func openStore(t testing.TB, dir string) *state.Store {
	t.Helper()
	st, err := state.Open(state.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newScheduler(t testing.TB, st *state.Store, set *rules.Set, mod func(*sweep.Options)) *sweep.Scheduler {
	t.Helper()
	o := sweep.Options{Addr: cluster.Replica().Addr, User: devdb.NotifierUser, Password: notifierPassword,
		Store: st, Rules: set}
	if mod != nil {
		mod(&o)
	}
	s, err := sweep.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// messagesByKey lists every message in the store.
func messagesByKey(t testing.TB, st *state.Store) map[string]*state.Message {
	t.Helper()
	out := map[string]*state.Message{}
	f := state.Filter{Limit: 5000}
	for {
		page, err := st.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			out[m.Key] = m
		}
		if len(page) < f.Limit {
			return out
		}
		f.After = page[len(page)-1].Key
	}
}

// berlin is the December 24th, 2026 tick at hh:00 Berlin time.
func berlin(t testing.TB, hh int) time.Time {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2026, 12, 24, hh, 0, 0, 0, loc)
}

// checkHoliday asserts exactly one message per active user 1..n, keyed by user and date.
func checkHoliday(t *testing.T, st *state.Store, n int) {
	t.Helper()
	msgs := messagesByKey(t, st)
	if len(msgs) != activeUsers(n) {
		t.Errorf("%d messages, want one per active user (%d)", len(msgs), activeUsers(n))
	}
	for id := 1; id <= n; id++ {
		m, ok := msgs[fmt.Sprintf("holiday:%d:2026-12-24", id)]
		if ok != (id%5 != 0) {
			t.Fatalf("user %d: message present %v, want %v", id, ok, id%5 != 0)
		}
		if ok && (m.Text != fmt.Sprintf("Frohe Weihnachten, User %d!", id) || m.To != fmt.Sprintf("+4917%08d", id) || m.Status != state.StatusReady) {
			t.Fatalf("user %d: message %+v", id, m)
		}
	}
}
