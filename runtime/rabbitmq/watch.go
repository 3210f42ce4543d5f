package rabbitmq

import (
	"errors"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/runtime"
)

// writeTimeout bounds each write to the broker: a broker that stops
// reading (frozen, or a network that drops everything) fails the
// connection instead of holding publishes, replies and closes forever.
var writeTimeout = 10 * time.Second

const (
	// closeWait bounds the connection.close handshake.
	closeWait = 5 * time.Second
	// probeAfter is how long a call waits for its reply before its target's
	// queue is checked; probeEvery is how often.
	probeAfter = 250 * time.Millisecond
	probeEvery = 250 * time.Millisecond
)

// deadlineConn sets a write deadline before every write.
type deadlineConn struct{ net.Conn }

func (c deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// dialWithDeadlines is amqp.DefaultDial plus per-write deadlines.
func dialWithDeadlines(network, addr string) (net.Conn, error) {
	c, err := amqp.DefaultDial(30*time.Second)(network, addr)
	if err != nil {
		return nil, err
	}
	return deadlineConn{c}, nil
}

// watchBlocked follows connection.blocked/unblocked: while the broker
// blocks publishing (a memory or disk alarm), calls fail at once instead
// of sitting in socket buffers past their callers' deadlines.
func (s *session) watchBlocked(c <-chan amqp.Blocking) {
	defer s.wg.Done()
	for b := range c {
		if b.Active {
			s.t.blocked.Store(&b.Reason)
			s.t.log.Warn("broker blocked publishing (resource alarm); calls fail until it clears", "reason", b.Reason)
		} else {
			s.t.blocked.Store(nil)
			s.t.log.Info("broker unblocked publishing")
		}
	}
	s.t.blocked.Store(nil) // a new connection starts unblocked
}

// watchTargets fails calls whose target queue has vanished. A queue goes
// with its consumers (the instance queue with its connection, the type
// queue with its last instance) and takes the calls in it, and the calls
// its consumers held, along: no reply will ever come, so their callers are
// told now rather than at their timeout. Only queues with calls waiting
// longer than probeAfter are checked, one passive declare each.
func (s *session) watchTargets() {
	defer s.wg.Done()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	for {
		select {
		case <-tick.C:
		case <-s.lost:
			return
		}
		cutoff := time.Now().Add(-probeAfter)
		queues := map[string]bool{}
		s.pmu.Lock()
		for _, p := range s.pending {
			if p.sent.Before(cutoff) {
				queues[p.queue] = true
			}
		}
		s.pmu.Unlock()
		for q := range queues {
			if ch == nil || ch.IsClosed() {
				var err error
				// A passive declare of a missing queue closes its channel,
				// so probes have one of their own, not failing the session.
				if ch, err = s.conn.Channel(); err != nil {
					ch = nil
					break
				}
			}
			_, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.NotFound {
				s.failQueue(q, cutoff)
			}
		}
	}
}

// failQueue fails the calls to queue q sent before cutoff.
func (s *session) failQueue(q string, cutoff time.Time) {
	var lost []*pendingCall
	s.pmu.Lock()
	for id, p := range s.pending {
		if p.queue == q && p.sent.Before(cutoff) {
			lost = append(lost, p)
			delete(s.pending, id)
		}
	}
	s.pmu.Unlock()
	if len(lost) > 0 {
		s.t.log.Warn("calls failed: their target's queue vanished (its consumer went away); they may have run", "queue", q, "calls", len(lost))
	}
	for _, p := range lost {
		p.ch <- runtime.Reply{Err: runtime.Errorf(runtime.ErrTransport, "rabbitmq: call %s.%s lost: the queue of its target vanished while it waited (it may have run)", p.to, p.fn)}
	}
}

// listen starts consuming for an endpoint on this session, once. The
// first attach is synchronous, so a duplicate instance id is reported to
// the caller; other failures are retried in the background.
func (s *session) listen(e *endpoint) error {
	s.smu.Lock()
	if _, ok := s.consumers[e.id]; ok {
		s.smu.Unlock()
		return nil
	}
	c := s.newConsumer(e)
	s.consumers[e.id] = c
	s.smu.Unlock()
	closed, cancels, err := c.attach()
	if errors.Is(err, errDuplicate) {
		s.smu.Lock()
		delete(s.consumers, e.id)
		s.smu.Unlock()
		close(c.done)
		return err
	}
	if err != nil {
		s.t.log.Warn("RPC endpoint cannot consume yet; retrying", "id", e.id, "err", err)
		closed, cancels = nil, nil
	} else {
		s.t.log.Debug("RPC endpoint consuming", "id", e.id, "queues", c.iq()+","+c.tq())
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.run(closed, cancels)
	}()
	return nil
}

// unlisten stops an endpoint's consumer gracefully.
func (s *session) unlisten(id string, drain time.Duration) {
	s.smu.Lock()
	c, ok := s.consumers[id]
	delete(s.consumers, id)
	s.smu.Unlock()
	if ok {
		c.stop(drain)
	}
}
