package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

const (
	instancePrefix = "mqant.i."
	typePrefix     = "mqant.t."
	replyTo        = "amq.rabbitmq.reply-to"
	// prefetch bounds the unacknowledged calls one module instance holds.
	prefetch = 512
	// confirmWait bounds how long a no-reply call waits for the broker's
	// confirm when its context has no deadline.
	confirmWait = 10 * time.Second
)

// Transport is the RabbitMQ transport. It is safe for concurrent use.
type Transport struct {
	uri string

	descOnce    sync.Once // metrics.go
	metricDescs []*prometheus.Desc
	log         *slog.Logger

	prefix string // makes call ids unique across processes
	name   string // connection_name: host, process id and prefix
	seq    atomic.Uint64
	// uriErr is why uri does not parse, already free of its password.
	uriErr error

	blocked atomic.Pointer[string] // the broker's reason while it blocks publishing
	stats   stats
	losses  lossLog
	pushes  pushWatch
	// DrainTimeout bounds how long closing an endpoint waits for the calls
	// it holds to finish. Set it before Listen, or with SetDrainTimeout
	// (core.App does, from its Options.DrainTimeout).
	DrainTimeout time.Duration
	queueExpiry  atomic.Int64 // SetInstanceQueueExpiry
	onTaken      atomic.Pointer[func(id string, err error)]

	mu        sync.Mutex
	sess      *session // nil while disconnected
	endpoints map[string]*endpoint
	// reportSubs are the console's report subscriptions (reports.go).
	reportSubs map[*reportSub]bool
	closed     bool
	ready      chan struct{} // closed on the first successful connect
	readyOnce  sync.Once

	done chan struct{}
	wg   sync.WaitGroup
}

type endpoint struct {
	typ, id string
	ep      core.Endpoint
	// serve is ep's ServeNoWait when it has one, else its Serve.
	serve  func(context.Context, *core.Request, core.Responder)
	calls  *callLog // calls from the instance queue that reached ep
	closed bool     // its closer ran; guarded by Transport.mu

	// first gets the outcome of its first start: nil, or errDuplicate.
	first     chan error
	firstOnce sync.Once
	returned  atomic.Bool // Listen returned without that outcome
}

// settle delivers the outcome of the endpoint's first start.
func (e *endpoint) settle(err error) (first bool) {
	e.firstOnce.Do(func() { e.first <- err; first = true })
	return first
}

// endpointClosed reports whether e's closer ran.
func (t *Transport) endpointClosed(e *endpoint) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return e.closed
}

// refuse drops endpoint e, a duplicate: Listen returns the error, or when
// it returned already (the transport was not connected), it is logged
// and reported to OnInstanceTaken.
func (t *Transport) refuse(e *endpoint, err error) {
	t.mu.Lock()
	if t.endpoints[e.id] == e {
		delete(t.endpoints, e.id)
	}
	t.mu.Unlock()
	// Listen returns err unless it returned already (it ran while
	// disconnected, or the first attempt failed otherwise).
	if !e.settle(err) || e.returned.Load() {
		t.log.Error("instance id served by another process: refused on connecting; this process does not serve it (two processes run the same module id)",
			"id", e.id, "queue", instancePrefix+e.id)
		t.instanceTaken(e.id, err)
	}
}

// SetOnInstanceTaken sets f to be called, on a goroutine of its own, when
// this process cannot serve an instance id it listens on because another
// process serves it: found when the connection came up after Listen had
// returned, or after a reconnect, when another connection consumes the
// instance queue for longer than the broker takes to notice a dead
// connection. The endpoint is then dropped: the process should stop (or
// alert), it is one of two running the same module id.
func (t *Transport) SetOnInstanceTaken(f func(id string, err error)) { t.onTaken.Store(&f) }

func (t *Transport) instanceTaken(id string, err error) {
	if f := t.onTaken.Load(); f != nil && *f != nil {
		go (*f)(id, core.Errorf(core.ErrTransport, "rabbitmq: instance %s: %v (queue %s is consumed by another connection: two processes run the same module Id)", id, err, instancePrefix+id))
	}
}

