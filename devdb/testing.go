package devdb

import (
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
	"time"
)

// Main is a test package's TestMain body for tests that share one cluster: it starts a cluster
// with opts (failing loudly, exit 1, when MariaDB is missing or does not start), hands it to
// use, runs the tests and stops the cluster. It returns the exit code for os.Exit.
//
//	func TestMain(m *testing.M) { os.Exit(devdb.Main(m, devdb.Options{}, func(c *devdb.Cluster) { cluster = c })) }
func Main(m *testing.M, opts Options, use func(*Cluster)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	begin := time.Now()
	c, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "these tests need a MariaDB primary+replica (devdb): %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "devdb cluster up in %s (primary %s, replica %s)\n",
		time.Since(begin).Round(time.Millisecond), c.Primary().Addr, c.Replica().Addr)
	use(c)
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop devdb cluster: %v\n", err)
	}
	return code
}

// Database creates a fresh database on the primary, named after the test (sanitised, with a
// checksum of the full name so long names stay unique), and returns its name. Tests sharing a
// cluster each work in their own database and never see each other's rows.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("%s_%08x", name, crc32.ChecksumIEEE([]byte(t.Name())))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Primary().Exec(ctx, "DROP DATABASE IF EXISTS "+name, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return name
}
