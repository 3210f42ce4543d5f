package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// MethodHandler is the generated glue for one method: it takes the argument
// out of req (typed in-process, decoding otherwise), calls the method on srv
// and returns its result. inv lets the handler call back (e.g. the gate that
// owns the session).
type MethodHandler func(srv any, ctx context.Context, inv Invoker, req *Request) (any, error)

// MethodDesc describes one callable method of a module.
type MethodDesc struct {
	Name string // what callers send as Request.Fn, e.g. "Handler_Say"
	// Sync runs the method on the server's single goroutine, one call at a
	// time (mqant's Register). The default runs calls concurrently
	// (mqant's RegisterGO).
	Sync    bool
	Handler MethodHandler
}

// ModuleDesc is the descriptor table generated for a module type.
type ModuleDesc struct {
	Type    string // module type, e.g. "Chat"
	Methods []MethodDesc
}

// described holds the descriptor tables of the generated packages linked
// into the binary, by module type, so the start can tell a module whose
// generated registration was forgotten from one that has no methods.
var described sync.Map // string -> *ModuleDesc

// Describe records a generated descriptor table; generated code calls it
// from init.
func Describe(desc *ModuleDesc) { described.Store(desc.Type, desc) }

// Described returns the generated descriptor table of a module type, when
// the binary links its generated package.
func Described(typ string) (*ModuleDesc, bool) {
	d, ok := described.Load(typ)
	if !ok {
		return nil, false
	}
	return d.(*ModuleDesc), true
}

// Has reports whether the table has method fn.
func (d *ModuleDesc) Has(fn string) bool {
	for _, m := range d.Methods {
		if m.Name == fn {
			return true
		}
	}
	return false
}

type methodEntry struct {
	desc    MethodDesc
	impl    any
	metrics *methodMetrics // nil: not measured
}

// Server is a module instance's RPC server: generated code registers
// handlers on it, transports deliver calls to it.
type Server struct {
	typ, id string
	inv     Invoker
	log     *slog.Logger
	metrics *rpcMetrics  // set by BaseModule.Init; nil: not measured
	tracer  trace.Tracer // set by BaseModule.Init; nil: no handler spans

	mu      sync.RWMutex
	methods map[string]*methodEntry

	pool     *workerPool
	syncQ    chan task
	syncDone chan struct{}
	// Sync calls ServeNoWait found no room for in syncQ, in arrival order;
	// the sync loop moves them into syncQ as it frees room. ovWake tells
	// a loop waiting on an empty syncQ that the overflow has calls.
	ovMu     sync.Mutex
	overflow []task
	ovLen    atomic.Int32 // len(overflow), read without ovMu
	ovWake   chan struct{}
	inflight sync.WaitGroup
	closed   bool // guarded by mu
	quit     chan struct{}
	once     sync.Once
}

// NewServer returns a server for one module instance. inv is handed to
// handlers for calls back into the system.
func NewServer(typ, id string, inv Invoker, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{typ: typ, id: id, inv: inv, log: log, methods: map[string]*methodEntry{},
		syncQ: make(chan task, syncQueue), syncDone: make(chan struct{}), ovWake: make(chan struct{}, 1), quit: make(chan struct{})}
	s.pool = newWorkerPool(s.run, 30*time.Second)
	go s.syncLoop()
	return s
}

// syncQueue bounds the Sync calls waiting for the module's goroutine: an
// in-process caller past it waits for room (ServeNoWait's do not).
const syncQueue = 1024

// ID returns the instance id the server answers to.
func (s *Server) ID() string { return s.id }

// Type returns the module type.
func (s *Server) Type() string { return s.typ }

// Register adds every method of desc, implemented by impl. Registering a
// name twice is a programming error and panics.
func (s *Server) Register(desc *ModuleDesc, impl any) {
	if s == nil {
		panic(fmt.Sprintf("core: registering %s's methods on a nil *Server: call Init(app, settings) of the embedded core.BaseModule first in OnInit", desc.Type))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range desc.Methods {
		if _, dup := s.methods[m.Name]; dup {
			panic(fmt.Sprintf("core: %s: method %s registered twice", s.id, m.Name))
		}
		s.methods[m.Name] = &methodEntry{desc: m, impl: impl, metrics: s.metrics.forMethod(s.typ, m.Name)}
	}
}

// methodCount returns how many methods are registered.
func (s *Server) methodCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.methods)
}

