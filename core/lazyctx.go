package core

import (
	"context"
	"sync"
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

	mu     sync.Mutex
	timed  context.Context // created by the first Done
	cancel context.CancelFunc
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timed == nil {
		c.timed, c.cancel = context.WithDeadline(c.Context, c.d)
	}
	return c.timed.Done()
}

func (c *lazyDeadline) Err() error {
	c.mu.Lock()
	timed := c.timed
	c.mu.Unlock()
	if timed != nil {
		return timed.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.d) {
		return context.DeadlineExceeded
	}
	return nil
}

// release stops the timer, if one was made.
func (c *lazyDeadline) release() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