// New returns a transport that connects to uri in the background and
// keeps reconnecting until Close. Use WaitReady to wait for the first
// connection.
func New(uri string, log *slog.Logger) *Transport {
	if log == nil {
		log = slog.Default()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	t := &Transport{uri: uri, log: log.With("transport", "rabbitmq"), prefix: hex.EncodeToString(b[:]) + ".",
		endpoints: map[string]*endpoint{}, ready: make(chan struct{}), done: make(chan struct{}),
		DrainTimeout: 5 * time.Second}
	t.queueExpiry.Store(int64(DefaultInstanceQueueExpiry))
	host, _ := os.Hostname()
	// Operators tell processes apart by it (rabbitmqctl list_connections).
	t.name = fmt.Sprintf("mqantgen %s pid %d %s", host, os.Getpid(), t.prefix[:len(t.prefix)-1])
	if _, err := amqp.ParseURI(uri); err != nil {
		t.uriErr = t.scrub(err)
	}
	t.wg.Add(1)
	go t.supervise()
	return t
}

// DefaultInstanceQueueExpiry is how long an instance queue outlives its
// consumer unless SetInstanceQueueExpiry says otherwise.
const DefaultInstanceQueueExpiry = 60 * time.Second

// SetInstanceQueueExpiry sets how long the instance queues this transport
// declares outlive their consumer (x-expires, and x-message-ttl): long
// enough for a reconnect, short enough that a dead process's queue goes.
// Every process of a cluster must use the same value (a queue declared
// with other arguments is refused), so set it before Listen.
func (t *Transport) SetInstanceQueueExpiry(d time.Duration) { t.queueExpiry.Store(int64(d)) }

// SetDrainTimeout sets DrainTimeout; safe while endpoints run. core.App
// calls it with Options.DrainTimeout when the transport is its remote.
func (t *Transport) SetDrainTimeout(d time.Duration) {
	if d <= 0 {
		return
	}
	t.mu.Lock()
	t.DrainTimeout = d
	t.mu.Unlock()
}

func (t *Transport) drainTimeout() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.DrainTimeout
}

func (t *Transport) instanceQueueExpiry() time.Duration { return time.Duration(t.queueExpiry.Load()) }

// WaitReady waits until the transport has connected once.
func (t *Transport) WaitReady(ctx context.Context) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		if t.uriErr != nil {
			return core.Errorf(core.ErrTransport, "rabbitmq: %v", t.uriErr)
		}
		return core.Errorf(core.ErrTransport, "rabbitmq: no connection to %s: %v", redact(t.uri), ctx.Err())
	}
}

// Name is the connection name the broker shows for this transport.
func (t *Transport) Name() string { return t.name }

// Blocked reports whether the broker blocks this transport's publishing
// (connection.blocked, a resource alarm), and why.
func (t *Transport) Blocked() (string, bool) {
	if r := t.blocked.Load(); r != nil {
		return *r, true
	}
	return "", false
}

// Connected reports whether the transport has a live broker connection.
func (t *Transport) Connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sess != nil
}

func (t *Transport) current() *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sess
}

// heartbeat is the AMQP heartbeat asked for: the broker notices a dead
// connection (and frees its exclusive consumers) within about two, and so
// does this process (wire.go). Tests shorten it.
var heartbeat = newDuration(defaultHeartbeat)

const defaultHeartbeat = 5 * time.Second

// takeoverAfter is how long the instance queue may stay consumed by
// another connection after a reconnect before this process concludes that
// another process took its instance id over.
var takeoverAfter = newDuration(2*defaultHeartbeat + time.Second)

func newDuration(d time.Duration) *atomic.Int64 {
	var a atomic.Int64
	a.Store(int64(d))
	return &a
}

// listenWait bounds how long Listen waits for a connection.
var listenWait = newDuration(5 * time.Second)

// consumeRetryLogEvery bounds how often a consumer retrying logs.
const consumeRetryLogEvery = 5 * time.Second

// reconnectMax caps the wait between attempts to reach the broker: a
// restarted broker is in service again within about this.
const reconnectMax = 400 * time.Millisecond

// afterConnect is a test hook: it runs between a connect and the session
// going live, where an endpoint used to be able to slip through.
var afterConnect atomic.Pointer[func()]

// beforeResume is a test hook: it runs after a reconnect took its list of
// endpoints, before it starts them.
var beforeResume atomic.Pointer[func()]

