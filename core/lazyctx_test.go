package core

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLazyDeadline(t *testing.T) {
	d := time.Now().Add(50 * time.Millisecond)
	c := withLazyDeadline(context.Background(), d)
	defer c.release()
	if got, ok := c.Deadline(); !ok || !got.Equal(d) {
		t.Fatalf("Deadline = %v %v", got, ok)
	}
	if c.Err() != nil {
		t.Fatal("Err before the deadline")
	}
	if c.timed.Load() != nil {
		t.Fatal("a timer was made before anybody asked for Done")
	}
	// Err turns into DeadlineExceeded with no timer at all.
	for c.Err() == nil {
		time.Sleep(5 * time.Millisecond) // polling the clock is what is under test
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || c.timed.Load() != nil {
		t.Fatalf("Err = %v, timer %v", c.Err(), c.timed.Load() != nil)
	}
	// Done made after the deadline is closed at once.
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the deadline")
	}

	parent, cancel := context.WithCancel(context.Background())
	c2 := withLazyDeadline(parent, time.Now().Add(time.Hour))
	defer c2.release()
	done := c2.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("parent's cancellation did not reach Done")
	}
	if !errors.Is(c2.Err(), context.Canceled) {
		t.Errorf("Err = %v", c2.Err())
	}
	parent3, cancel3 := context.WithCancel(context.Background())
	c3 := withLazyDeadline(parent3, time.Now().Add(time.Hour))
	cancel3()
	if !errors.Is(c3.Err(), context.Canceled) {
		t.Errorf("Err without Done after the parent's cancel = %v", c3.Err())
	}
}

// TestDeadlineWait: a context that only its deadline and its parent can
// end, as an App gives a call without a deadline (the gate's calls, whose
// parent is the gate's context) and a transport gives its handler, stays
// one when the handler's trace is put in it (Server.call does, for a call
// from another process): calls over RabbitMQ then wait on a pooled timer
// and the parent's Done, not on a timer context made for Done.
func TestDeadlineWait(t *testing.T) {
	d := time.Now().Add(time.Hour)
	lazy, release := DeadlineContext(context.Background(), d)
	defer release()
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	cases := []struct {
		name string
		ctx  context.Context
		ok   bool
		done <-chan struct{}
	}{
		{"lazy deadline", lazy, true, nil},
		{"lazy deadline with a trace", ContextWithTrace(lazy, NewTraceContext()), true, nil},
		{"background", context.Background(), false, nil},
		{"cancelable parent", withLazyDeadline(cancelable, d), true, cancelable.Done()},
		{"cancelable parent with a trace", ContextWithTrace(withLazyDeadline(cancelable, d), NewTraceContext()), true, cancelable.Done()},
		{"cancelable with a trace", ContextWithTrace(cancelable, NewTraceContext()), false, nil},
	}
	for _, c := range cases {
		if done, ok := DeadlineWait(c.ctx); ok != c.ok || done != c.done {
			t.Errorf("%s: DeadlineWait = %v, %v; want %v, %v", c.name, done, ok, c.done, c.ok)
		}
	}
	// Once somebody waited on Done, the timer exists: Done is the way.
	_ = ContextWithTrace(lazy, NewTraceContext()).Done()
	if _, ok := DeadlineWait(lazy); ok {
		t.Error("after Done: DeadlineWait ok")
	}
}

// TestServeContext: the context a transport gives a handler of a call from
// another process carries the call's deadline and trace in one object,
// stays deadline-only until somebody waits on Done, ends at its deadline,
// and is released by ReleaseServeContext (the timer Done made stops).
func TestServeContext(t *testing.T) {
	tc := NewTraceContext()
	d := time.Now().Add(50 * time.Millisecond)
	ctx := ServeContext(context.Background(), d, tc)
	if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
		t.Errorf("Deadline = %v, %v; want %v", got, ok, d)
	}
	if got := TraceFromContext(ctx); got != tc {
		t.Errorf("TraceFromContext = %v, want %v", got, tc)
	}
	if _, ok := DeadlineWait(ctx); !ok {
		t.Error("DeadlineWait not ok before Done")
	}
	if ctx.Err() != nil {
		t.Errorf("Err before the deadline: %v", ctx.Err())
	}
	select {
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) || time.Now().Before(d) {
			t.Errorf("ended with %v at %v, deadline %v", ctx.Err(), time.Now(), d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Done never closed")
	}
	ReleaseServeContext(ctx)

	// Released before its deadline (its handler returned), the timer Done
	// made is stopped, and Done closes: nothing waits an hour.
	long := ServeContext(context.Background(), time.Now().Add(time.Hour), TraceContext{})
	done := long.Done()
	ReleaseServeContext(long)
	<-done
	if TraceFromContext(long).Valid() {
		t.Error("a zero trace reported as valid")
	}
	ReleaseServeContext(context.Background()) // other contexts: nothing
}
