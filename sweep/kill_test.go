package sweep_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSweepKilledMidwayResumesWithoutDuplicates(t *testing.T) {
	db := database(t)
	const n = 25_000
	loadUsers(t, db, n)
	dir := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "SWEEP_ADDR="+cluster.Replica().Addr, "SWEEP_STORE="+dir, "SWEEP_DB="+db)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var committed int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "finished" {
			t.Fatal("the child finished before it was killed")
		}
		if v, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			if committed, _ = strconv.ParseInt(v, 10, 64); committed >= 6000 {
				_ = cmd.Process.Kill() // SIGKILL
				break
			}
		}
	}
	_ = cmd.Wait()
	t.Logf("child SIGKILLed after committing %d of %d rows", committed, activeUsers(n))

	st := openStore(t, dir)
	defer st.Close()
	s := newScheduler(t, st, parseRules(t, holidaySource(db)), nil)
	res, err := s.RunOnce(ctxT(t, 2*time.Minute), "holiday", berlin(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !res.Done || res.Rows != int64(activeUsers(n)) {
		t.Fatalf("resumed run %+v", res)
	}
	checkHoliday(t, st, n)
}
