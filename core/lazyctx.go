package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadline is a context with a deadline whose timer exists only once
// somebody asks for Done. A handler that never waits on its context (most
// game handlers: decode, compute, reply) then costs no timer at all;
// context.WithTimeout made one per call, a tenth of the gate's CPU.
type lazyDeadline struct {
	context.Context // the parent
	d               time.Time
	trace           TraceContext // valid: the trace Value reports to TraceFromContext

	// took is how long an inline handler ran from its request's Start, as
	// its metrics measured it (Server.call); 0: not timed. A duration, not
	// a time: the gate's per-request object stays in its size class.
	took time.Duration

	// timed is made by the first Done; read with one atomic load, so a
	// call whose handler never waits on its ctx takes no lock (the gate
	// checks Err before the call, releases after it).
	mu    sync.Mutex // serialises making timed
	timed atomic.Pointer[timedCtx]
}

// timedCtx is the real deadline context of a lazyDeadline someone waits on.
type timedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// Ended is when the call's handler returned, as the server's metrics read
// the clock then; zero when it was not timed (or did not run inline). A
// caller that makes calls one after another (the gate's dispatcher) starts
// the next one then instead of reading the clock again.
func (c *InlineCall) Ended() time.Time {
	if c.ctx.took == 0 {
		return time.Time{}
	}
	return c.Req.Start.Add(c.ctx.took)
}

func withLazyDeadline(parent context.Context, d time.Time) *lazyDeadline {
	return &lazyDeadline{Context: parent, d: d}
}

func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.d, true }

func (c *lazyDeadline) Value(key any) any {
	if key == (traceKey{}) && c.trace.Valid() {
		return &c.trace
	}
	return c.Context.Value(key)
}

func (c *lazyDeadline) Done() <-chan struct{} {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Done()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.timed.Load()
	if t == nil {
		t = &timedCtx{}
		t.ctx, t.cancel = context.WithDeadline(c.Context, c.d)
		c.timed.Store(t)
	}
	return t.ctx.Done()
}

func (c *lazyDeadline) Err() error { return c.errAt(time.Time{}) }

// errAt is Err at now, a clock read the caller made just before; zero:
// read the clock.
func (c *lazyDeadline) errAt(now time.Time) error {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if now.IsZero() {
		// time.Until reads only the monotonic clock (d has its reading),
		// half of what time.Now reads: a handler's session calls check
		// their ctx before they run (gate.Session.Bind).
		if time.Until(c.d) <= 0 {
			return context.DeadlineExceeded
		}
		return nil
	}
	if !now.Before(c.d) {
		return context.DeadlineExceeded
	}
	return nil
}

// release stops the timer, if one was made.
func (c *lazyDeadline) release() {
	if t := c.timed.Load(); t != nil {
		t.cancel()
	}
}

// DeadlineContext returns a child of parent that ends at d, for a transport
// serving a call that came with a deadline: as with the in-process inline
// path, its timer is made only when somebody asks for Done (most handlers
// never do), where context.WithDeadline makes one per call. release stops
// that timer, if one was made; unlike a CancelFunc it does not end the
// context before d.
func DeadlineContext(parent context.Context, d time.Time) (ctx context.Context, release func()) {
	c := withLazyDeadline(parent, d)
	return c, c.release
}

// ServeContext is DeadlineContext for a call that also carries trace tc
// (when valid, TraceFromContext reports it): one allocation where
// DeadlineContext, its release func and ContextWithTrace take three. Its
// timer, if Done made one, is stopped by ReleaseServeContext.
func ServeContext(parent context.Context, d time.Time, tc TraceContext) context.Context {
	c := withLazyDeadline(parent, d)
	c.trace = tc
	return c
}

// ReleaseServeContext stops the timer of a context from ServeContext, if
// one was made; other contexts are left alone.
func ReleaseServeContext(ctx context.Context) {
	if c, ok := ctx.(*lazyDeadline); ok {
		c.release()
	}
}

// DeadlineWait reports whether a transport may wait for ctx without its
// Done: ctx is the deadline an App or a transport gave a call, whose timer
// nobody asked for yet, so it ends at its deadline or when done closes
// (its parent's Done: nil when the parent cannot end). The transport then
// waits with a timer of its own, which it can reuse, and on done, where
// ctx.Done would make a timer context per call and register it with the
// parent (the gate's calls have the gate's context as parent).
func DeadlineWait(ctx context.Context) (done <-chan struct{}, ok bool) {
	if t, ok := ctx.(*traceCtx); ok {
		ctx = t.Context // a trace changes nothing of how ctx ends
	}
	c, ok := ctx.(*lazyDeadline)
	if !ok || c.timed.Load() != nil {
		return nil, false
	}
	return c.Context.Done(), true
}