// supervise connects, waits for the connection to fail, fails what was
// waiting on it, and connects again with backoff, until Close.
func (t *Transport) supervise() {
	defer t.wg.Done()
	backoff := 100 * time.Millisecond
	failures := 0
	for {
		if t.uriErr != nil {
			t.log.Error("broker URI does not parse; not connecting", "uri", redact(t.uri), "err", t.uriErr)
			<-t.done
			return
		}
		s, err := t.connect()
		if err != nil {
			// Retried at most every reconnectMax, so the service is back
			// within about that of the broker; logged at the first failure
			// and then every 20th, not twice a second.
			if failures%20 == 0 {
				t.log.Warn("broker connect failed", "uri", redact(t.uri), "err", err, "retryIn", backoff, "failures", failures+1)
			}
			failures++
			select {
			case <-time.After(backoff):
			case <-t.done:
				return
			}
			backoff = min(backoff*2, reconnectMax)
			continue
		}
		t.stats.connects.Add(1)
		if failures > 0 {
			t.log.Info("broker reachable again", "uri", redact(t.uri), "failedAttempts", failures)
		}
		failures = 0
		backoff = 100 * time.Millisecond
		if f := afterConnect.Load(); f != nil {
			(*f)()
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			s.close()
			return
		}
		t.sess = s
		eps := make([]*endpoint, 0, len(t.endpoints))
		for _, e := range t.endpoints {
			eps = append(eps, e)
		}
		subs := make([]*reportSub, 0, len(t.reportSubs))
		for sub := range t.reportSubs {
			subs = append(subs, sub)
		}
		t.mu.Unlock()
		if f := beforeResume.Load(); f != nil {
			(*f)()
		}
		// After publishing the session: an endpoint that Listen adds from
		// now on sees it and consumes at once; one added before is in eps.
		for _, e := range eps {
			// Not refused here: the broker may not yet have noticed that
			// our previous connection is gone, and still hold its
			// consumer; the consumer retries (and logs) until it is ours.
			_ = s.start(e)
		}
		s.resumeReports(subs)
		t.readyOnce.Do(func() { close(t.ready) })
		t.log.Info("broker connected", "uri", redact(t.uri), "name", t.name)
		select {
		case <-s.lost:
			t.log.Warn("broker connection lost; calls fail until it is back", "uri", redact(t.uri), "err", s.lostErr())
		case <-t.done:
		}
		t.mu.Lock()
		t.sess = nil
		t.mu.Unlock()
		s.close()
		s.failAll(core.Errorf(core.ErrTransport, "rabbitmq: broker connection lost"))
		select {
		case <-t.done:
			return
		default:
		}
	}
}

