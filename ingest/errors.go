package ingest

import "errors"

// Sentinel errors of the pipeline.
var (
	// ErrTxnTooBig: one binlog transaction yields more store operations than one Apply may
	// hold (state.Store.MaxBatchCount). It is never split; raise the store's cap or split the
	// transaction on the source.
	ErrTxnTooBig = errors.New("binlog transaction too big for one store batch")
	// ErrNoRules: Options.Rules is nil.
	ErrNoRules = errors.New("no rule set")
	// ErrNoStore: Options.Store is nil.
	ErrNoStore = errors.New("no store")
	// ErrTxnVersion: a transaction's position yields no version (TxnVersion): a GTID set or a
	// binlog file name in an unknown form, or a version over state.MaxTxnVersion.
	ErrTxnVersion = errors.New("no transaction version for position")
)

// Reasons stored on messages the pipeline itself marks dead.
const (
	ReasonTemplate    = "template"     // the rule's template failed on this row
	ReasonRuleError   = "rule_error"   // the rule's condition, key, recipient or time failed
	ReasonNoTemplate  = "no_template"  // the rule has no template for a message effect
	ReasonRuleRemoved = "rule_removed" // a digest window's rule is no longer loaded
	ReasonRulePaused  = "rule_paused"  // held by the blast-radius guard (Builder.Admit)
)