// Has reports whether fn is registered.
func (s *Server) Has(fn string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.methods[fn] != nil
}

// Serve implements Endpoint.
func (s *Server) Serve(ctx context.Context, req *Request, resp Responder) {
	s.serve(ctx, req, resp, true)
}

// ServeNoWait is Serve for a transport's delivery loop, which must never
// wait for a Sync method's queue: a call finding it full queues behind it
// in arrival order instead, and the loop goes on to the next call, which
// may be a concurrent method's. What it holds is bounded by the transport
// (a broker's prefetch), not by the Sync queue. It implements
// QueueingEndpoint.
func (s *Server) ServeNoWait(ctx context.Context, req *Request, resp Responder) {
	s.serve(ctx, req, resp, false)
}

func (s *Server) serve(ctx context.Context, req *Request, resp Responder, wait bool) {
	if err := ctx.Err(); err != nil {
		// The caller gave up before the call started.
		respond(resp, s.drop(req, err))
		return
	}
	s.mu.RLock()
	m := s.methods[req.Fn]
	closed := s.closed
	if m != nil && !closed {
		s.inflight.Add(1) // under the lock, so Close's Wait covers it
	}
	s.mu.RUnlock()
	if m == nil {
		respond(resp, Reply{Err: Errorf(ErrNotFound, "Remote function(%s) not found", req.Fn)})
		return
	}
	if closed {
		respond(resp, Reply{Err: Errorf(ErrTransport, "%s is shutting down", s.id)})
		return
	}
	t := task{m: m, ctx: ctx, req: req, resp: resp}
	if m.desc.Sync {
		if wait {
			s.syncQ <- t
		} else {
			s.queueSync(t)
		}
		return
	}
	s.pool.Submit(t)
}

// queueSync puts t in syncQ, or behind the calls already in the overflow
// when syncQ is full or the overflow is not empty (their order holds).
func (s *Server) queueSync(t task) {
	s.ovMu.Lock()
	defer s.ovMu.Unlock()
	if len(s.overflow) == 0 {
		select {
		case s.syncQ <- t:
			return
		default:
		}
	}
	s.overflow = append(s.overflow, t)
	s.ovLen.Store(int32(len(s.overflow)))
	select {
	case s.ovWake <- struct{}{}:
	default:
	}
}

// refill moves overflow calls into syncQ while it has room. An empty
// overflow (nearly always) costs it one atomic load, not the lock: a call
// queued after that load also wakes the loop (ovWake).
func (s *Server) refill() {
	if s.ovLen.Load() == 0 {
		return
	}
	s.ovMu.Lock()
	defer s.ovMu.Unlock()
	n := 0
	for n < len(s.overflow) {
		select {
		case s.syncQ <- s.overflow[n]:
			s.overflow[n] = task{}
			n++
			continue
		default:
		}
		break
	}
	s.overflow = s.overflow[n:]
	if len(s.overflow) == 0 {
		s.overflow = nil // a burst does not keep its array
	}
	s.ovLen.Store(int32(len(s.overflow)))
}

