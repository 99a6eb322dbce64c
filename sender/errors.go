package sender

import "errors"

// Sentinel errors of package sender.
var (
	// ErrUnknownType: a channel's type is not one NewChannel knows.
	ErrUnknownType = errors.New("unknown channel type")
	// ErrConfig: a channel's configuration is invalid.
	ErrConfig = errors.New("invalid channel config")
	// ErrUnknownChannel: a message names a channel that is not configured.
	ErrUnknownChannel = errors.New("unknown channel")
)

// Errors of the delivery loop.
var (
	// ErrRunning: Run was called while the Sender is already running.
	ErrRunning = errors.New("sender is already running")
	// ErrDrainTimeout cancels sends still running DrainTimeout after Run's ctx ended.
	ErrDrainTimeout = errors.New("drain timeout: sender stopped")
	// ErrSendTimeout is the cause of an attempt's context when the channel's timeout expires.
	ErrSendTimeout = errors.New("send timeout")
)
