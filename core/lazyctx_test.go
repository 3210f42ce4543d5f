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
