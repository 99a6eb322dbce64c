package main

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestReadyzOnAQuietDatabase: after a start (and a restart) on a database that nobody writes
// to, /readyz becomes ready: the binlog connection is the reader's own state, not the first
// commit's (a Kubernetes rollout waits on this probe).
func TestReadyzOnAQuietDatabase(t *testing.T) {
	e := newEnv(t, contractsDDL, map[string]string{"contracts.yaml": activatedRule})
	addr := opsFreeAddr(t)
	e.extraConfig = fmt.Sprintf("admin:\n  listen: %s\n", addr)
	e.writeConfig()
	e.seedCheckpoint()

	readyz := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, run := range []string{"start", "restart"} {
		svc := e.start()
		var last string
		e.waitFor(run+": /readyz 200 with no writes", 60*time.Second, func() bool {
			code, body := readyz()
			last = fmt.Sprintf("%d %s", code, body)
			return code == 200
		})
		t.Logf("%s: /readyz = %s", run, last)
		must(t, svc.stop())
	}
}
