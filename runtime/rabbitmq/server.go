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
	for _, q := range []string{iq, tq} {
		deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for d := range deliveries {
				s.serve(e, d)
			}
		}()
	}
	s.smu.Lock()
	s.consumers[e.id] = ch
	s.smu.Unlock()
	s.t.log.Debug("RPC endpoint consuming", "id", e.id, "queues", iq+","+tq)
	return nil
}

// unlisten stops consuming for an instance that is shutting down.
func (s *session) unlisten(id string) {
	s.smu.Lock()
	ch := s.consumers[id]
	delete(s.consumers, id)
	s.smu.Unlock()
	if ch != nil {
		_ = ch.Close() // a deliberate close: its NotifyClose gets no error
	}
}

// serve hands one delivered call to the endpoint.
func (s *session) serve(e *endpoint, d amqp.Delivery) {
	r := &responder{s: s, d: d}
	var env callEnvelope
	if err := runtime.JSON.Unmarshal(d.Body, &env); err != nil {
		r.Respond(runtime.Reply{Err: runtime.Errorf(runtime.ErrBadRequest, "rabbitmq: bad call envelope: %v", err)})
		return
	}
	r.noReply = env.NoReply
	if env.V != envelopeVersion {
		r.Respond(runtime.Reply{Err: runtime.Errorf(runtime.ErrBadRequest, "rabbitmq: call envelope version %d, want %d", env.V, envelopeVersion)})
		return
	}
	if d.Redelivered {
		// Its first consumer died mid-call: it may have run. At most once.
		s.t.log.Warn("redelivered call not run again", "id", e.id, "fn", env.Fn)
		r.Respond(runtime.Reply{Err: runtime.Errorf(runtime.ErrTransport, "call %s was interrupted by a consumer failure and is not run twice", env.Fn)})
		return
	}
	ctx := context.Background()
	if env.TimeoutMs > 0 {
		ctx, r.cancel = context.WithTimeout(ctx, time.Duration(env.TimeoutMs)*time.Millisecond)
	}
	// The server answers even no-reply calls here, so the delivery is
	// acknowledged after the handler ran; the responder sends nothing back.
	req := &runtime.Request{Fn: env.Fn, Session: env.Session, Raw: env.Arg}
	r.fn = env.Fn
	e.ep.Serve(ctx, req, r)
}

// responder publishes a call's reply and then acknowledges the call.
type responder struct {
	s       *session
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
			ContentType: "application/json", CorrelationId: r.d.CorrelationId, Body: encodeReply(rep)})
		if err != nil {
			r.s.t.log.Warn("reply not sent", "fn", r.fn, "err", err)
		}
	}
	if err := r.d.Ack(false); err != nil {
		r.s.t.log.Debug("ack failed", "fn", r.fn, "err", err)
	}
}
