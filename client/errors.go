package client

import (
	"errors"
	"fmt"

	"github.com/flashstock/flashstock/api"
)

// The server's errors come back as *api.Error, which matches by code: these sentinels hold
// only a code, so errors.Is(err, client.ErrSoldOut) holds for any sold-out answer whatever
// its message. Use errors.As with *api.Error to read the server's message.
var (
	ErrInvalidArgument    = &api.Error{Code: api.InvalidArgument}
	ErrUnauthorized       = &api.Error{Code: api.Unauthorized}
	ErrNotFound           = &api.Error{Code: api.NotFound}
	ErrAlreadyExists      = &api.Error{Code: api.AlreadyExists}
	ErrSoldOut            = &api.Error{Code: api.SoldOut}
	ErrInsufficientStock  = &api.Error{Code: api.InsufficientStock}
	ErrLimitExceeded      = &api.Error{Code: api.LimitExceeded}
	ErrExpired            = &api.Error{Code: api.Expired}
	ErrFailedPrecondition = &api.Error{Code: api.FailedPrecondition}
	ErrOverflow           = &api.Error{Code: api.Overflow}
	ErrCrossGroup         = &api.Error{Code: api.CrossGroup}
	// The retryable codes reach the caller only when the client gave up retrying (the
	// context ended or MaxAttempts was reached); the error then also matches the context's
	// error, if that is why.
	ErrOverloaded = &api.Error{Code: api.Overloaded}
	ErrNotLeader  = &api.Error{Code: api.NotLeader}
	ErrNoLeader   = &api.Error{Code: api.NoLeader}
	ErrTimeout    = &api.Error{Code: api.Timeout}
	ErrInternal   = &api.Error{Code: api.Internal}
)

// ErrUnavailable matches a failure to talk to a node at all (connection refused or reset,
// no answer within AttemptTimeout).
var ErrUnavailable = errors.New("flashstock: node unavailable")

// ErrNotSent matches a call that no node can have received: every try failed before a
// connection was made. A mutation that fails with it was not applied; calling again, with
// the same request id or a new one, is safe.
var ErrNotSent = errors.New("flashstock: request not sent")

// UnreachableError is returned when every endpoint refused the connection (or could not be
// dialed) and no try of the call had been sent before: the call stops at once instead of
// backing off, and says the request was not sent. It matches ErrUnavailable and
// ErrNotSent.
type UnreachableError struct {
	Attempts  int
	RequestID string // empty for reads
	Last      error  // the last dial error
}

func (e *UnreachableError) Error() string {
	msg := fmt.Sprintf("flashstock: cannot reach any endpoint (%d attempt(s)); last error: %v", e.Attempts, e.Last)
	if e.RequestID != "" {
		msg += " (not sent: nothing was applied; request_id " + e.RequestID + ")"
	}
	return msg
}

func (e *UnreachableError) Unwrap() []error { return []error{ErrUnavailable, ErrNotSent, e.Last} }

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("flashstock: client closed")

// transportError is a failed exchange with one node; it matches ErrUnavailable.
type transportError struct {
	addr string
	err  error
}

func (e *transportError) Error() string   { return "flashstock: " + e.addr + ": " + e.err.Error() }
func (e *transportError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// GaveUpError is returned when a call stopped retrying before a definite answer: Cause is
// why it stopped (the context's error, or nil when MaxAttempts ran out), Last the last
// retryable failure. errors.Is matches both, so a caller may test for
// context.DeadlineExceeded as well as for ErrNoLeader or ErrUnavailable.
//
// For a mutation the outcome is unknown: it may have been applied. Calling again with the
// same request id (WithRequestID) returns the first answer if it was.
type GaveUpError struct {
	Attempts  int
	RequestID string // empty for reads
	Cause     error
	Last      error
}

func (e *GaveUpError) Error() string {
	why := "gave up"
	if e.Cause != nil {
		why = e.Cause.Error()
	}
	msg := fmt.Sprintf("flashstock: %s after %d attempt(s)", why, e.Attempts)
	if e.Last != nil {
		msg += "; last error: " + e.Last.Error()
	}
	if e.RequestID != "" {
		msg += " (outcome unknown; request_id " + e.RequestID + ")"
	}
	return msg
}

func (e *GaveUpError) Unwrap() []error {
	var out []error
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	if e.Last != nil {
		out = append(out, e.Last)
	}
	return out
}

// Code returns the wire code of err, api.OK for nil, and "" when err carries none (a
// transport or context error).
func Code(err error) api.Code {
	if err == nil {
		return api.OK
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}
