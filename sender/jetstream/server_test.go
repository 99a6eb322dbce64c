package jetstream

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServerBin is the Debian package's binary (.ci/run installs `nats-server`).
const natsServerBin = "/usr/sbin/nats-server"

// natsServer is a real nats-server subprocess with JetStream and its own store directory.
type natsServer struct {
	t          testing.TB
	Port       int
	StoreDir   string
	extraArgs  []string
	clientOpts []nats.Option // for the readiness check and streamMsgIDs (auth)
	cmd        *exec.Cmd
	logFile    string
}

// URL is the client URL of the server.
func (s *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.Port) }

// startNATS starts `nats-server -js -p PORT -sd DIR` and waits until JetStream answers. It fails
// the test loudly when the binary is missing.
func startNATS(t testing.TB, clientOpts []nats.Option, extraArgs ...string) *natsServer {
	t.Helper()
	if _, err := os.Stat(natsServerBin); err != nil {
		t.Fatalf("nats-server binary missing (%v): install the Debian package nats-server (.ci/run does)", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	s := &natsServer{t: t, Port: port, StoreDir: filepath.Join(dir, "js"), extraArgs: extraArgs, clientOpts: clientOpts, logFile: filepath.Join(dir, "nats.log")}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server on the same port and store directory.
func (s *natsServer) Start() {
	s.t.Helper()
	args := append([]string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-sd", s.StoreDir, "-l", s.logFile}, s.extraArgs...)
	s.cmd = exec.Command(natsServerBin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	opts := append([]nats.Option{nats.Timeout(time.Second)}, s.clientOpts...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(s.URL(), opts...)
		if err == nil {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.logFile)
			s.t.Fatalf("nats-server on %d not ready: %v\n%s", s.Port, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: a crash, not a clean shutdown) and waits for it.
func (s *natsServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// streamMsgIDs returns the stream's message count and the msg id of each message, in order, through a fresh connection.
func (s *natsServer) streamMsgIDs(t testing.TB, name string) (uint64, []string) {
	t.Helper()
	nc, err := nats.Connect(s.URL(), s.clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get seq %d: %v", seq, err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return info.State.Msgs, ids
}
