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

// SetBeforeResume runs f after a reconnect listed its endpoints, before
// it starts them.
func SetBeforeResume(f func()) {
	if f == nil {
		beforeResume.Store(nil)
		return
	}
	beforeResume.Store(&f)
}

// SetListenWait and SetTakeoverAfter swap those bounds, returning the old.
func SetListenWait(d time.Duration) time.Duration {
	return time.Duration(listenWait.Swap(int64(d)))
}

func SetTakeoverAfter(d time.Duration) time.Duration {
	return time.Duration(takeoverAfter.Swap(int64(d)))
}

// Consuming reports whether instance id has a consumer on t's session.
func Consuming(t *Transport, id string) bool {
	s := t.current()
	if s == nil {
		return false
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	_, ok := s.consumers[id]
	return ok
}
