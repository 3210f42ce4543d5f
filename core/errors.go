package core

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel kinds of RPC failure. Callers tell them apart with errors.Is.
var (
	// ErrNotFound: no such module type, instance or function.
	ErrNotFound = errors.New("not found")
	// ErrTimeout: the call's deadline passed before a reply arrived.
	ErrTimeout = errors.New("timeout")
	// ErrTransport: the call could not be delivered, or its transport closed
	// before the reply came.
	ErrTransport = errors.New("transport closed")
	// ErrRemote: the handler ran and returned an error.
	ErrRemote = errors.New("remote error")
	// ErrRemotePanic: the handler panicked; the server recovered and stays up.
	ErrRemotePanic = errors.New("remote panic")
	// ErrBadRequest: the arguments could not be decoded into the handler's types.
	ErrBadRequest = errors.New("bad request")
)

// Error is an RPC failure of a known Kind. Its text is what a client sees:
// for ErrRemote exactly the handler's error text.
type Error struct {
	Kind  error  // one of the sentinels above
	Msg   string // human-readable text, without the kind prefix for ErrRemote
	Cause error  // the original error when caller and callee share a process
	// Code is the handler's own machine-readable code for an ErrRemote
	// (see CodeErrorf); empty otherwise. It crosses processes.
	Code string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match both the kind and, in-process, the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// NotFoundError is the error of a call to a module type or instance that
// no transport serves. Every transport returns it, so the text and
// errors.Is(err, ErrNotFound) are the same in-process and across processes.
func NotFoundError(to Target) error {
	if to.ID != "" {
		return Errorf(ErrNotFound, "Service(type:%s id:%s) not found", to.Type, to.ID)
	}
	return Errorf(ErrNotFound, "Service(type:%s) not found", to.Type)
}

// TimeoutError is the error of a call to fn whose context ended before its
// reply came: ErrTimeout, with the context's error (DeadlineExceeded or
// Canceled) as its cause. Every transport returns it.
func TimeoutError(ctx context.Context, to Target, fn string) error {
	err := ctx.Err()
	msg := "deadline exceeded"
	if errors.Is(err, context.Canceled) {
		msg = "canceled"
	}
	return &Error{Kind: ErrTimeout, Msg: "call " + to.String() + "." + fn + ": " + msg, Cause: err}
}

// Errorf returns an *Error of the given kind.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// NewError returns a remote error whose text is msg. Legacy handlers that
// return (result, errString) use it.
func NewError(msg string) *Error { return &Error{Kind: ErrRemote, Msg: msg} }

// CodeErrorf returns a handler error with a machine-readable code that
// clients get beside the text ("Code" in the reply), such as
// CodeErrorf("room_full", "room %s is full", name). Codes are the game's
// own; keep them short and stable (letters, digits, '_', '.', '-').
func CodeErrorf(code, format string, args ...any) *Error {
	return &Error{Kind: ErrRemote, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// The codes clients get beside an error's text: stable, unlike the text.
// A handler's own error has its CodeErrorf code, or CodeError.
const (
	CodeError        = "error"         // the handler returned an error without a code
	CodeNotFound     = "not_found"     // no such module type or handler
	CodeTimeout      = "timeout"       // the call's deadline passed
	CodeUnavailable  = "unavailable"   // the call could not be delivered; try again later
	CodeInternal     = "internal"      // a handler panicked or its result could not be encoded
	CodeBadRequest   = "bad_request"   // the request could not be decoded into the handler's types
	CodeBadJSON      = "bad_json"      // the payload is not JSON
	CodeBadRoute     = "bad_route"     // the topic's handler does not begin with Handler_
	CodeRateLimited  = "rate_limited"  // over the connection's request rate or in-flight limit
	CodeShuttingDown = "shutting_down" // the gate is stopping; reconnect elsewhere
)

// ClientCode returns the code a client gets for err: the handler's own
// code, or the one of err's kind.
func ClientCode(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != "" && e.Kind == ErrRemote {
		return e.Code
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrTimeout):
		return CodeTimeout
	case errors.Is(err, ErrTransport):
		return CodeUnavailable
	case errors.Is(err, ErrRemotePanic):
		return CodeInternal
	case errors.Is(err, ErrBadRequest):
		return CodeBadRequest
	}
	return CodeError
}

// AsRemote wraps a handler's error as ErrRemote unless it already is an *Error.
func AsRemote(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: ErrRemote, Msg: err.Error(), Cause: err}
}

// Kind codes are how error kinds cross a process boundary.
const (
	codeOK = iota
	codeNotFound
	codeTimeout
	codeTransport
	codeRemote
	codePanic
	codeBadRequest
)

var kinds = [...]error{nil, ErrNotFound, ErrTimeout, ErrTransport, ErrRemote, ErrRemotePanic, ErrBadRequest}

// ErrorCode returns the wire code of err's kind (0 for nil).
func ErrorCode(err error) int {
	if err == nil {
		return codeOK
	}
	for i := 1; i < len(kinds); i++ {
		if errors.Is(err, kinds[i]) {
			return i
		}
	}
	return codeRemote
}

// ErrorFromCode rebuilds an error received from another process.
func ErrorFromCode(code int, msg string) error {
	if code <= codeOK {
		return nil
	}
	if code >= len(kinds) {
		code = codeRemote
	}
	e := &Error{Kind: kinds[code], Msg: msg}
	if e.Kind == ErrTimeout {
		// A call times out on the serving side only when its deadline
		// passed (the caller's cancellation does not cross processes):
		// errors.Is(err, context.DeadlineExceeded) holds as it does in-process.
		e.Cause = context.DeadlineExceeded
	}
	return e
}
