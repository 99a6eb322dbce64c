package rules

import (
	"errors"
	"fmt"
)

// Sentinel errors. Run-time failures of a rule on a row wrap one of these (errors.Is-able), so
// the caller can tell a NULL in the data from a rule that is wrong for every row.
var (
	// ErrNull: a value the rule needs (key, recipient, fire time, entity, an operand of <, +, …)
	// is NULL or missing in the row.
	ErrNull = errors.New("value is NULL")
	// ErrType: a value has a type the operation does not accept (e.g. a string compared with a
	// number, a condition that is not a bool).
	ErrType = errors.New("wrong type")
	// ErrPhone: a recipient is not a phone number e164() can normalise.
	ErrPhone = errors.New("invalid phone number")
	// ErrUnknownRule: a name (in Set.Recheck, a fixture) names no loaded rule.
	ErrUnknownRule = errors.New("unknown rule")
	// ErrFixture: a fixture file is malformed (wrapped by a positioned *Error).
	ErrFixture = errors.New("invalid fixture")
)

// Error is one problem in a rule file, positioned like a compiler message: "file:line:col: msg".
// Line and Col are 1-based; Col counts characters. LoadDir returns every problem it finds as an
// errors.Join of *Error values, so errors.As finds the first and a type switch over
// Unwrap() []error finds them all.
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
	Err  error // the underlying cause, if any (e.g. expr's *file.Error); Msg already contains its text
}

// Error returns "file:line:col: msg".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Unwrap returns the cause, so errors.Is/As see through the position.
func (e *Error) Unwrap() error { return e.Err }

// Errors flattens err (as returned by LoadDir or RunFixtures) into its positioned problems.
// An error that is not an *Error is returned as an *Error with only Msg set.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var pe *Error
		if errors.As(err, &pe) {
			out = append(out, pe)
			return
		}
		out = append(out, &Error{Msg: err.Error(), Err: err})
	}
	walk(err)
	return out
}
