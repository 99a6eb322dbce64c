package render

import (
	"errors"
	"strconv"
)

// Sentinels, matched with errors.Is on the errors Compile and Render return.
var (
	// ErrMissingField: the template names a field the data does not have.
	ErrMissingField = errors.New("missing field")
	// ErrNullField: a NULL value is printed or passed to a helper (use default).
	ErrNullField = errors.New("null field")
	// ErrMaxSegments: the SMS needs more segments than the rule's max_segments.
	ErrMaxSegments = errors.New("too many sms segments")
	// ErrHeaderInjection: the rendered subject contains a line break.
	ErrHeaderInjection = errors.New("line break in subject")
	// errNullArg is returned by a helper given a NULL (rare: fields and variables are checked
	// before the call).
	errNullArg = errors.New("value is NULL (use default)")
)

// Error is a template error positioned in one part of the Spec.
type Error struct {
	// Part is "text", "subject" or "html" (empty for errors about the whole message).
	Part string
	// Line and Col are 1-based, inside the part's source (Col counts bytes); 0 when unknown.
	Line, Col int
	// Msg says what is wrong, without the position.
	Msg string
	// Err is the sentinel or cause, if any (see Unwrap).
	Err error
}

// Error returns "line:col: msg" (or "line: msg", or "msg" when the position is unknown).
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col) + ": " + e.Msg
	case e.Line > 0:
		return strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.Msg
}

// Unwrap returns the sentinel or cause.
func (e *Error) Unwrap() error { return e.Err }
