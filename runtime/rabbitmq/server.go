package rabbitmq

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/runtime"
)

// listen declares an endpoint's queues and consumes them on a channel of
// its own.
func (s *session) listen(e *endpoint) error {
	ch, err := s.channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return err
	}
	// The instance queue belongs to this connection; the type queue lives
	// while any instance consumes it. Both vanish with their consumers, so
	// mandatory publishes to an unserved module come back at once.
	iq, tq := instancePrefix+e.id, typePrefix+e.typ
	if _, err := ch.QueueDeclare(iq, false, true, true, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(tq, false, true, false, false, nil); err != nil {
		return err
	}
	a := newAcker(s, ch)
	for _, q := range []string{iq, tq} {
		deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			close(a.stop)
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for d := range deliveries {
				s.serve(e, a, d)
			}
		}()
	}
	s.smu.Lock()
	s.consumers[e.id] = consumer{ch, a}
	s.smu.Unlock()
	s.t.log.Debug("RPC endpoint consuming", "id", e.id, "queues", iq+","+tq)
	return nil
}

// unlisten stops consuming for an instance that is shutting down.
func (s *session) unlisten(id string) {
	s.smu.Lock()
	c, ok := s.consumers[id]
	delete(s.consumers, id)
	s.smu.Unlock()
	if ok {
		close(c.acker.stop)
		_ = c.ch.Close() // a deliberate close: its NotifyClose gets no error
	}
}

// serve hands one delivered call to the endpoint.
func (s *session) serve(e *endpoint, a *acker, d amqp.Delivery) {
	r := &responder{s: s, a: a, d: d}
	c, err := decodeCall(d.Body)
	if err != nil {
		r.Respond(runtime.Reply{Err: runtime.Errorf(runtime.ErrBadRequest, "rabbitmq: %v", err)})
		return
	}
	r.noReply, r.fn = c.noReply, c.fn
	if d.Redelivered {
		// Its first consumer died mid-call: it may have run. At most once.
		s.t.log.Warn("redelivered call not run again", "id", e.id, "fn", c.fn)
		r.Respond(runtime.Reply{Err: runtime.Errorf(runtime.ErrTransport, "call %s was interrupted by a consumer failure and is not run twice", c.fn)})
		return
	}
	ctx := context.Background()
	if c.timeoutMs > 0 {
		ctx, r.cancel = context.WithTimeout(ctx, time.Duration(c.timeoutMs)*time.Millisecond)
	}
	// The server answers even no-reply calls here, so the delivery is
	// acknowledged after the handler ran; the responder sends nothing back.
	e.ep.Serve(ctx, &runtime.Request{Fn: c.fn, Session: c.session, Raw: c.arg}, r)
}

// consumer is one endpoint's consuming channel.
type consumer struct {
	ch    *amqp.Channel
	acker *acker
}

// responder publishes a call's reply and then acknowledges the call.
type responder struct {
	s       *session
	a       *acker
	d       amqp.Delivery
	fn      string
	noReply bool
	cancel  context.CancelFunc
}

func (r *responder) Respond(rep runtime.Reply) {
	if r.cancel != nil {
		r.cancel()
	}
	if r.noReply {
		if rep.Err != nil {
			r.s.t.log.Warn("no-reply call failed", "fn", r.fn, "err", rep.Err)
		}
	} else if r.d.ReplyTo != "" {
		err := r.s.replyCh.Publish("", r.d.ReplyTo, false, false, amqp.Publishing{
			ContentType: "application/x-mqant-reply", CorrelationId: r.d.CorrelationId, Body: encodeReply(rep)})
		if err != nil {
			r.s.t.log.Warn("reply not sent", "fn", r.fn, "err", err)
		}
	}
	r.a.complete(r.d.DeliveryTag)
}
