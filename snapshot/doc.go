// Package snapshot takes the initial snapshot (and any re-snapshot) of the tables whose rules
// opt in to op `snapshot`: it reads each table in primary-key order inside a consistent
// snapshot of the replica (cdc.Reader.Snapshot: no FTWRL, no mysqldump) and feeds the rows as
// cdc.Txns with OpSnapshot changes through the ordinary ingest pipeline, so rules, templates,
// the blast-radius guard and the store are the same as for binlog rows.
//
// Guarantees:
//
//   - Position first. The binlog position of the first table's snapshot is stored with the
//     first page's effects (as the checkpoint when Options.MoveCheckpoint), so streaming the
//     binlog from it afterwards covers every change made during and after the snapshot. Rows
//     read twice (snapshot, then binlog) are harmless: message keys are deterministic and
//     reminders are reconciled by slot; snapshot reminders carry no version, so they never
//     hide a later binlog change of the same row.
//   - Resumable. The per-table cursor w/snapshot/<table> (the last primary key read) is written
//     in the same store transaction as the effects of the rows up to it, so a crash mid-table
//     continues after the last committed row, and nothing is created twice.
//   - Throttled: at most Options.RowsPerSecond rows per second are read from the replica.
//
// A run is recorded in the cursor w/snapshot: its tables, its first position, and whether it
// finished. Run resumes an unfinished run before starting a new one; the service calls Pending
// before streaming and finishes such a run first.
package snapshot
