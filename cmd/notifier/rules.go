package main

import "github.com/urfave/cli/v2"

// rulesCommands: rules check|test. Owned by the rules/CLI work.
func rulesCommands() []*cli.Command { return nil }
