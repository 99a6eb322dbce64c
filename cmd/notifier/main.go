// Command notifier turns row changes read from a MySQL/MariaDB replica's binlog into SMS,
// e-mail and webhook messages, exactly once. See the README for the flow and the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) }

// run executes the CLI and maps its error to an exit code: 0 ok, 1 failure, 2 usage or a
// problem found by a check (cli.Exit codes pass through).
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := App(stdout, stderr).RunContext(ctx, args)
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(stderr, "notifier:", err)
	return 1
}

// App builds the command tree. Each group of commands lives in its own file; this is the one
// screen that shows them all.
func App(stdout, stderr io.Writer) *cli.App {
	var cmds []*cli.Command
	cmds = append(cmds, runCommands()...)      // run, demo              (run.go, demo.go)
	cmds = append(cmds, rulesCommands()...)    // rules check|test       (rules.go)
	cmds = append(cmds, configCommands()...)   // config check           (config_check.go)
	cmds = append(cmds, opsCommands()...)      // status, messages, ...  (ops.go)
	cmds = append(cmds, snapshotCommands()...) // snapshot, sweep     (snapshot.go)
	return &cli.App{
		Name:                 "notifier",
		Usage:                "turn binlog row changes into SMS, e-mail and webhook messages, exactly once",
		Version:              version,
		Commands:             cmds,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		// Errors are mapped to exit codes by run, never by os.Exit inside the library.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}