// ServeInline runs a concurrent (RegisterGO) method in the caller's
// goroutine and returns its reply, saving the hand-off to a worker and back.
// The caller must be on a goroutine of its own, so the promise of RegisterGO
// holds: a slow call never blocks another. ok is false when the call has to
// go through Serve: a Sync method, an unknown one, a closing server.
//
// It implements InlineEndpoint.
func (s *Server) ServeInline(ctx context.Context, req *Request) (rep Reply, ok bool) {
	s.mu.RLock()
	m := s.methods[req.Fn]
	if m == nil || m.desc.Sync || s.closed || req.NoReply {
		s.mu.RUnlock()
		return Reply{}, false
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()
	lc, _ := ctx.(*lazyDeadline)
	var err error
	if lc != nil && !req.Start.IsZero() {
		err = lc.errAt(req.Start) // the caller's clock read is now (below): no second read
	} else {
		err = ctx.Err()
	}
	if err != nil {
		rep := s.drop(req, err)
		m.metrics.observe(time.Time{}, rep.Err)
		return rep, true
	}
	// Inline, the handler runs now: the caller's clock read is its start.
	res, err := s.call(task{m: m, ctx: ctx, req: req, start: req.Start, inline: lc})
	return Reply{Result: res, Err: err}, true
}

// drop logs a call whose deadline passed before it ran and returns the
// timeout its caller gets instead of running it.
func (s *Server) drop(req *Request, err error) Reply {
	s.log.Debug("rpc call dropped, deadline passed", "id", s.id, "fn", req.Fn, "trace_id", req.Trace.TraceIDString())
	return Reply{Err: &Error{Kind: ErrTimeout, Msg: "call " + req.Fn + " expired before it ran", Cause: err}}
}

func respond(r Responder, rep Reply) {
	if r != nil {
		r.Respond(rep)
	}
}

func (s *Server) syncLoop() {
	defer close(s.syncDone)
	for {
		select {
		case t := <-s.syncQ:
			s.run(t)
			s.refill()
		case <-s.ovWake:
			s.refill()
		case <-s.quit:
			return
		}
	}
}

func (s *Server) run(t task) {
	defer s.inflight.Done()
	if err := t.ctx.Err(); err != nil {
		// The call waited behind others until its caller gave up.
		rep := s.drop(t.req, err)
		t.m.metrics.observe(time.Time{}, rep.Err)
		if !t.req.NoReply {
			t.resp.Respond(rep)
		}
		return
	}
	res, err := s.call(t)
	if t.req.NoReply {
		if err != nil {
			s.log.Warn("rpc no-reply call failed", "id", s.id, "fn", t.req.Fn, "err", err, "trace_id", t.req.Trace.TraceIDString())
		}
		return
	}
	t.resp.Respond(Reply{Result: res, Err: err})
}

func (s *Server) call(t task) (res any, err error) {
	if t.m.metrics != nil { // servers made without an App are not measured, nor timed
		start := t.m.metrics.begin(t.start)
		defer func() {
			end := t.m.metrics.observe(start, err)
			if t.inline != nil && !t.start.IsZero() {
				t.inline.took = end.Sub(t.start) // read by the caller after the call, on this goroutine
			}
		}()
	}
	ctx := t.ctx
	if s.tracer != nil {
		var span trace.Span
		ctx, span = s.tracer.Start(withParent(ctx, t.req.Trace), "rpc.handle", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(AttrInstance.String(s.id)))
		defer func() { EndSpan(span, s.typ, t.req.Fn, err) }()
	} else if tc := t.req.Trace; tc.Valid() && (t.inline == nil || t.inline.trace != tc) && TraceFromContext(ctx) != tc {
		// (An inline call's lazy context carries tc already: wrapping it
		// again could change nothing TraceFromContext reports.)
		// Not in ctx (a call from another process, or made without a
		// traced context): the handler's own calls continue it.
		ctx = ContextWithTrace(ctx, tc)
	}
	defer func() {
		if p := recover(); p != nil {
			id := newErrorID()
			s.log.Error("rpc handler panic", "id", s.id, "fn", t.req.Fn, "errorId", id, "trace_id", t.req.Trace.TraceIDString(),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			t.m.metrics.notePanic(id, fmt.Sprint(p))
			res, err = nil, &Error{Kind: ErrRemotePanic, Msg: "internal error (id " + id + ")"}
		}
	}()
	res, err = t.m.desc.Handler(t.m.impl, ctx, s.inv, t.req)
	if err != nil {
		if ce := ctx.Err(); ce == context.DeadlineExceeded && errors.Is(err, ce) && !errors.As(err, new(*Error)) {
			// The handler gave up on the call's deadline: a timeout, as
			// the caller's transport reports it when its clock is first.
			return nil, &Error{Kind: ErrTimeout, Msg: err.Error(), Cause: err}
		}
		return nil, AsRemote(err)
	}
	return res, nil
}

var _ InlineEndpoint = (*Server)(nil)

func newErrorID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Close stops taking calls and waits up to timeout for the running ones.
// It reports whether everything finished in time.
func (s *Server) Close(timeout time.Duration) bool {
	drained := true
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		done := make(chan struct{})
		go func() { s.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(timeout):
			drained = false
			s.log.Warn("rpc server closed with calls still running", "id", s.id)
		}
		close(s.quit)
		if drained {
			<-s.syncDone
			s.pool.Close()
		} else {
			// Calls still running finish on their own; their workers then exit.
			s.pool.Stop()
		}
	})
	return drained
}
