package sweep

import (
	"context"
	"time"

	"notifier/rules"
)

// Run runs every sweep of the current rules on its schedule until ctx is done, then waits for
// running sweeps to stop (they stop before their next page; what they committed stays, and
// the run resumes on the next start). It first resumes interrupted runs and runs a tick missed
// within Options.CatchUp. A failed run is retried from its cursor after Options.Poll.
func (s *Scheduler) Run(ctx context.Context) error {
	type finished struct {
		name string
		tick time.Time
		err  error
	}
	done := make(chan finished)
	next := map[string]time.Time{}      // sweep → the tick it runs next
	notBefore := map[string]time.Time{} // sweep → retry time after a failure
	active := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := s.opts.Now()
		wake := now.Add(s.opts.Poll)
		for _, sw := range s.rules.Load().Sweeps {
			t, ok := next[sw.Name]
			if !ok {
				var err error
				if t, err = s.firstTick(sw, now); err != nil {
					s.log.Error("sweep cursor unreadable; sweep not scheduled", "sweep", sw.Name, "error", err)
					continue
				}
				next[sw.Name] = t
			}
			if r := notBefore[sw.Name]; r.After(t) {
				t = r
			}
			if t.After(now) {
				wake = minTime(wake, t)
				continue
			}
			if !s.claim(sw.Name) { // running (this loop's run, or RunOnce)
				continue
			}
			active++
			go func(sw *rules.Sweep, tick time.Time) {
				defer s.release(sw.Name)
				_, err := s.run(ctx, sw, tick)
				done <- finished{sw.Name, tick, err}
			}(sw, next[sw.Name])
		}
		timer.Reset(max(wake.Sub(now), time.Millisecond))
		select {
		case <-ctx.Done():
			for ; active > 0; active-- {
				<-done
			}
			return nil
		case f := <-done:
			active--
			now := s.opts.Now()
			if f.err != nil {
				if ctx.Err() == nil {
					s.log.Error("sweep run failed; retrying from its cursor", "sweep", f.name, "tick", f.tick,
						"in", s.opts.Poll, "error", f.err)
				}
				next[f.name], notBefore[f.name] = f.tick, now.Add(s.opts.Poll)
				continue
			}
			delete(notBefore, f.name)
			sw := find(s.rules.Load(), f.name)
			if sw == nil {
				delete(next, f.name)
				continue
			}
			// Ticks that came while the run was going are skipped: a sweep never runs twice
			// at once, and its next run is the first tick after now.
			n := sw.Next(f.tick)
			for i := 0; !n.After(now) && i < 100_000; i++ {
				skippedCounter(f.name).Inc()
				s.log.Warn("sweep tick skipped: the previous run was still going", "sweep", f.name, "tick", n)
				n = sw.Next(n)
			}
			next[f.name] = n
		case <-timer.C:
		}
	}
}

// firstTick is the tick a sweep runs first after a start: the tick of an interrupted run; else
// the latest tick missed since the last finished run, if within CatchUp; else the next one.
func (s *Scheduler) firstTick(sw *rules.Sweep, now time.Time) (time.Time, error) {
	c, ok, err := LoadCursor(s.opts.Store, sw.Name)
	if err != nil {
		return time.Time{}, err
	}
	if ok && !c.Done {
		return c.Tick, nil
	}
	from := now // a sweep that never ran starts with its next tick
	if ok {
		from = c.Tick
	}
	var latest time.Time
	t := sw.Next(from)
	for i := 0; !t.After(now) && i < 100_000; i++ {
		latest, t = t, sw.Next(t)
	}
	if !latest.IsZero() && s.opts.CatchUp > 0 && now.Sub(latest) <= s.opts.CatchUp {
		return latest, nil
	}
	return t, nil
}

func find(set *rules.Set, name string) *rules.Sweep {
	for _, sw := range set.Sweeps {
		if sw.Name == name {
			return sw
		}
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
