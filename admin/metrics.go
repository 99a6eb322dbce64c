package admin

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"notifier/state"
)

// The series this package publishes (see deploy/METRICS.md for every series of the product):
//
//	notifier_build_info{version}          1
//	notifier_store_size_bytes{kind}       Badger's LSM and value log sizes (kind="lsm"|"vlog")
//	notifier_messages{state}              messages in the store by state (all states, 0 included)
//	notifier_due_index_size               entries in the due index (scheduled + retry + ready-with-due)
//	notifier_due_oldest_seconds           how long the earliest due entry is overdue, 0 if none is
//
// Store statistics are read at scrape time and cached for Options.StatsTTL.
func (s *Server) newMetrics() *metrics.Set {
	set := metrics.NewSet()
	set.NewGauge(fmt.Sprintf(`notifier_build_info{version=%q}`, s.opts.Version), func() float64 { return 1 })
	set.NewGauge(`notifier_store_size_bytes{kind="lsm"}`, func() float64 { return float64(s.snapshot().lsm) })
	set.NewGauge(`notifier_store_size_bytes{kind="vlog"}`, func() float64 { return float64(s.snapshot().vlog) })
	for _, st := range state.Statuses() {
		set.NewGauge(fmt.Sprintf(`notifier_messages{state=%q}`, st.String()), func() float64 {
			return float64(s.snapshot().counts[st])
		})
	}
	set.NewGauge(`notifier_due_index_size`, func() float64 { return float64(s.snapshot().dueSize) })
	set.NewGauge(`notifier_due_oldest_seconds`, func() float64 {
		snap := s.snapshot()
		if snap.oldest.IsZero() {
			return 0
		}
		return max(0, s.opts.Now().Sub(snap.oldest).Seconds())
	})
	return set
}

// statsCache holds the last store statistics read for a scrape.
type statsCache struct {
	mu   sync.Mutex
	at   time.Time
	last storeStats
}

type storeStats struct {
	counts    map[state.Status]int
	dueSize   int
	oldest    time.Time
	lsm, vlog int64
}

// snapshot returns the store statistics, read at most once per StatsTTL. A failed read keeps
// the previous values (and logs): a scrape never fails because of the store.
func (s *Server) snapshot() storeStats {
	c := &s.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.opts.Now()
	if !c.at.IsZero() && now.Sub(c.at) < s.opts.StatsTTL {
		return c.last
	}
	c.at = now
	// The scrape has no context of its own; bound the count by the TTL.
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StatsTTL)
	defer cancel()
	counts, err := s.opts.Store.Counts(ctx)
	if err != nil {
		s.opts.Logger.Warn("metrics: count messages", "err", err)
	} else {
		c.last.counts = counts
	}
	if size, oldest, err := s.opts.Store.DueStats(); err != nil {
		s.opts.Logger.Warn("metrics: due index stats", "err", err)
	} else {
		c.last.dueSize, c.last.oldest = size, oldest
	}
	c.last.lsm, c.last.vlog = s.opts.Store.Size()
	return c.last
}
