package admin

import "errors"

// The sentinels of this package. Errors returned by Client wrap them (and state.ErrNotFound for
// a 404) so that callers can use errors.Is whichever mode they run in.
var (
	// ErrUnauthorized: the request had no bearer token or a wrong one (HTTP 401).
	ErrUnauthorized = errors.New("admin: unauthorized")
	// ErrUnavailable: the admin API could not be reached at all (connection refused, no such
	// host, timeout before any response). The CLI falls back to opening the store directly.
	ErrUnavailable = errors.New("admin: service not reachable")
	// ErrBadRequest: a query parameter or body was malformed (HTTP 400).
	ErrBadRequest = errors.New("admin: bad request")
	// ErrConflict: the action is not allowed in the message's current state (HTTP 409).
	ErrConflict = errors.New("admin: conflict")
	// ErrRewindUnsupported: the running service was started without a Rewind function, so its
	// checkpoint cannot be moved while it runs (HTTP 501). Stop it and use the offline mode.
	ErrRewindUnsupported = errors.New("admin: checkpoint rewind not supported by the running service")
	// ErrReloadUnsupported: the running service was started without a Reload function (HTTP 501).
	ErrReloadUnsupported = errors.New("admin: reload not supported by the running service")
)
