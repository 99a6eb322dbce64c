// Package sender delivers due messages from the state store through channels (HTTP webhooks,
// SMS providers, SMTP, NATS JetStream, files) and records each outcome back in the store.
//
// Guarantees: a message is handed to a channel only after the store has durably marked it
// `sending` (Store.Claim); its outcome (sent, retry at T, deferred to T, dead with reason,
// uncertain) is written back with Store.Complete before the sender forgets it. On a channel that
// is not idempotent, a call that may have reached the provider but whose result is unknown
// (timeout, broken connection) makes the message uncertain, never resent by itself (DESIGN.md
// invariant 3). Channel policies (concurrency, rate per second and per day, per-recipient caps,
// quiet hours, retries with backoff up to max_attempts and max_age) are applied per channel.
package sender
