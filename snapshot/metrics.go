package snapshot

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

var running = metrics.NewGauge(`notifier_snapshot_running`, nil)

// rowsCounter is notifier_snapshot_rows_total{table}: rows committed by snapshots.
func rowsCounter(table string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`notifier_snapshot_rows_total{table=%q}`, table))
}
