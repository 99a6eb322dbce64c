package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/shopspring/decimal"
	"github.com/urfave/cli/v2"

	"notifier/cdc"
	"notifier/rules"
)

// Reload metrics (STYLE 5).
var (
	reloadSuccessful = metrics.NewGauge(`notifier_config_last_reload_successful`, nil)
	reloadSuccessTS  = metrics.NewGauge(`notifier_config_last_reload_success_timestamp_seconds`, nil)
	reloadErrors     = metrics.NewCounter(`notifier_config_last_reload_errors_total`)
)

// rulesOptions are the options every rules load of this config uses.
func (c *Config) rulesOptions() rules.Options {
	return rules.Options{Channels: channelNames(c), DefaultTimezone: c.Rules.DefaultTimezone,
		DefaultRegion: c.Rules.DefaultRegion}
}

// loadRules loads the rule directory once at start; an error refuses to start.
func (s *service) loadRules() (*rules.Set, error) {
	set, err := rules.LoadDir(s.cfg.Rules.Dir, s.cfg.rulesOptions())
	if err != nil {
		return nil, fmt.Errorf("rules %s:\n%w", s.cfg.Rules.Dir, err)
	}
	reloadSuccessful.Set(1)
	reloadSuccessTS.Set(float64(s.now().Unix()))
	s.lastReload = s.now()
	return set, nil
}

// reload re-reads the rules: parse → validate → swap, or keep the old set (STYLE 5). An
// unchanged set (same hash) is not swapped. When the tables the rules read change and the
// config names no include list, the binlog reader restarts from the checkpoint with the new
// filter (after ingest committed what it read), so no change of a newly watched table is lost
// after the swap point.
func (s *service) reload(ctx context.Context) error {
	set, err := rules.LoadDir(s.cfg.Rules.Dir, s.cfg.rulesOptions())
	s.reloadMu.Lock()
	s.lastReload = s.now()
	if err != nil {
		s.lastReloadError = err.Error()
		s.reloadMu.Unlock()
		reloadSuccessful.Set(0)
		reloadErrors.Inc()
		s.log.Error("rules reload refused; the old rules stay", "dir", s.cfg.Rules.Dir, "error", err)
		return err
	}
	s.lastReloadError = ""
	old := s.ing.Rules()
	changedTables := false
	if len(s.cfg.Source.Include) == 0 {
		nt := set.Tables()
		changedTables = !slices.Equal(sortedCopy(nt), sortedCopy(s.tables))
		if changedTables {
			s.tables = nt
		}
	}
	s.reloadMu.Unlock()
	reloadSuccessful.Set(1)
	reloadSuccessTS.Set(float64(s.now().Unix()))
	if old != nil && old.Hash == set.Hash {
		return nil
	}
	s.ing.SetRules(set)
	if s.sweeps != nil {
		s.sweeps.SetRules(set)
	}
	s.log.Info("rules reloaded", "rules", len(set.Rules), "hash", set.Hash)
	if changedTables {
		s.log.Info("rules read other tables; restarting the binlog reader from the checkpoint", "tables", set.Tables())
		if err := s.requestRestart(ctx, nil); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("restart binlog reader for new tables: %w", err)
		}
	}
	return nil
}

// reloadLoop reloads on SIGHUP and every rules.reload_interval until ctx is done.
func (s *service) reloadLoop(ctx context.Context) {
	hup := hupSignals(ctx)
	var tick <-chan time.Time
	if d := *s.cfg.Rules.ReloadInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.log.Info("SIGHUP: reloading rules")
		case <-tick:
		}
		_ = s.reload(ctx)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// rulesCommands: rules check|test.
