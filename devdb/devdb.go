// Package devdb starts a throwaway MariaDB primary and replica for tests and the demo.
//
// Guarantee: a Cluster is a real replication pair on loopback ports: the primary (server_id 1)
// and the replica (server_id 2) both write a ROW/FULL binlog with GTIDs (domain 0), the replica
// replicates by GTID with log_slave_updates=ON, so its own binlog carries the primary's
// transactions under the primary's GTIDs. Every process devdb starts runs in its own process
// group and is killed by Cluster.Stop (and, through PR_SET_PDEATHSIG, when the test binary
// dies); devdb never touches a server it did not start.
//
// Users: root with an empty password over TCP (tests), "repl" for replication, and "notifier"
// (REPLICATION SLAVE, REPLICATION CLIENT, SELECT) with Options.NotifierPassword, created on the
// primary and replicated to the replica. Binlog readers must use a server id other than 1 and 2.
package devdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server ids of the two servers; a binlog reader must use another one.
const (
	PrimaryServerID = 1
	ReplicaServerID = 2
)

// Replication credentials the replica uses to connect to the primary.
const (
	replUser     = "repl"
	replPassword = "repl"
)

// NotifierUser is the least-privilege user created on both servers for the binlog reader.
const NotifierUser = "notifier"

// Options configures Start. The zero value is usable.
type Options struct {
	// Dir is the parent directory of the data directories. Empty: a new temporary directory
	// that Cluster.Stop removes. Keep it short: unix socket paths are limited to ~100 bytes.
	Dir string
	// Logger receives start/stop lines. Nil: discard.
	Logger *slog.Logger
	// Mariadbd and InstallDB are the binaries. Empty: looked up in PATH, then /usr/sbin, /usr/bin.
	Mariadbd, InstallDB string
	// NotifierPassword is the password of the "notifier" user. Empty: "notifier".
	NotifierPassword string
	// StartTimeout bounds each server's start. Zero: 60 s.
	StartTimeout time.Duration
}

func (o *Options) defaults() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.NotifierPassword == "" {
		o.NotifierPassword = "notifier"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	var err error
	if o.Mariadbd == "" {
		if o.Mariadbd, err = findBinary("mariadbd", "mysqld"); err != nil {
			return err
		}
	}
	if o.InstallDB == "" {
		if o.InstallDB, err = findBinary("mariadb-install-db", "mysql_install_db"); err != nil {
			return err
		}
	}
	return nil
}

func findBinary(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/mysql/bin", "/usr/local/bin"} {
			p := filepath.Join(dir, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w: looked for %s", ErrNoMariaDB, strings.Join(names, ", "))
}

// Cluster is a running primary and replica.
type Cluster struct {
	primary, replica *Server
	dir              string
	removeDir        bool
	log              *slog.Logger
	stopOnce         sync.Once
	stopErr          error
}

// Primary returns the primary server (server_id 1).
func (c *Cluster) Primary() *Server { return c.primary }

// Replica returns the replica server (server_id 2), which replicates from the primary.
func (c *Cluster) Replica() *Server { return c.replica }

// Dir returns the cluster's parent directory.
func (c *Cluster) Dir() string { return c.dir }

// Start installs two data directories, starts the primary and the replica concurrently, creates
// the users and starts replication. On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	begin := time.Now()
	c := &Cluster{dir: opts.Dir, log: opts.Logger}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "devdb-")
		if err != nil {
			return nil, fmt.Errorf("devdb: create temp dir: %w", err)
		}
		c.dir, c.removeDir = d, true
	}
	c.primary = newServer("primary", filepath.Join(c.dir, "primary"), PrimaryServerID, opts)
	c.replica = newServer("replica", filepath.Join(c.dir, "replica"), ReplicaServerID, opts)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Server{c.primary, c.replica} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.install(ctx); err != nil {
				errs[i] = err
				return
			}
			errs[i] = s.Start()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if err := c.setup(ctx, opts); err != nil {
		_ = c.Stop()
		return nil, err
	}
	c.log.Info("devdb cluster started", "dir", c.dir, "primary", c.primary.Addr, "replica", c.replica.Addr,
		"took", time.Since(begin).Round(time.Millisecond))
	return c, nil
}

// StartT starts a cluster for a test and registers its Stop with t.Cleanup. It fails the test
// loudly (never skips) when MariaDB is not installed or does not start.
func StartT(t testing.TB) *Cluster {
	t.Helper()
	begin := time.Now()
	c, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatalf("devdb: start MariaDB primary+replica: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("devdb: stop cluster: %v", err)
		}
	})
	t.Logf("devdb: primary %s, replica %s started in %s", c.primary.Addr, c.replica.Addr, time.Since(begin).Round(time.Millisecond))
	return c
}

func (c *Cluster) setup(ctx context.Context, opts Options) error {
	// Created on the primary only: the statements replicate, so the replica gets the same users
	// under the primary's GTIDs and both binlogs stay in the same GTID sequence.
	err := c.primary.Exec(ctx,
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", replUser, replPassword),
		fmt.Sprintf("GRANT REPLICATION SLAVE ON *.* TO '%s'@'%%'", replUser),
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", NotifierUser, strings.ReplaceAll(opts.NotifierPassword, "'", "''")),
		fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '%s'@'%%'", NotifierUser),
	)
	if err != nil {
		return fmt.Errorf("devdb: create users on primary: %w", err)
	}
	err = c.replica.Exec(ctx,
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
			c.primary.Port, replUser, replPassword),
		"START SLAVE",
	)
	if err != nil {
		return fmt.Errorf("devdb: start replication on replica: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	return c.WaitReplicated(wctx)
}

// WaitReplicated waits until the replica has applied (and, with log_slave_updates, written to
// its own binlog) everything in the primary's binlog at the time of the call. It fails early
// with the replica's error when replication has stopped.
func (c *Cluster) WaitReplicated(ctx context.Context) error {
	db, err := c.primary.DB()
	if err != nil {
		return err
	}
	var pos string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&pos); err != nil {
		return fmt.Errorf("devdb: read primary gtid_binlog_pos: %w", err)
	}
	if pos == "" {
		return nil
	}
	rdb, err := c.replica.DB()
	if err != nil {
		return err
	}
	for {
		var res sql.NullInt64
		// A short wait per round so ctx and replication errors are noticed.
		if err := rdb.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 0.5)", pos).Scan(&res); err != nil {
			return fmt.Errorf("devdb: wait for replica to reach %s: %w", pos, err)
		}
		if res.Valid && res.Int64 == 0 {
			return nil
		}
		st, err := c.replica.SlaveStatus(ctx)
		if err != nil {
			return err
		}
		if st["Slave_SQL_Running"] == "No" || st["Last_IO_Errno"] != "0" && st["Slave_IO_Running"] == "No" {
			return fmt.Errorf("devdb: replication stopped before %s: io=%s sql=%s: %s %s", pos,
				st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_IO_Error"], st["Last_SQL_Error"])
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("devdb: wait for replica to reach %s (at %s): %w", pos, st["Gtid_IO_Pos"], err)
		}
	}
}

// Stop kills both servers (their whole process groups) and removes the temporary directory
// Start created. It is idempotent.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for _, s := range []*Server{c.replica, c.primary} {
			if s != nil {
				errs = append(errs, s.Kill())
				s.closeDB()
			}
		}
		if c.removeDir {
			errs = append(errs, os.RemoveAll(c.dir))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
