package cdc_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"notifier/cdc"
	"notifier/devdb"
)

// cluster is shared by every test and benchmark of the package: starting one costs seconds.
// Each test works in its own database so tests do not see each other's rows.
var cluster *devdb.Cluster

func TestMain(m *testing.M) {
	os.Exit(devdb.Main(m, devdb.Options{NotifierPassword: notifierPassword}, func(c *devdb.Cluster) { cluster = c }))
}

const notifierPassword = "s3cret-notifier"

var serverIDs atomic.Uint32

func init() { serverIDs.Store(100) }

// readerOpts returns options that read the replica as the least-privilege notifier user.
func readerOpts(include ...string) cdc.Options {
	return cdc.Options{
		Addr:            cluster.Replica().Addr,
		User:            devdb.NotifierUser,
		Password:        notifierPassword,
		ServerID:        serverIDs.Add(1),
		Include:         include,
		HeartbeatPeriod: time.Second,
		MinBackoff:      50 * time.Millisecond,
		MaxBackoff:      time.Second,
	}
}

// stream is a running Reader whose Txns are collected from a channel.
type stream struct {
	t      testing.TB
	r      *cdc.Reader
	ch     chan *cdc.Txn
	done   chan error
	cancel context.CancelFunc
}

func startStream(t testing.TB, opts cdc.Options, from cdc.Position) *stream {
	t.Helper()
	r, err := cdc.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{t: t, r: r, ch: make(chan *cdc.Txn, 1024), done: make(chan error, 1), cancel: cancel}
	go func() { s.done <- r.Run(ctx, from, s.ch) }()
	t.Cleanup(s.stop)
	return s
}

func (s *stream) stop() {
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("Run after cancel returned %v, want nil", err)
		}
		s.done <- nil
	case <-time.After(30 * time.Second):
		s.t.Errorf("Run did not return within 30s of cancel")
	}
	_ = s.r.Close()
}

// next returns the next n Txns that carry changes, skipping progress-only ones.
func (s *stream) next(n int) []*cdc.Txn {
	s.t.Helper()
	var out []*cdc.Txn
	deadline := time.After(60 * time.Second)
	for len(out) < n {
		select {
		case txn := <-s.ch:
			if len(txn.Changes) > 0 {
				out = append(out, txn)
			}
		case err := <-s.done:
			s.done <- err
			s.t.Fatalf("Run returned %v after %d of %d transactions", err, len(out), n)
		case <-deadline:
			s.t.Fatalf("timed out after %d of %d transactions", len(out), n)
		}
	}
	return out
}

// fatal waits for Run to fail and returns its error.
func (s *stream) fatal() error {
	s.t.Helper()
	for {
		select {
		case <-s.ch:
		case err := <-s.done:
			s.done <- nil
			if err == nil {
				s.t.Fatal("Run returned nil, want an error")
			}
			return err
		case <-time.After(60 * time.Second):
			s.t.Fatal("Run did not fail within 60s")
		}
	}
}

// quiet asserts that no Txn with changes is pending after the replica caught up.
func (s *stream) quiet() {
	s.t.Helper()
	waitReplicated(s.t)
	for {
		select {
		case txn := <-s.ch:
			if len(txn.Changes) > 0 {
				s.t.Fatalf("unexpected transaction %s: %+v", txn.Position, txn.Changes)
			}
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// primary runs statements on the primary.
func primary(t testing.TB, stmts ...string) {
	t.Helper()
	if err := cluster.Primary().Exec(ctxT(t), stmts...); err != nil {
		t.Fatal(err)
	}
}

// primaryTxn runs statements on the primary in one transaction.
func primaryTxn(t testing.TB, stmts ...string) {
	t.Helper()
	primary(t, append(append([]string{"BEGIN"}, stmts...), "COMMIT")...)
}

func waitReplicated(t testing.TB) {
	t.Helper()
	if err := cluster.WaitReplicated(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// database creates a fresh database named after the test on the primary.
func database(t testing.TB) string { return cluster.Database(t) }

// current returns the replica's current position once it has caught up with the primary.
func current(t testing.TB) cdc.Position {
	t.Helper()
	waitReplicated(t)
	r, err := cdc.New(readerOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.CurrentPosition(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustErrorIs(t testing.TB, err, target error, substrings ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v: want errors.Is %v", err, target)
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}
