// Package rules loads rule files and turns one row change into effects: send a message now,
// schedule a reminder, cancel a pending reminder, add an item to a digest.
//
// Guarantees:
//   - Loading is all or nothing, and every problem is reported with its position
//     ("file:line:col: msg", errors.Join of *Error): YAML syntax, unknown or repeated keys,
//     missing fields, duplicate names, unknown channels, bad durations, timezones and cron specs,
//     expression and template errors mapped into the file (block and quoted scalars included).
//   - Evaluation is pure and deterministic: the same change, meta and rules give the same
//     effects with the same keys, whenever and however often it runs. `now()` is the
//     transaction's commit time, not the wall clock, so replays and restarts agree.
//   - Evaluation never fails as a whole and never panics on data: a rule that errors on a row
//     yields an EffectFailed naming the rule and the row (invariant 5).
//   - A Set is immutable and shared; an Evaluator (one per goroutine) holds the expression VM.
//
// # Rule files
//
// A directory of *.yaml / *.yml files; each is a mapping with
//
//	defaults:          # optional, for the rules and sweeps of this file
//	  timezone: Europe/Berlin   # IANA name (else Options.DefaultTimezone, else UTC)
//	  locale: de                # for templates (else "en")
//	  region: DE                # phone region for e164() (else Options.DefaultRegion)
//	  channel: sms              # default channel
//	  max_per_minute: 500       # default blast-radius guard (0 = none)
//	  max_segments: 3           # default SMS segment cap (0 = none)
//	rules: [ ... ]
//	sweeps: [ ... ]
//	x-anything: ...    # ignored: a place for YAML anchors, merged with `<<: *anchor`
//
// A rule:
//
//	name:        unique across all files; letters, digits, _ - . (it prefixes keys and slots)
//	table:       schema.table, '*' matches any run of characters (lending.*)
//	on:          [insert, update, delete, snapshot] (one or a list; required)
//	when:        bool expression; absent = always
//	key:         dedupe key expression; the message key is "<rule>:<value>" (a reminder's:
//	             "<rule>:<value>@<fire time>"). Default: see Effect.Key — for a plain rule the
//	             binlog coordinates + row index, which is replay-safe only from the same binlog
//	to:          recipient expression (required), e.g. e164(new.phone)
//	channel:     channel name (or defaults.channel); checked against Options.Channels
//	kind:        sms | email | webhook (else from Options.ChannelKinds, else inferred)
//	template:    message text (render's template language); or
//	template_file: a file beside the rule file
//	subject, html: e-mail subject and HTML part
//	vars:        constants, `vars.x` in expressions and templates
//	timezone, locale, region, max_segments, max_per_minute: override the defaults
//	quiet_hours: {from: "21:00", to: "08:00", timezone: Europe/Berlin}  (exposed; the sender defers)
//	# reminders (issue 4):
//	at:          fire-time expression, e.g. at_local(new.due_date, -3, "09:00")
//	entity:      expression naming the thing reminded about; default the row's id. The slot
//	             "<rule>/<entity>" holds at most one pending reminder: a change that moves `at`
//	             reschedules it, `when` turning false (on update/delete/snapshot) or a delete
//	             cancels it
//	misfire:     fire (default) | {skip_older_than: 2h}
//	recheck:     bool expression re-checked at fire time on the latest row (Set.Recheck)
//	# digests (issue 2):
//	digest:      {group_by: new.supplier_id, every: 4h, max_items: 50}; windows are aligned
//	             to UTC; the template sees Rule.DigestData: items (the Data of the first
//	             max_items items), count, more, group, to, window, vars, rule
//
// A sweep (issue 7) is a scheduled query whose rows are evaluated like a rule's (op "sweep",
// the row in `new`):
//
//	name, schedule: "0 9 24 12 *" (5-field cron, in timezone), timezone, query: SQL,
//	key_column: the column identifying a row (default key "<sweep>:<run time>:<value>"),
//	when, key, to, channel, kind, template, template_file, subject, html, vars, locale, region,
//	max_segments, max_per_minute, quiet_hours
//
// Durations are Go durations (90s, 15m, 4h) or days (3d).
//
// # Expressions
//
// expr-lang (https://expr-lang.org) over the environment
//
//	new, old      the row after / before the change (maps; nil for insert / delete)
//	op            "insert", "update", "delete", "snapshot" or "sweep"
//	table         "schema.table"
//	commit_time   the transaction's commit time (a sweep: its scheduled run time)
//	vars          the rule's constants
//
// Comparison and arithmetic work across the row's value types (int64, uint64, float64,
// decimal.Decimal for DECIMAL, time.Time, string; see ops.go): `new.amount > 1000`,
// `new.due_date < commit_time`, `new.id + ":" + new.due_date` (a string on one side
// concatenates). NULL equals only NULL; ordering or arithmetic on NULL fails the message.
//
// Helpers besides expr's built-ins (lower, upper, trim, split, duration, len, ...):
//
//	now()                     the commit time (deterministic; see above)
//	date("2026-03-31")        a DATE: midnight UTC, equal to a DATE column of that day
//	date("2026-03-31 09:00"), date(s, "02.01.2006 15:04"), date(s, layout, "UTC")
//	                          a time read in the rule's timezone (or the one given)
//	changed("col")            old.col and new.col differ (NULL counts as a value)
//	became("col", v)          new.col == v, and there is no old image or old.col != v
//	days(t1, t2)              calendar days from t1 to t2 in the rule's timezone
//	addDays(t, n)             t plus n calendar days, wall clock kept
//	at_local(t, n, "09:00")   09:00 in the rule's timezone on t's date plus n days (DST-safe)
//	e164(phone), e164(phone, "DE")  E.164 normalisation; an invalid number fails the message
//
// The calendar date of a time is taken in the rule's timezone, except a DATE column (which cdc
// delivers as midnight UTC): it keeps its own date.
//
// # Fixtures
//
// RunFixtures runs a YAML file of cases (a change and the effects and rendered messages it
// must produce) against a Set: `notifier rules test`. See fixture.go for the format and
// configs/fixtures/rules_test.yaml for an example.
package rules
