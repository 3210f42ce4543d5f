package workpool

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestSlowTaskNeverBlocksAnother(t *testing.T) {
	release := make(chan struct{})
	var done atomic.Int32
	p := New(func(slow bool) {
		if slow {
			<-release
		}
		done.Add(1)
	}, time.Minute)
	p.Submit(true)
	for i := 0; i < 10; i++ {
		p.Submit(false)
	}
	deadline := time.Now().Add(5 * time.Second)
	for done.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 10 fast tasks ran while a slow one was running", done.Load())
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	p.Close() // waits for the slow one
	if done.Load() != 11 {
		t.Fatalf("after Close %d tasks done, want 11", done.Load())
	}
}

func TestIdleWorkersExit(t *testing.T) {
	var live atomic.Int32
	p := New(func(int) {}, 20*time.Millisecond)
	p.Submit(1)
	go func() { p.wg.Wait(); live.Store(1) }()
	deadline := time.Now().Add(5 * time.Second)
	for live.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle worker did not exit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Close()
}

// TestBusyWorkerStays: a worker that gets a task more often than the idle
// time stays, however long it runs; one worker does it all.
func TestBusyWorkerStays(t *testing.T) {
	var done atomic.Int32
	p := New(func(int) { done.Add(1) }, 100*time.Millisecond)
	defer p.Close()
	for i := range 50 {
		p.Submit(i)
		// Each task is done before the next is submitted: the worker is
		// idle, waiting on the channel, when the next comes.
		deadline := time.Now().Add(5 * time.Second)
		for done.Load() != int32(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("task %d not run within 5 s", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(10 * time.Millisecond) // the gap between tasks: under the idle time, the point of the test
	}
	if n := p.workers.Load(); n != 1 {
		t.Errorf("%d workers started for 50 tasks 10 ms apart (idle time 100 ms), want 1", n)
	}
}

func TestStopDoesNotWait(t *testing.T) {
	release := make(chan struct{})
	p := New(func(int) { <-release }, time.Minute)
	p.Submit(1)
	p.Stop() // returns while the task still runs
	close(release)
	p.Close()
}
