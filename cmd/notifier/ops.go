package main

import "github.com/urfave/cli/v2"

// opsCommands: status, messages, timers, dead, replay, export, checkpoint. Owned by the ops work.
func opsCommands() []*cli.Command { return nil }
