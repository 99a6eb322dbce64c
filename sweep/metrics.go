package sweep

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// Per-sweep series; sweep names come from the rule files (a bounded set).
func runsCounter(sweep string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`notifier_sweep_runs_total{sweep=%q}`, sweep))
}

func errorsCounter(sweep string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`notifier_sweep_errors_total{sweep=%q}`, sweep))
}

func rowsCounter(sweep string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`notifier_sweep_rows_total{sweep=%q}`, sweep))
}

func messagesCounter(sweep string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`notifier_sweep_messages_created_total{sweep=%q}`, sweep))
}

func skippedCounter(sweep string) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`notifier_sweep_skipped_total{sweep=%q}`, sweep))
}

func runningGauge(sweep string) *metrics.Gauge {
	return metrics.GetOrCreateGauge(fmt.Sprintf(`notifier_sweep_running{sweep=%q}`, sweep), nil)
}

func lastSuccessGauge(sweep string) *metrics.Gauge {
	return metrics.GetOrCreateGauge(fmt.Sprintf(`notifier_sweep_last_success_timestamp_seconds{sweep=%q}`, sweep), nil)
}