func rulesCommands() []*cli.Command {
	return []*cli.Command{{
		Name:  "rules",
		Usage: "check and test rule files",
		Subcommands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "load and compile every rule file of DIR; exit 2 with one file:line:col: message per problem",
				ArgsUsage: "DIR",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "channels-from", TakesFile: true, Usage: "check channel names against the channels of config `FILE`"},
				},
				Action: rulesCheck,
			},
			{
				Name:      "test",
				Usage:     "evaluate the rules of DIR on one change (or a fixtures file) and print the messages they make",
				ArgsUsage: "DIR",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "table", Usage: "the changed table, `schema.table`"},
					&cli.StringFlag{Name: "op", Value: "update", Usage: "insert|update|delete|snapshot"},
					&cli.StringFlag{Name: "old", Usage: "the row before, a JSON object"},
					&cli.StringFlag{Name: "new", Usage: "the row after, a JSON object"},
					&cli.StringFlag{Name: "commit-time", Usage: "the transaction's commit time, RFC 3339 (default now)"},
					&cli.StringFlag{Name: "fixtures", TakesFile: true, Usage: "run the cases of fixtures `FILE` instead"},
					&cli.StringFlag{Name: "channels-from", TakesFile: true, Usage: "check channel names against config `FILE`"},
					&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "with --fixtures: print the effects of failing cases"},
				},
				Action: rulesTest,
			},
		},
	}}
}

// rulesDirArg returns the one DIR argument (flags must come before it: urfave/cli stops
// parsing flags at the first argument).
func rulesDirArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit("usage: notifier rules "+c.Command.Name+" [flags] DIR (flags before DIR)", 2)
	}
	return c.Args().First(), nil
}

// rulesOptionsFrom returns the load options, with the channel names of --channels-from.
func rulesOptionsFrom(c *cli.Context) (rules.Options, error) {
	path := c.String("channels-from")
	if path == "" {
		return rules.Options{}, nil
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return rules.Options{}, cli.Exit(err.Error(), 2)
	}
	return cfg.rulesOptions(), nil
}

func rulesCheck(c *cli.Context) error {
	dir, err := rulesDirArg(c)
	if err != nil {
		return err
	}
	opts, err := rulesOptionsFrom(c)
	if err != nil {
		return err
	}
	set, err := checkRules(dir, opts)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	fmt.Fprintf(c.App.Writer, "ok: %s\n", rulesSummary(set))
	return nil
}

// checkRules loads and compiles every rule file of dir (rules check, config check): the error
// has one "file:line:col: message" line per problem.
func checkRules(dir string, opts rules.Options) (*rules.Set, error) {
	set, err := rules.LoadDir(dir, opts)
	if err != nil {
		return nil, errors.New(formatRuleErrors(err))
	}
	return set, nil
}

// rulesSummary is what a check that loaded the rules says about them.
func rulesSummary(set *rules.Set) string {
	return fmt.Sprintf("%d rules, %d sweeps in %d files (hash %.12s)",
		len(set.Rules), len(set.Sweeps), len(set.Files), set.Hash)
}

