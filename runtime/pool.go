package runtime

import (
	"context"
	"sync"
	"time"
)

// task is one call waiting to run; passed by value so queueing it does not
// allocate.
type task struct {
	m    *methodEntry
	ctx  context.Context
	req  *Request
	resp Responder
}

// workerPool runs tasks concurrently without a new goroutine per task in the
// steady state: idle workers wait on an unbuffered channel, and a task that
// finds no idle worker starts one, so a slow task never blocks another. A
// worker idle for longer than idleTimeout exits.
type workerPool struct {
	run         func(task)
	tasks       chan task
	idleTimeout time.Duration
	wg          sync.WaitGroup
	quit        chan struct{}
	closeOnce   sync.Once
}

func newWorkerPool(run func(task), idle time.Duration) *workerPool {
	return &workerPool{run: run, tasks: make(chan task), idleTimeout: idle, quit: make(chan struct{})}
}

func (p *workerPool) submit(t task) {
	select {
	case p.tasks <- t:
	default:
		p.wg.Add(1)
		go p.worker(t)
	}
}

func (p *workerPool) worker(t task) {
	defer p.wg.Done()
	p.run(t)
	idle := time.NewTimer(p.idleTimeout)
	defer idle.Stop()
	for {
		select {
		case t := <-p.tasks:
			p.run(t)
			idle.Reset(p.idleTimeout)
		case <-idle.C:
			return
		case <-p.quit:
			return
		}
	}
}

// close stops idle workers and waits for running tasks to finish.
func (p *workerPool) close() {
	p.closeOnce.Do(func() { close(p.quit) })
	p.wg.Wait()
}