// Listen implements core.Transport: the endpoint consumes its instance
// queue and its type's queue, now and after every reconnect. When another
// process already serves instance id, Listen fails (and the App does not
// start). Closing the endpoint stops it gracefully (consumer.stop).
func (t *Transport) Listen(typ, id string, ep core.Endpoint) (io.Closer, error) {
	e := &endpoint{typ: typ, id: id, ep: ep, serve: ep.Serve, calls: newCallLog(), first: make(chan error, 1)}
	// A delivery carries up to maxBatchItems calls, so the prefetch no
	// longer keeps what a consumer holds within a Sync method's queue:
	// the delivery loop must not wait for it (core.QueueingEndpoint).
	if q, ok := ep.(core.QueueingEndpoint); ok {
		e.serve = q.ServeNoWait
	}
	t.mu.Lock()
	if _, dup := t.endpoints[id]; dup {
		t.mu.Unlock()
		return nil, core.Errorf(core.ErrTransport, "rabbitmq: instance %s already listening", id)
	}
	t.endpoints[id] = e
	s := t.sess
	t.mu.Unlock()
	if s != nil {
		_ = s.start(e)
	}
	// Disconnected, the supervisor starts it on connecting: wait for that
	// a while, so that a duplicate is refused here rather than later.
	wait := time.Duration(listenWait.Load())
	if s == nil && t.uriErr != nil {
		wait = 0 // it never connects
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case err = <-e.first:
	case <-t.done:
		e.returned.Store(true)
	case <-timer.C:
		e.returned.Store(true)
		select {
		case err = <-e.first:
		default:
			t.log.Warn("RPC endpoint not consuming yet: no broker connection; a duplicate instance id is refused (logged, OnInstanceTaken) when it connects", "id", id, "waited", time.Duration(listenWait.Load()))
		}
	}
	if err != nil {
		return nil, core.Errorf(core.ErrTransport, "rabbitmq: instance %s: %v (queue %s is consumed by another connection: two processes run the same module Id)", id, err, instancePrefix+id)
	}
	return closerFunc(func() error {
		t.mu.Lock()
		e.closed = true
		if t.endpoints[id] == e {
			delete(t.endpoints, id)
		}
		s, drain := t.sess, t.DrainTimeout
		t.mu.Unlock()
		if s != nil {
			s.unlisten(id, drain)
		}
		return nil
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Reaches implements core.Transport: with a connection, the broker
// reaches everything; a missing module is reported per call.
func (t *Transport) Reaches(core.Target) bool { return t.Connected() }

// The transport's not-found and timeout errors are core's, so errors.Is
// and the texts are the same on both transports.
var (
	notFound     = core.NotFoundError
	timeoutError = core.TimeoutError
)

// Invoke implements core.Transport.
func (t *Transport) Invoke(ctx context.Context, to core.Target, req *core.Request) (core.Reply, error) {
	s := t.current()
	if s == nil {
		return core.Reply{}, core.Errorf(core.ErrTransport, "rabbitmq: not connected to the broker")
	}
	if reason, blocked := t.Blocked(); blocked {
		return core.Reply{}, core.Errorf(core.ErrTransport, "rabbitmq: the broker blocks publishing (%s)", reason)
	}
	if req.NoReply {
		body, err := encodeCallArg(req, 0)
		if err != nil {
			return core.Reply{}, argError(req, err)
		}
		return core.Reply{}, s.publishNR(ctx, to, t.callID(), body)
	}
	return s.call(ctx, to, req, t.callID())
}

// argError is the error of a call whose argument does not encode.
func argError(req *core.Request, err error) error {
	return core.Errorf(core.ErrBadRequest, "encode argument of %s: %v", req.Fn, err)
}

// callID returns a new call id: the process's prefix and a sequence
// number, in one allocation.
func (t *Transport) callID() string {
	var buf [64]byte
	b := append(buf[:0], t.prefix...)
	return string(strconv.AppendUint(b, t.seq.Add(1), 36))
}

// Close implements core.Transport: stops reconnecting, closes the
// connection and fails whatever still waits.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	close(t.done)
	t.wg.Wait()
	t.losses.close()
	return nil
}

// scrub removes the URI's password from an error's text: the client
// library quotes a URI that does not parse in full.
func (t *Transport) scrub(err error) error {
	if err == nil {
		return nil
	}
	pw := password(t.uri)
	if pw == "" {
		return err
	}
	// URL parse errors quote the URI with %q: a password with a quote, a
	// backslash or an unprintable byte shows escaped.
	text, found := err.Error(), false
	for form, i := pw, 0; i < 3; i++ {
		if strings.Contains(text, form) {
			text, found = strings.ReplaceAll(text, form, "***"), true
		}
		q := strconv.Quote(form)
		form = q[1 : len(q)-1]
	}
	if !found {
		return err
	}
	return errors.New(text)
}

// password is the password part of an amqp URI, parsed leniently (the URI
// may not parse at all).
func password(uri string) string {
	at := strings.LastIndex(uri, "@")
	start := strings.Index(uri, "://")
	if at < 0 || start < 0 || start+3 > at {
		return ""
	}
	_, pw, ok := strings.Cut(uri[start+3:at], ":")
	if !ok {
		return ""
	}
	return pw
}

// redact hides the password of an amqp URI in logs.
func redact(uri string) string {
	at := -1
	for i := len(uri) - 1; i >= 0; i-- {
		if uri[i] == '@' {
			at = i
			break
		}
	}
	if at < 0 {
		return uri
	}
	start := 0
	if i := strings.Index(uri, "://"); i >= 0 {
		start = i + 3
	}
	cred := uri[start:at]
	if c := strings.Index(cred, ":"); c >= 0 {
		return uri[:start] + cred[:c] + ":***" + uri[at:]
	}
	return uri
}
