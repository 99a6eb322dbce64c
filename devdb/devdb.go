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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/driver"
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

// Server is one mariadbd process with its own data directory.
type Server struct {
	// Name is "primary" or "replica".
	Name string
	// Addr is "127.0.0.1:<Port>".
	Addr string
	// Port is the TCP port, kept across Stop/Start.
	Port int
	// Dir holds the data directory (Dir/data), the socket, the pid file and error.log.
	Dir string
	// Socket is the unix socket path.
	Socket string
	// ServerID is the server's server_id.
	ServerID uint32

	opts Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	db   *sql.DB
}

func newServer(name, dir string, id uint32, opts Options) *Server {
	return &Server{Name: name, Dir: dir, Socket: filepath.Join(dir, "mysqld.sock"), ServerID: id, opts: opts}
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// ErrorLog returns the path of the server's error log.
func (s *Server) ErrorLog() string { return filepath.Join(s.Dir, "error.log") }

func (s *Server) install(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "tmp"), 0o755); err != nil {
		return fmt.Errorf("devdb: %s: %w", s.Name, err)
	}
	args := []string{"--no-defaults", "--datadir=" + s.dataDir(), "--tmpdir=" + filepath.Join(s.Dir, "tmp"), "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, s.opts.InstallDB, args...)
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("devdb: %s: mariadb-install-db into %s: %w\n%s", s.Name, s.dataDir(), err, tail(string(out), 2000))
	}
	return nil
}

func (s *Server) args() []string {
	args := []string{
		"--no-defaults",
		"--datadir=" + s.dataDir(),
		"--tmpdir=" + filepath.Join(s.Dir, "tmp"),
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--log-error=" + s.ErrorLog(),
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(s.Port),
		"--server-id=" + strconv.FormatUint(uint64(s.ServerID), 10),
		"--log-bin=mysql-bin",
		"--relay-log=relay-bin",
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--log-slave-updates=ON",
		"--gtid-domain-id=0",
		"--skip-name-resolve",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M",
		"--innodb-use-native-aio=OFF",
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
		"--performance-schema=OFF",
		"--max-connections=200",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return args
}

// Start starts the server's process (again, after Stop or Kill: same data directory, same
// port) and waits until it accepts connections. The first start picks a free loopback port,
// retrying on a conflict.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("devdb: %s already running", s.Name)
	}
	fixed := s.Port != 0
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if !fixed {
			p, err := freePort()
			if err != nil {
				return err
			}
			s.Port, s.Addr = p, "127.0.0.1:"+strconv.Itoa(p)
		}
		last = s.startOnce()
		if last == nil {
			return nil
		}
		if fixed || !errors.Is(last, errPortInUse) {
			return last
		}
	}
	return last
}

var errPortInUse = errors.New("port in use")

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("devdb: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) startOnce() error {
	logStart := logSize(s.ErrorLog())
	cmd := exec.Command(s.opts.Mariadbd, s.args()...)
	cmd.Dir = s.Dir
	// Own process group so Stop kills everything it started; Pdeathsig so a crashed test binary
	// does not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("devdb: %s: start %s: %w", s.Name, s.opts.Mariadbd, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(s.opts.StartTimeout)
	db := s.openDB()
	defer db.Close()
	for {
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			msg := tailFrom(s.ErrorLog(), logStart)
			if strings.Contains(msg, "Address already in use") || strings.Contains(msg, "Do you already have another") {
				return fmt.Errorf("devdb: %s on port %d: %w", s.Name, s.Port, errPortInUse)
			}
			return fmt.Errorf("devdb: %s exited during start (port %d); error log:\n%s", s.Name, s.Port, msg)
		case <-time.After(50 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			s.opts.Logger.Debug("devdb server up", "name", s.Name, "addr", s.Addr)
			return nil
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("devdb: %s did not accept connections on %s within %s: %v; error log:\n%s",
				s.Name, s.Addr, s.opts.StartTimeout, err, tailFrom(s.ErrorLog(), logStart))
		}
	}
}

func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func tailFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no error log: " + err.Error() + ")"
	}
	if off > int64(len(b)) {
		off = 0
	}
	return tail(string(b[off:]), 3000)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Stop shuts the server down cleanly (SIGTERM, then SIGKILL after 30 s) and waits for it.
