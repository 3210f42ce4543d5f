package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/runtime"
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
	log *slog.Logger

	prefix string // makes call ids unique across processes
	seq    atomic.Uint64

	mu        sync.Mutex
	sess      *session // nil while disconnected
	endpoints map[string]*endpoint
	closed    bool
	ready     chan struct{} // closed on the first successful connect
	readyOnce sync.Once

	done chan struct{}
	wg   sync.WaitGroup
}

type endpoint struct {
	typ, id string
	ep      runtime.Endpoint
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
		endpoints: map[string]*endpoint{}, ready: make(chan struct{}), done: make(chan struct{})}
	t.wg.Add(1)
	go t.supervise()
	return t
}

// WaitReady waits until the transport has connected once.
func (t *Transport) WaitReady(ctx context.Context) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		return runtime.Errorf(runtime.ErrTransport, "rabbitmq: no connection to %s: %v", redact(t.uri), ctx.Err())
	}
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

// supervise connects, waits for the connection to fail, fails what was
// waiting on it, and connects again with backoff, until Close.
func (t *Transport) supervise() {
	defer t.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		s, err := t.connect()
		if err != nil {
			t.log.Warn("broker connect failed", "uri", redact(t.uri), "err", err, "retryIn", backoff)
			select {
			case <-time.After(backoff):
			case <-t.done:
				return
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			s.close()
			return
		}
		t.sess = s
		t.mu.Unlock()
		t.readyOnce.Do(func() { close(t.ready) })
		t.log.Info("broker connected", "uri", redact(t.uri))
		select {
		case <-s.lost:
			t.log.Warn("broker connection lost; calls fail until it is back", "uri", redact(t.uri), "err", s.lostErr())
		case <-t.done:
		}
		t.mu.Lock()
		t.sess = nil
		t.mu.Unlock()
		s.close()
		s.failAll(runtime.Errorf(runtime.ErrTransport, "rabbitmq: broker connection lost"))
		select {
		case <-t.done:
			return
		default:
		}
	}
}

// Listen implements runtime.Transport: the endpoint consumes its instance
// queue and its type's queue, now and after every reconnect.
func (t *Transport) Listen(typ, id string, ep runtime.Endpoint) (io.Closer, error) {
	e := &endpoint{typ: typ, id: id, ep: ep}
	t.mu.Lock()
	if _, dup := t.endpoints[id]; dup {
		t.mu.Unlock()
		return nil, runtime.Errorf(runtime.ErrTransport, "rabbitmq: instance %s already listening", id)
	}
	t.endpoints[id] = e
	s := t.sess
	t.mu.Unlock()
	if s != nil {
		if err := s.listen(e); err != nil {
			t.log.Warn("listen failed; reconnecting", "id", id, "err", err)
			s.fail(err)
		}
	}
	return closerFunc(func() error {
		t.mu.Lock()
		delete(t.endpoints, id)
		s := t.sess
		t.mu.Unlock()
		if s != nil {
			s.unlisten(id)
		}
		return nil
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Reaches implements runtime.Transport: with a connection, the broker
// reaches everything; a missing module is reported per call.
func (t *Transport) Reaches(runtime.Target) bool { return t.Connected() }

func queueFor(to runtime.Target) string {
	if to.ID != "" {
		return instancePrefix + to.ID
	}
	return typePrefix + to.Type
}

func notFound(to runtime.Target) error {
	if to.ID != "" {
		return runtime.Errorf(runtime.ErrNotFound, "Service(type:%s id:%s) not found", to.Type, to.ID)
	}
	return runtime.Errorf(runtime.ErrNotFound, "Service(type:%s) not found", to.Type)
}

// Invoke implements runtime.Transport.
func (t *Transport) Invoke(ctx context.Context, to runtime.Target, req *runtime.Request) (runtime.Reply, error) {
	s := t.current()
	if s == nil {
		return runtime.Reply{}, runtime.Errorf(runtime.ErrTransport, "rabbitmq: not connected to the broker")
	}
	arg, err := encodeArg(req)
	if err != nil {
		return runtime.Reply{}, runtime.Errorf(runtime.ErrBadRequest, "encode argument of %s: %v", req.Fn, err)
	}
	msg := amqp.Publishing{ContentType: "application/x-mqant-call", CorrelationId: t.prefix + strconv.FormatUint(t.seq.Add(1), 36)}
	var timeoutMs uint64
	if d, ok := ctx.Deadline(); ok && !req.NoReply {
		left := time.Until(d)
		if left <= 0 {
			return runtime.Reply{}, timeoutError(ctx, to, req.Fn)
		}
		ms := max(left.Milliseconds(), 1)
		timeoutMs = uint64(ms)
		msg.Expiration = strconv.FormatInt(ms, 10)
	}
	msg.Body = encodeCall(req, timeoutMs, arg)
	if req.NoReply {
		return runtime.Reply{}, s.publishNR(ctx, to, msg)
	}
	return s.call(ctx, to, req.Fn, msg)
}

func timeoutError(ctx context.Context, to runtime.Target, fn string) error {
	msg := "deadline exceeded"
	if errors.Is(ctx.Err(), context.Canceled) {
		msg = "canceled"
	}
	return &runtime.Error{Kind: runtime.ErrTimeout, Msg: "call " + to.String() + "." + fn + ": " + msg, Cause: ctx.Err()}
}

// Close implements runtime.Transport: stops reconnecting, closes the
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
	return nil
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
