package core

import (
	"context"
	"time"

	"github.com/mqantgen/mqantgen/internal/workpool"
)

// task is one call waiting to run; passed by value so queueing it does not
// allocate.
type task struct {
	m      *methodEntry
	ctx    context.Context
	req    *Request
	resp   Responder
	start  time.Time     // when the handler starts, if the caller read the clock just before; zero: read it
	inline *lazyDeadline // ServeInline's context, which is told when the handler ended; nil on a worker
}

// workerPool runs tasks on reused goroutines (see internal/workpool).
type workerPool = workpool.Pool[task]

func newWorkerPool(run func(task), idle time.Duration) *workerPool { return workpool.New(run, idle) }
