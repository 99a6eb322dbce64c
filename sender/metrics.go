package sender

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// senderMetrics holds the sender's series. Label values come from bounded sets only: channel
// and rule names from the config, Reason constants.
type senderMetrics struct {
	set         *metrics.Set
	lateness    *metrics.Histogram
	claimErrors *metrics.Counter
	writeErrors *metrics.Counter
	byLabels    sync.Map // labelKey → *metrics.Counter or *metrics.Histogram
}

type labelKey struct{ metric, a, b string }

func newSenderMetrics(set *metrics.Set) *senderMetrics {
	return &senderMetrics{
		set:         set,
		lateness:    set.GetOrCreateHistogram(`notifier_fire_lateness_seconds`),
		claimErrors: set.GetOrCreateCounter(`notifier_sender_claim_errors_total`),
		writeErrors: set.GetOrCreateCounter(`notifier_sender_complete_errors_total`),
	}
}

// counter returns the counter `metric{la="a",lb="b"}` (lb may be empty for one label).
func (sm *senderMetrics) counter(metric, la, a, lb, b string) *metrics.Counter {
	k := labelKey{metric, a, b}
	if c, ok := sm.byLabels.Load(k); ok {
		return c.(*metrics.Counter)
	}
	name := fmt.Sprintf(`%s{%s=%q}`, metric, la, a)
	if lb != "" {
		name = fmt.Sprintf(`%s{%s=%q,%s=%q}`, metric, la, a, lb, b)
	}
	c := sm.set.GetOrCreateCounter(name)
	sm.byLabels.Store(k, c)
	return c
}

func (sm *senderMetrics) duration(channel string) *metrics.Histogram {
	k := labelKey{"duration", channel, ""}
	if h, ok := sm.byLabels.Load(k); ok {
		return h.(*metrics.Histogram)
	}
	h := sm.set.GetOrCreateHistogram(fmt.Sprintf(`notifier_send_duration_seconds{channel=%q}`, channel))
	sm.byLabels.Store(k, h)
	return h
}
