package main

import "github.com/urfave/cli/v2"

// runCommands: run and demo. Owned by the integration work.
func runCommands() []*cli.Command { return nil }
