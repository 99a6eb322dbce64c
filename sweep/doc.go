// Package sweep runs the rules' sweeps: scheduled queries against the replica whose rows go
// through when/key/to/template like a change (rules.Set.EvaluateSweep, op "sweep").
//
// Guarantees:
//
//   - A run is identified by its sweep and its scheduled time (the tick, in the sweep's cron
//     schedule and time zone). Message keys derive from it (by default
//     "<sweep>:<tick>:<key column>"; a key such as "holiday:<user>:<date>" dedupes a second
//     run the same day), so a re-run creates nothing twice.
//   - Keyset pagination on the declared key column: each page's effects and the cursor
//     w/sweep/<name> (the tick, the last key, the row count) are committed in ONE store
//     transaction, so an interrupted run (crash, SIGKILL, stop) resumes after its last
//     committed row, on the next start, for the same tick.
//   - A sweep never runs twice at once: a tick that comes while the previous run is still
//     going is skipped (counted in notifier_sweep_skipped_total), and RunOnce refuses with
//     ErrRunning.
//   - A tick missed while the service was down runs late, once, if it is no older than
//     Options.CatchUp; older ones are skipped.
//   - A page's effects become store operations as binlog rows' do (ingest.Builder), without
//     the blast-radius guard: a sweep is a planned mass send, paced by the channels' rates.
//   - Reads are throttled to Options.RowsPerSecond.
package sweep
