package sweep

import (
	"notifier/ingest"
	"notifier/render"
	"notifier/rules"
)

// add appends the store operations of one effect of a sweep row to b, as ingest does for
// binlog rows (ingest.Builder), and logs what failed on the row.
func (s *Scheduler) add(b *ingest.Builder, eff *rules.Effect, src *ingest.Source) {
	m := b.Add(eff, src)
	switch {
	case m == nil:
	case eff.Kind == rules.EffectFailed:
		s.log.Warn("rule failed on a sweep row; stored as a dead message", "sweep", m.Rule, "key", m.Key, "error", eff.Err)
	case m.Reason == ingest.ReasonTemplate:
		s.log.Warn("template failed on a sweep row; message stored dead", "sweep", m.Rule, "key", m.Key,
			"to", render.Mask(m.To), "error", m.LastError)
	}
}
