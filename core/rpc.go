package core

import (
	"context"
	"io"
	"time"
)

// SupportGeneratedVersion2 is referenced by generated code, so a generator
// and a runtime that do not fit fail at compile time. Version 2: generated
// code calls package core/coregen (version 1 called helpers in core).
const SupportGeneratedVersion2 = true

// Target names the callee: one instance when ID is set, otherwise any
// instance of Type (load balanced).
type Target struct {
	Type string
	ID   string
}

func (t Target) String() string {
	if t.ID != "" {
		return t.Type + "(" + t.ID + ")"
	}
	return t.Type
}

// Request is one call. Ownership passes to the callee once sent: the caller
// must not touch Arg after Invoke. The callee may use Raw and the Request
// only until it returns (or, across processes, until the transport has
// sent it): a caller may reuse Raw's memory once Invoke returned the
// callee's reply, never after a timeout, when the handler may still run.
// Generated dispatch decodes Raw into fresh values (json-iterator copies
// strings and raw messages), so nothing a handler gets aliases it; a
// handler that reads Raw itself and keeps it must copy it.
type Request struct {
	Fn      string       // function name, e.g. "Handler_Say"
	Session *SessionData // snapshot of the client's session, may be nil
	// Arg is the typed argument in-process (a []any for several positional
	// arguments). Raw is its encoding when the call came from a client or
	// another process. At most one is set.
	Arg     any
	Raw     []byte
	NoReply bool
	// Deadline is filled from the caller's context by the invoker; transports
	// across processes send the remaining time, not this wall-clock value.
	Deadline time.Time
	// Trace is the call's trace context: the gate sets it per request, the
	// invoker fills it from the caller's context when unset, transports
	// carry it. The handler's ctx continues it.
	Trace TraceContext
	// Start is when the caller handed the call over, when it read the
	// clock then anyway (the gate does, per request); zero: unknown. The
	// invoker and the handler's timing use it instead of reading the clock
	// again (a clock read costs ~180 ns on a VM's kvm-clock). It stays in
	// the process.
	Start time.Time
}

// Reply is the outcome of one call. Result belongs to the caller once
// returned. Raw is the encoded result when it came from another process.
type Reply struct {
	Result any
	Raw    []byte
	Err    error
}

// Responder receives the reply of a call. It is called at most once.
type Responder interface {
	Respond(Reply)
}

// Endpoint is what a transport delivers calls to: a module's RPC server.
// resp is nil for no-reply calls.
type Endpoint interface {
	Serve(ctx context.Context, req *Request, resp Responder)
}

// QueueingEndpoint is an Endpoint whose ServeNoWait never waits for room
// in a Sync method's queue (the Server's): a transport's delivery loop,
// which holds the calls of many methods, calls it, so that a backlog of
// one Sync method never holds up the others' calls.
type QueueingEndpoint interface {
	Endpoint
	ServeNoWait(ctx context.Context, req *Request, resp Responder)
}

// InlineEndpoint is an Endpoint that can also run a call in the caller's
// goroutine, saving the hand-off to a worker and back (the Server does, for
// its concurrent methods). ok false: the call must go through Serve (a
// Sync method, an unknown one, a closing server, a no-reply call). The
// caller must be on a goroutine of its own, so RegisterGO's promise holds:
// a slow call never blocks another.
type InlineEndpoint interface {
	Endpoint
	ServeInline(ctx context.Context, req *Request) (rep Reply, ok bool)
}

// InlineTransport is a Transport that delivers to endpoints of this process
// and so can run a concurrent handler in the caller's goroutine (the
// in-process transport). InvokeInline is Invoke otherwise.
type InlineTransport interface {
	Transport
	InvokeInline(ctx context.Context, to Target, req *Request) (Reply, error)
}

// Transport carries calls to endpoints. Two implementations exist: the
// in-process one and the RabbitMQ one; nothing above this seam knows which
// carries a given call.
type Transport interface {
	// Listen makes ep reachable as instance id of module type typ until the
	// returned closer is closed.
	Listen(typ, id string, ep Endpoint) (io.Closer, error)
	// Invoke delivers req to one endpoint of to and waits for the reply,
	// until ctx is done. A no-reply call returns once delivered. Every
	// failure is an *Error of a known kind.
	Invoke(ctx context.Context, to Target, req *Request) (Reply, error)
	// Reaches reports whether the transport can deliver to the target now.
	Reaches(to Target) bool
	Close() error
}

// Invoker is what callers (generated clients, the gate) use to make calls.
// The App is the usual one.
type Invoker interface {
	Invoke(ctx context.Context, to Target, req *Request) (Reply, error)
}

// CallResult converts a reply into the typed result T: directly when the
// callee shared this process, by decoding when it came from elsewhere.
// Generated clients call it.
func CallResult[T any](rep Reply, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if v, ok := rep.Result.(T); ok {
		return v, nil
	}
	if rep.Result == nil && rep.Raw != nil {
		var v T
		if p, ok := any(&v).(**SessionData); ok {
			// A session call's reply from a gate in another process.
			if s, ok := decodeSessionFast(rep.Raw); ok {
				*p = s
				return v, nil
			}
		}
		if err := JSON.Unmarshal(rep.Raw, &v); err != nil {
			return zero, Errorf(ErrBadRequest, "decode result as %T: %v", zero, err)
		}
		return v, nil
	}
	if rep.Result == nil {
		return zero, nil
	}
	return zero, Errorf(ErrBadRequest, "result is %T, want %T", rep.Result, zero)
}
