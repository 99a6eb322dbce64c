package cdc

// Connected reports whether Run currently holds an open binlog stream to the server: true from
// the moment the dump starts (before any event arrives, so an idle server counts as connected)
// until the stream drops. It is the per-Reader view of the notifier_cdc_connected gauge and is
// safe to call from any goroutine.
func (r *Reader) Connected() bool { return r.live.Load() > 0 }

// setConnected moves this Reader's stream state and the process-wide gauge together.
func (r *Reader) setConnected(up bool) {
	if up {
		r.live.Add(1)
		connected.Add(1)
		return
	}
	r.live.Add(-1)
	connected.Add(-1)
}
