package core

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// InProc is the in-process transport, the embedded default: calls are
// function calls plus one channel hand-off for the reply, and typed
// arguments and results are passed as values, never encoded.
type InProc struct {
	mu     sync.RWMutex
	byID   map[string]Endpoint
	byType map[string]*typeGroup
	closed bool
}

type typeGroup struct {
	ids  []string
	eps  []Endpoint
	next atomic.Uint32
}

// NewInProc returns an empty in-process transport.
func NewInProc() *InProc {
	return &InProc{byID: map[string]Endpoint{}, byType: map[string]*typeGroup{}}
}

// Listen implements Transport.
func (t *InProc) Listen(typ, id string, ep Endpoint) (io.Closer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, Errorf(ErrTransport, "in-process transport closed")
	}
	if _, dup := t.byID[id]; dup {
		return nil, Errorf(ErrTransport, "instance %s already listening", id)
	}
	t.byID[id] = ep
	g := t.byType[typ]
	if g == nil {
		g = &typeGroup{}
		t.byType[typ] = g
	}
	// Readers hold the read lock while they pick an endpoint, so the group
	// can grow in place.
	g.ids = append(g.ids, id)
	g.eps = append(g.eps, ep)
	return closerFunc(func() error { t.remove(typ, id); return nil }), nil
}

func (t *InProc) remove(typ, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, id)
	g := t.byType[typ]
	if g == nil {
		return
	}
	ng := &typeGroup{}
	for i, x := range g.ids {
		if x != id {
			ng.ids = append(ng.ids, x)
			ng.eps = append(ng.eps, g.eps[i])
		}
	}
	if len(ng.ids) == 0 {
		delete(t.byType, typ)
		return
	}
	t.byType[typ] = ng
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (t *InProc) lookup(to Target) Endpoint {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return nil
	}
	if to.ID != "" {
		return t.byID[to.ID]
	}
	g := t.byType[to.Type]
	if g == nil || len(g.eps) == 0 {
		return nil
	}
	if len(g.eps) == 1 {
		return g.eps[0]
	}
	return g.eps[int(g.next.Add(1))%len(g.eps)]
}

// Reaches implements Transport.
func (t *InProc) Reaches(to Target) bool { return t.lookup(to) != nil }

// waiter receives one reply. Pooled: it goes back to the pool only after its
// reply was received, so a late reply can never reach another call.
type waiter struct{ ch chan Reply }

func (w *waiter) Respond(r Reply) { w.ch <- r }

var waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan Reply, 1)} }}

// Invoke implements Transport.
func (t *InProc) Invoke(ctx context.Context, to Target, req *Request) (Reply, error) {
	ep := t.lookup(to)
	if ep == nil {
		return Reply{}, t.unreachable(to)
	}
	if req.NoReply {
		// The caller does not wait, so its cancellation must not reach the handler.
		ep.Serve(context.WithoutCancel(ctx), req, nil)
		return Reply{}, nil
	}
	w := waiters.Get().(*waiter)
	ep.Serve(ctx, req, w)
	select {
	case r := <-w.ch:
		waiters.Put(w)
		return r, r.Err
	case <-ctx.Done():
		return Reply{}, TimeoutError(ctx, to, req.Fn)
	}
}

// InvokeInline implements InlineTransport: it is Invoke, except that a
// concurrent handler of an InlineEndpoint runs in the caller's goroutine
// (see Server.ServeInline).
func (t *InProc) InvokeInline(ctx context.Context, to Target, req *Request) (Reply, error) {
	if ep, ok := t.lookup(to).(InlineEndpoint); ok {
		if rep, ok := ep.ServeInline(ctx, req); ok {
			return rep, rep.Err
		}
	}
	return t.Invoke(ctx, to, req)
}

var _ InlineTransport = (*InProc)(nil)

// Close implements Transport.
func (t *InProc) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return nil
}

// unreachable is the error of a call no endpoint takes: ErrTransport once
// the transport is closed (as on RabbitMQ), ErrNotFound before.
func (t *InProc) unreachable(to Target) error {
	t.mu.RLock()
	closed := t.closed
	t.mu.RUnlock()
	if closed {
		return Errorf(ErrTransport, "in-process transport closed")
	}
	return NotFoundError(to)
}