// formatRuleErrors prints one "file:line:col: message" line per problem; a problem of no file
// (an unreadable directory) is its message alone.
func formatRuleErrors(err error) string {
	var b strings.Builder
	for i, e := range rules.Errors(err) {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File == "" {
			b.WriteString(e.Msg)
			continue
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func rulesTest(c *cli.Context) error {
	dir, err := rulesDirArg(c)
	if err != nil {
		return err
	}
	opts, err := rulesOptionsFrom(c)
	if err != nil {
		return err
	}
	set, err := rules.LoadDir(dir, opts)
	if err != nil {
		return cli.Exit(formatRuleErrors(err), 2)
	}
	if f := c.String("fixtures"); f != "" {
		return runFixtures(c, set, f)
	}
	schema, table, ok := strings.Cut(c.String("table"), ".")
	if !ok || schema == "" || table == "" {
		return cli.Exit("rules test: --table schema.table is required (or --fixtures FILE)", 2)
	}
	op, err := cdc.ParseOp(c.String("op"))
	if err != nil {
		return cli.Exit("rules test: --op: "+err.Error(), 2)
	}
	ch := &cdc.Change{Schema: schema, Table: table, Op: op}
	if ch.Before, err = parseRow(c.String("old")); err != nil {
		return cli.Exit("rules test: --old: "+err.Error(), 2)
	}
	if ch.After, err = parseRow(c.String("new")); err != nil {
		return cli.Exit("rules test: --new: "+err.Error(), 2)
	}
	commit := time.Now().UTC().Truncate(time.Second)
	if s := c.String("commit-time"); s != "" {
		if commit, err = time.Parse(time.RFC3339, s); err != nil {
			return cli.Exit("rules test: --commit-time: "+err.Error(), 2)
		}
	}
	effects := set.Evaluate(ch, rules.Meta{Position: "test", CommitTime: commit}, nil)
	if failed := printEffects(c.App.Writer, effects); failed > 0 {
		return cli.Exit(fmt.Sprintf("%d of %d effects failed", failed, len(effects)), 1)
	}
	return nil
}

// printEffects prints what each effect would store, rendered, and returns how many failed.
func printEffects(w io.Writer, effects []rules.Effect) (failed int) {
	if len(effects) == 0 {
		fmt.Fprintln(w, "no rule matched")
		return 0
	}
	for i := range effects {
		e := &effects[i]
		fmt.Fprintln(w, rules.DescribeEffect(e))
		switch e.Kind {
		case rules.EffectFailed:
			failed++
		case rules.EffectSend, rules.EffectSchedule, rules.EffectDigest:
			out, err := rules.RenderEffect(e)
			if err != nil {
				failed++
				fmt.Fprintf(w, "  template error: %v\n", err)
				continue
			}
			if out.Subject != "" {
				fmt.Fprintf(w, "  subject: %s\n", out.Subject)
			}
			if out.Text != "" {
				fmt.Fprintf(w, "  text: %s\n", out.Text)
			}
			if out.HTML != "" {
				fmt.Fprintf(w, "  html: %s\n", out.HTML)
			}
			if out.Segments > 0 {
				fmt.Fprintf(w, "  sms: %s, %d segment(s)\n", out.Encoding, out.Segments)
			}
		}
	}
	return failed
}

// parseRow reads a row given as a JSON object into the value types cdc delivers: integers
// as int64 (uint64 above its range), other numbers as exact decimals, strings that are a
// date ("2006-01-02") or a date-time (RFC 3339 or "2006-01-02 15:04:05[.ffffff]") as
// time.Time in UTC, nested objects and arrays as decoded JSON. "" → nil (no image).
func parseRow(s string) (cdc.Row, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("want a JSON object: %w", err)
	}
	row := make(cdc.Row, len(m))
	for k, v := range m {
		row[k] = rowValue(v)
	}
	return row, nil
}

func rowValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		if d, err := decimal.NewFromString(string(x)); err == nil {
			return d
		}
		return string(x)
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999", "2006-01-02"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t.UTC()
			}
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = plainJSON(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = plainJSON(e)
		}
		return x
	}
	return v
}

// plainJSON turns json.Number inside a JSON column value into float64, as cdc decodes JSON.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainJSON(e)
		}
	}
	return v
}

// runFixtures runs the cases of a fixtures file (rules.RunFixtures) and prints one line per
// case, with the differences of a failing one; exit 1 when a case fails, 2 for a malformed file.
func runFixtures(c *cli.Context, set *rules.Set, path string) error {
	results, err := rules.RunFixtures(set, path)
	if err != nil {
		return cli.Exit(formatRuleErrors(err), 2)
	}
	w := c.App.Writer
	failed := 0
	for i := range results {
		r := &results[i]
		if r.Passed() {
			fmt.Fprintf(w, "ok   %s:%d: %s\n", r.File, r.Line, r.Name)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL %s:%d: %s\n", r.File, r.Line, r.Name)
		for _, f := range r.Failures {
			fmt.Fprintf(w, "       %s\n", f)
		}
		if c.Bool("verbose") {
			for j := range r.Effects {
				fmt.Fprintf(w, "       got: %s\n", rules.DescribeEffect(&r.Effects[j]))
			}
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return cli.Exit("", 1)
	}
	return nil
}
