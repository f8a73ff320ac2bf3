package api

import "fmt"

// Error is the body of every non-2xx answer and the error type clients get back:
//
//	{"error":{"code":"sold_out","message":"...","leader":"127.0.0.1:4001"}}
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Leader is the leader's HTTP address, when the answering node knows it.
	Leader string `json:"leader,omitempty"`
}

// ErrorBody wraps Error the way it travels on the wire.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Errorf builds an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is matches by code, so errors.Is(err, &api.Error{Code: api.SoldOut}) holds for any sold-out
// error whatever its message or leader hint.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}
