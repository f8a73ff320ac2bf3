package main

import (
	"context"
	"errors"
	"io"

	"github.com/flashstock/flashstock/api"
	"github.com/flashstock/flashstock/client"
)

// Exit statuses, so scripts can branch without parsing messages. `stockctl --help` lists
// them.
const (
	exitOK          = 0
	exitError       = 1 // anything else: a server fault, a local file that cannot be written, ...
	exitUsage       = 2 // wrong flags or arguments, or a value the server rejected as invalid
	exitNotFound    = 3 // the SKU, order or member does not exist
	exitRejected    = 4 // the server said no: sold out, insufficient stock, limit, already exists, expired, ...
	exitUnavailable = 5 // no answer: nodes unreachable, no leader, overloaded, timed out (a mutation's outcome is unknown)
)

const exitCodesHelp = `exit status:
  0  success
  1  other error
  2  usage error (bad flag or argument)
  3  not found
  4  rejected: sold out, insufficient stock, per-user limit, already exists, expired, ...
  5  unavailable: no node answered, no leader, overloaded or timed out
     (for a mutation the outcome is unknown: rerun it with the same --request-id)`

// exitCode maps an error of a subcommand to its exit status by the error's wire code,
// never by its message.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	}
	if code := client.Code(err); code != "" {
		switch code {
		case api.InvalidArgument:
			return exitUsage
		case api.NotFound:
			return exitNotFound
		case api.SoldOut, api.InsufficientStock, api.LimitExceeded, api.AlreadyExists, api.Expired,
			api.FailedPrecondition, api.Overflow, api.CrossGroup:
			return exitRejected
		case api.Overloaded, api.NotLeader, api.NoLeader, api.Timeout:
			return exitUnavailable
		}
	}
	if errors.Is(err, client.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return exitUnavailable
	}
	return exitError
}

// jsonError is what a failed command prints on stderr with --json: the API's error body
// ({"error": {"code", "message"}}), with the exit status, and the request id of a mutation
// whose outcome is unknown or that was not sent. Codes are the API's; failures that never
// got an answer have "unavailable" or "timeout", wrong arguments "invalid_argument", the
// rest "error".
type jsonError struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	ExitStatus int    `json:"exit_status"`
	RequestID  string `json:"request_id,omitempty"`
}

func writeJSONError(w io.Writer, err error, status int) {
	e := jsonError{Code: string(client.Code(err)), Message: err.Error(), ExitStatus: status}
	var ae *api.Error
	var h *hinted
	switch {
	case errors.As(err, &ae) && ae.Message != "":
		e.Message = ae.Message
	case errors.As(err, &h):
		e.Message = h.err.Error()
	}
	if e.Code == "" {
		switch {
		case errors.Is(err, errUsage):
			e.Code = string(api.InvalidArgument)
		case errors.Is(err, context.DeadlineExceeded):
			e.Code = string(api.Timeout)
		case status == exitUnavailable:
			e.Code = "unavailable"
		default:
			e.Code = "error"
		}
	}
	var gu *client.GaveUpError
	var ue *client.UnreachableError
	switch {
	case errors.As(err, &gu):
		e.RequestID = gu.RequestID
	case errors.As(err, &ue):
		e.RequestID = ue.RequestID
	}
	_ = writeJSON(w, map[string]jsonError{"error": e})
}
