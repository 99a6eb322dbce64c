// Package ingest is the pipeline between the binlog and the store: cdc → rules → render → state.
//
// It reads committed transactions (*cdc.Txn) from a channel, evaluates the current rule set
// against every row change, renders each resulting message with its rule's template, and writes
// the messages, reminder schedules, cancellations and digest items of one or more transactions
// together with the checkpoint (the Position after the last of them) in ONE state.Store.Apply.
//
// Guarantees:
//
//   - Invariant 1 (checkpoint with effects): a transaction's effects and the checkpoint that
//     moves past it are committed in the same Badger transaction. Transactions are grouped
//     (group commit: a batch is handed to the committer about every FlushInterval, or as soon
//     as it reaches the store's MaxBatchCount), but one binlog transaction is never split
//     across two Applies; a transaction whose effects alone exceed the cap stops the pipeline
//     with ErrTxnTooBig, which says so.
//   - Invariant 2 (deterministic keys): rules build default keys from KeyPosition, the GTID
//     set alone where the server has GTIDs (file:pos otherwise), so a fail-over to another
//     replica of the same source re-derives the same keys.
//   - Reminder slots follow binlog order: state.Apply applies a batch's schedules before its
//     cancels, so a cancel that a later schedule of its slot follows in the same group commit
//     is left out (Builder.Finish); a row flipped back and forth ends with the reminder its
//     last change asks for, as with one Apply per transaction.
//   - Reminder slots converge on replay (invariant 2): every effect on a slot carries its
//     transaction's version (TxnVersion: the size of the GTID set after it, or file index and
//     pos without GTIDs), strictly increasing along the binlog and the same on every replay;
//     state.Apply skips an effect not newer than its slot's, so a replay from an older
//     checkpoint never brings back, even briefly, a reminder a later transaction moved or
//     cancelled. Snapshot rows have no version (they never hide a later binlog change).
//   - One Builder turns effects into store operations for every row source: the binlog here,
//     sweeps (package sweep) and snapshots (through an Ingester).
//   - Evaluation overlaps the commit: a committer goroutine fsyncs batch N while the evaluator
//     builds batch N+1.
//   - Invariant 5 (bad input never stops the world): a template that fails on a row stores that
//     message as dead with reason "template" and the error; a rule whose condition, key or
//     recipient fails on a row stores a dead message with reason "rule_error" (key derived from
//     the rule, the transaction's position and the row index, so a replay dedupes it), logs it
//     and counts it in notifier_rule_errors_total{rule}. Other messages of the same row and
//     transaction are unaffected.
//   - Hot reload: SetRules swaps the rule set atomically; the evaluator loads it once per
//     transaction, so a swap takes effect between binlog transactions, never inside one.
//   - Blast-radius guard: a rule that creates more than its max_per_minute messages (or the
//     default) within one minute of binlog commit time is paused: its further messages are
//     stored as held (released or dropped by an operator) until a whole minute passes under
//     the limit. Snapshot rows (cdc.OpSnapshot) are neither counted nor held: a snapshot
//     legitimately creates a message for every row it reads.
//   - Digests: RunDigests flushes closed digest windows into one rendered message each,
//     exactly once (state.FlushDigest is atomic).
//   - Fire time: FireGate, the sender's view of the store, applies the rules' own delivery
//     policies to claimed messages — misfire (skip a reminder fired too late), quiet hours
//     (defer), recheck (skip a reminder whose row no longer satisfies the rule).
package ingest
