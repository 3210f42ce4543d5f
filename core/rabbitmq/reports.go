package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

// The console's process reports (core.ReportBus) travel on a fanout
// exchange: every process publishes its report about once a second, and
// each process with a console reads them all from a queue of its own. All
// of it is transient: the exchange is not durable, each subscriber's
// queue is exclusive and goes with its connection, and a report lives at
// most reportTTL in it (an older one is worthless: the next is on its
// way), at most reportQueueMax of them.
const (
	reportExchange = "mqant.console"
	reportTTL      = 5 * time.Second
	reportQueueMax = 256
	// reportRetry is how long a subscriber whose channel failed waits
	// before it tries again on the same connection.
	reportRetry = time.Second
)

var _ core.ReportBus = (*Transport)(nil)

// reportSub is one SubscribeReports: it consumes on every session from
// now until Close.
type reportSub struct {
	f    func([]byte)
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup // its consuming goroutines
}

// PublishReport implements core.ReportBus: one publish, not retried.
func (t *Transport) PublishReport(ctx context.Context, body []byte) error {
	s := t.current()
	if s == nil {
		return core.Errorf(core.ErrTransport, "rabbitmq: not connected to the broker")
	}
	if reason, blocked := t.Blocked(); blocked {
		return core.Errorf(core.ErrTransport, "rabbitmq: the broker blocks publishing (%s)", reason)
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.reportCh == nil || s.reportCh.IsClosed() {
		ch, err := s.conn.Channel()
		if err != nil {
			return core.Errorf(core.ErrTransport, "rabbitmq: report channel: %v", err)
		}
		if err := declareReportExchange(ch); err != nil {
			_ = ch.Close()
			return core.Errorf(core.ErrTransport, "rabbitmq: %v", err)
		}
		s.reportCh = ch
	}
	err := s.reportCh.PublishWithContext(ctx, reportExchange, "", false, false, amqp.Publishing{
		ContentType: "application/json", Expiration: ttlMillis(reportTTL), Body: body})
	if err != nil {
		_ = s.reportCh.Close()
		s.reportCh = nil
		return core.Errorf(core.ErrTransport, "rabbitmq: publish report: %v", err)
	}
	return nil
}

func ttlMillis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func declareReportExchange(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(reportExchange, amqp.ExchangeFanout, false, false, false, false, nil); err != nil {
		return &exchangeError{err}
	}
	return nil
}

type exchangeError struct{ err error }

func (e *exchangeError) Error() string {
	return "declare exchange " + reportExchange + " (fanout, not durable): " + e.err.Error() +
		" (an exchange of that name with other properties exists: delete it, rabbitmqctl delete_exchange " + reportExchange + ")"
}

// SubscribeReports implements core.ReportBus. The subscription follows
// the transport's connection: it consumes on the current one and on every
// one after a reconnect, until Close. f runs on one goroutine at a time.
func (t *Transport) SubscribeReports(f func([]byte)) (io.Closer, error) {
	sub := &reportSub{f: f, stop: make(chan struct{})}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, core.Errorf(core.ErrTransport, "rabbitmq: transport closed")
	}
	if t.reportSubs == nil {
		t.reportSubs = map[*reportSub]bool{}
	}
	t.reportSubs[sub] = true
	s := t.sess
	t.mu.Unlock()
	if s != nil {
		s.subscribeReports(sub)
	}
	return closerFunc(func() error {
		t.mu.Lock()
		delete(t.reportSubs, sub)
		t.mu.Unlock()
		sub.once.Do(func() { close(sub.stop) })
		sub.wg.Wait()
		return nil
	}), nil
}

// resumeReports starts the report subscriptions on a new session; the
// supervisor calls it with those it took when it published the session.
func (s *session) resumeReports(subs []*reportSub) {
	for _, sub := range subs {
		s.subscribeReports(sub)
	}
}

// subscribeReports consumes reports for sub on this session until the
// session is lost or sub is closed; a channel the broker closes is opened
// again after reportRetry.
func (s *session) subscribeReports(sub *reportSub) {
	s.wg.Add(1)
	sub.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer sub.wg.Done()
		for {
			err := s.consumeReports(sub)
			select {
			case <-s.lost:
				return
			case <-sub.stop:
				return
			default:
			}
			s.t.log.Warn("console reports: subscription failed; retrying", "err", err, "retryIn", reportRetry)
			select {
			case <-time.After(reportRetry):
			case <-s.lost:
				return
			case <-sub.stop:
				return
			}
		}
	}()
}

func (s *session) consumeReports(sub *reportSub) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := declareReportExchange(ch); err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{
		"x-message-ttl": int32(reportTTL.Milliseconds()), "x-max-length": int32(reportQueueMax)})
	if err != nil {
		return err
	}
	if err := ch.QueueBind(q.Name, "", reportExchange, false, nil); err != nil {
		return err
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return err
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return amqp.ErrClosed
			}
			sub.f(d.Body)
		case <-sub.stop:
			return nil
		case <-s.lost:
			return nil
		}
	}
}

var _ core.ReportBus = (*Router)(nil)

// PublishReport implements core.ReportBus: the report goes to every
// broker, so a console behind any of them sees this process.
func (r *Router) PublishReport(ctx context.Context, body []byte) error {
	var errs []error
	for _, t := range r.all {
		if err := t.PublishReport(ctx, body); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", redact(t.uri), err))
		}
	}
	return errors.Join(errs...)
}

// SubscribeReports implements core.ReportBus: the reports of every
// broker, handed to f one at a time. A process that reaches two brokers
// reports on both; its second copy replaces the first.
func (r *Router) SubscribeReports(f func([]byte)) (io.Closer, error) {
	var mu sync.Mutex
	one := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		f(b)
	}
	var subs []io.Closer
	closeAll := closerFunc(func() error {
		for _, c := range subs {
			_ = c.Close()
		}
		return nil
	})
	for _, t := range r.all {
		c, err := t.SubscribeReports(one)
		if err != nil {
			_ = closeAll()
			return nil, err
		}
		subs = append(subs, c)
	}
	return closeAll, nil
}
