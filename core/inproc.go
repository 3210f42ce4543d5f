package core

import (
	"context"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// InProc is the in-process transport, the embedded default: calls are
// function calls plus one channel hand-off for the reply, and typed
// arguments and results are passed as values, never encoded.
type InProc struct {
	mu  sync.Mutex // serialises the writers of tab
	tab atomic.Pointer[inprocTable]
}

// inprocTable is the transport's routing table, never changed once
// published: a call looks its endpoint up with one atomic load, no lock
// (two lookups per call on the gate's path); Listen and a listener's
// Close, rare, publish a new table.
type inprocTable struct {
	byID   map[string]Endpoint
	byType map[string]*typeGroup
	closed bool
}

type typeGroup struct {
	ids  []string
	eps  []Endpoint
	next *atomic.Uint32 // shared by the group's versions, so the rotation goes on
}

// NewInProc returns an empty in-process transport.
func NewInProc() *InProc {
	t := &InProc{}
	t.tab.Store(&inprocTable{byID: map[string]Endpoint{}, byType: map[string]*typeGroup{}})
	return t
}

// clone returns a copy of the table to change and publish.
func (tab *inprocTable) clone() *inprocTable {
	return &inprocTable{byID: maps.Clone(tab.byID), byType: maps.Clone(tab.byType), closed: tab.closed}
}

// Listen implements Transport.
func (t *InProc) Listen(typ, id string, ep Endpoint) (io.Closer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tab := t.tab.Load()
	if tab.closed {
		return nil, Errorf(ErrTransport, "in-process transport closed")
	}
	if _, dup := tab.byID[id]; dup {
		return nil, Errorf(ErrTransport, "instance %s already listening", id)
	}
	tab = tab.clone()
	tab.byID[id] = ep
	ng := &typeGroup{next: new(atomic.Uint32)}
	if g := tab.byType[typ]; g != nil {
		ng.ids, ng.eps, ng.next = slices.Clone(g.ids), slices.Clone(g.eps), g.next
	}
	ng.ids = append(ng.ids, id)
	ng.eps = append(ng.eps, ep)
	tab.byType[typ] = ng
	t.tab.Store(tab)
	return closerFunc(func() error { t.remove(typ, id); return nil }), nil
}

func (t *InProc) remove(typ, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tab := t.tab.Load().clone()
	delete(tab.byID, id)
	if g := tab.byType[typ]; g != nil {
		ng := &typeGroup{next: g.next}
		for i, x := range g.ids {
			if x != id {
				ng.ids = append(ng.ids, x)
				ng.eps = append(ng.eps, g.eps[i])
			}
		}
		if len(ng.ids) == 0 {
			delete(tab.byType, typ)
		} else {
			tab.byType[typ] = ng
		}
	}
	t.tab.Store(tab)
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (t *InProc) lookup(to Target) Endpoint {
	tab := t.tab.Load()
	if tab.closed {
		return nil
	}
	if to.ID != "" {
		return tab.byID[to.ID]
	}
	g := tab.byType[to.Type]
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
	return t.invokeAt(ctx, t.lookup(to), to, req)
}

// invokeAt is Invoke of ep, the endpoint the caller looked up for to (nil:
// none).
func (t *InProc) invokeAt(ctx context.Context, ep Endpoint, to Target, req *Request) (Reply, error) {
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
	return t.invokeInlineAt(ctx, t.lookup(to), to, req)
}

// invokeInlineAt is InvokeInline of ep, the endpoint the caller looked up
// for to (nil: none): the App's call path looks it up once, not twice.
func (t *InProc) invokeInlineAt(ctx context.Context, ep Endpoint, to Target, req *Request) (Reply, error) {
	if ie, ok := ep.(InlineEndpoint); ok {
		if rep, ok := ie.ServeInline(ctx, req); ok {
			return rep, rep.Err
		}
	}
	return t.invokeAt(ctx, ep, to, req)
}

var _ InlineTransport = (*InProc)(nil)

// Close implements Transport.
func (t *InProc) Close() error {
	t.mu.Lock()
	tab := t.tab.Load().clone()
	tab.closed = true
	t.tab.Store(tab)
	t.mu.Unlock()
	return nil
}

// unreachable is the error of a call no endpoint takes: ErrTransport once
// the transport is closed (as on RabbitMQ), ErrNotFound before.
func (t *InProc) unreachable(to Target) error {
	if t.tab.Load().closed {
		return Errorf(ErrTransport, "in-process transport closed")
	}
	return NotFoundError(to)
}