// The data directory and port are kept for Start.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.dropIdle()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.killLocked()
	}
	s.cmd, s.done = nil, nil
	return nil
}

// Kill kills the server's process group with SIGKILL (a crash) and waits for it to exit.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropIdle()
	s.killLocked()
	return nil
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd, s.done = nil, nil
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

func (s *Server) openDB() *sql.DB {
	db := sql.OpenDB(driver.Connector{Addr: s.Addr, User: "root"})
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	return db
}

// DB returns a pooled connection to the server as root (no default database: qualify table
// names). It stays valid across Stop/Start. Do not Close it; Cluster.Stop does.
func (s *Server) DB() (*sql.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Addr == "" {
		return nil, fmt.Errorf("devdb: %s was never started", s.Name)
	}
	if s.db == nil {
		s.db = s.openDB()
	}
	return s.db, nil
}

// dropIdle closes pooled idle connections, which a stopped server would break.
func (s *Server) dropIdle() {
	if s.db != nil {
		s.db.SetMaxIdleConns(0)
		s.db.SetMaxIdleConns(4)
	}
}

func (s *Server) closeDB() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
}

// Exec runs each statement in order as root and stops at the first error.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := s.DB()
	if err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("devdb: %s: exec %q: %w", s.Name, abbrev(q), err)
		}
	}
	return nil
}

func abbrev(q string) string {
	if len(q) > 200 {
		return q[:200] + "…"
	}
	return q
}

// QueryRow runs a query as root and returns its first row as strings (NULL as ""), keyed by
// column name; nil when there is no row.
func (s *Server) QueryRow(ctx context.Context, query string, args ...any) (map[string]string, error) {
	db, err := s.DB()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("devdb: %s: query %q: %w", s.Name, abbrev(query), err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("devdb: %s: query %q: %w", s.Name, abbrev(query), err)
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("devdb: %s: query %q: %w", s.Name, abbrev(query), err)
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, rows.Err()
}

// SlaveStatus returns SHOW SLAVE STATUS as column → value (nil map when not a replica).
func (s *Server) SlaveStatus(ctx context.Context) (map[string]string, error) {
	return s.QueryRow(ctx, "SHOW SLAVE STATUS")
}

// GTIDBinlogPos returns @@gtid_binlog_pos: the GTID set in the server's own binlog.
func (s *Server) GTIDBinlogPos(ctx context.Context) (string, error) {
	m, err := s.QueryRow(ctx, "SELECT @@GLOBAL.gtid_binlog_pos AS pos")
	if err != nil {
		return "", err
	}
	return m["pos"], nil
}

// MasterStatus returns the server's current binlog file and position.
func (s *Server) MasterStatus(ctx context.Context) (file string, pos uint32, err error) {
	m, err := s.QueryRow(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return "", 0, err
	}
	if m == nil {
		return "", 0, fmt.Errorf("devdb: %s: binlog is off", s.Name)
	}
	p, err := strconv.ParseUint(m["Position"], 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("devdb: %s: master status position %q: %w", s.Name, m["Position"], err)
	}
	return m["File"], uint32(p), nil
}

// PurgeBinlogs rotates the server's binlog and purges every file before the new one, so that
// any earlier position is gone. It retries until the server has let go of the old files (InnoDB
// keeps a binlog until its binlog checkpoint is written) or ctx is done. A file still read by a
// connected binlog reader is kept by the server, so stop readers first.
func (s *Server) PurgeBinlogs(ctx context.Context) error {
	if err := s.Exec(ctx, "FLUSH BINARY LOGS"); err != nil {
		return err
	}
	file, _, err := s.MasterStatus(ctx)
	if err != nil {
		return err
	}
	for {
		if err := s.Exec(ctx, fmt.Sprintf("PURGE BINARY LOGS TO '%s'", file)); err != nil {
			return err
		}
		first, err := s.QueryRow(ctx, "SHOW BINARY LOGS")
		if err != nil {
			return err
		}
		if first["Log_name"] == file {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devdb: %s: purge binlogs before %s: %s still kept: %w", s.Name, file, first["Log_name"], ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
