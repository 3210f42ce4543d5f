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
// time stays, however long that goes on. Each task is handed straight to
// the channel the idle workers wait on, so only the first worker can take
// it: a worker that left would leave the send waiting.
func TestBusyWorkerStays(t *testing.T) {
	var done atomic.Int32
	p := New(func(int) { done.Add(1) }, 500*time.Millisecond)
	defer p.Close()
	p.Submit(0) // starts the worker
	for i := 1; i <= 60; i++ {
		time.Sleep(20 * time.Millisecond) // the gap between tasks, well under the idle time: the load, not a wait for anything
		select {
		case p.tasks <- i:
		case <-time.After(5 * time.Second):
			t.Fatalf("task %d: no worker took it within 5 s; the worker left after %d tasks, 20 ms apart, idle time 500 ms", i, done.Load())
		}
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
