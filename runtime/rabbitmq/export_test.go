package rabbitmq

import "time"

// AckerSize is how many entries the acknowledger of instance id holds.
func AckerSize(t *Transport, id string) int {
	s := t.current()
	if s == nil {
		return -1
	}
	s.smu.Lock()
	c := s.consumers[id]
	s.smu.Unlock()
	if c == nil {
		return -1
	}
	c.mu.Lock()
	a := c.acker
	c.mu.Unlock()
	if a == nil {
		return -1
	}
	return a.size()
}

// BreakConsumerChannel makes the broker close instance id's consuming
// channel with a channel error: it acknowledges a tag never delivered.
func BreakConsumerChannel(t *Transport, id string) {
	s := t.current()
	s.smu.Lock()
	c := s.consumers[id]
	s.smu.Unlock()
	c.mu.Lock()
	ch := c.ch
	c.mu.Unlock()
	_ = ch.Ack(1<<40, false)
}

// SetAfterConnect runs f between a connect and the session going live.
func SetAfterConnect(f func()) {
	if f == nil {
		afterConnect.Store(nil)
		return
	}
	afterConnect.Store(&f)
}

// WriteTimeout swaps the per-write deadline, returning the old one.
func WriteTimeout(d time.Duration) time.Duration {
	old := writeTimeout
	writeTimeout = d
	return old
}

// ConsumerStopping returns whether instance id's current consumer has
// begun its graceful stop.
func ConsumerStopping(t *Transport, id string) func() bool {
	s := t.current()
	s.smu.Lock()
	c := s.consumers[id]
	s.smu.Unlock()
	return c.stopping.Load
}
