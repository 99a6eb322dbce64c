package devdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-mysql-org/go-mysql/driver"
)

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
