package cdc

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Fixed series of the binlog reader (default set). Transactions, rows and lag are counted by
// the consumer (ingest), which sees what is committed.
var (
	reconnectsTotal  = metrics.NewCounter(`notifier_cdc_reconnects_total`)
	schemaLoadsTotal = metrics.NewCounter(`notifier_cdc_schema_loads_total`)
	snapshotRows     = metrics.NewCounter(`notifier_cdc_snapshot_rows_total`)
	connected        atomic.Int64
	_                = metrics.NewGauge(`notifier_cdc_connected`, func() float64 { return float64(connected.Load()) })
)
