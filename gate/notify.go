package gate

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mqantgen/mqantgen/core"
)

// defaultNotifyMaxPending bounds the session-closed events kept per
// listener instance while it cannot be reached.
const defaultNotifyMaxPending = 100000

// Retry backoff of undelivered session-closed events.
const (
	notifyRetryMin = 100 * time.Millisecond
	notifyRetryMax = 2 * time.Second
	notifyTimeout  = 5 * time.Second
)

// notifier delivers session-closed events to the module instances of the
// gate's SessionCloseListeners, at least once each: one queue and one
// goroutine per listener instance, so an unreachable instance (its process
// restarting, the broker away) holds up only its own events, which are
// retried in order until it answers. OnSessionClosed handlers must
// therefore be idempotent (the chat demo's is: it removes the session from
// the rooms it is still in).
type notifier struct {
	app        *core.App
	log        *slog.Logger
	maxPending int
	targets    []core.Target
	stats      *gateStats

	mu       sync.Mutex
	queues   map[string]*notifyQueue
	closed   bool
	wg       sync.WaitGroup
	quit     chan struct{}
	ctx      context.Context // cancelled with quit: sends in flight end too
	cancel   context.CancelFunc
	overflow warnLimiter // rate-limits the queue-full errors
}

type notifyQueue struct {
	to      core.Target
	events  []*core.SessionData
	wake    chan struct{}
	running bool
}

func newNotifier(app *core.App, log *slog.Logger, listeners []string, maxPending int, stats *gateStats) *notifier {
	n := &notifier{app: app, log: log, maxPending: maxPending, stats: stats,
		queues: map[string]*notifyQueue{}, quit: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, typ := range listeners {
		for _, id := range app.ServerIDs(typ) {
			n.targets = append(n.targets, core.Target{Type: typ, ID: id})
		}
	}
	return n
}

// sessionClosed queues the event for every listener instance.
func (n *notifier) sessionClosed(sess *core.SessionData) {
	if len(n.targets) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	for _, to := range n.targets {
		q := n.queues[to.ID]
		if q == nil {
			q = &notifyQueue{to: to, wake: make(chan struct{}, 1)}
			n.queues[to.ID] = q
		}
		if len(q.events) >= n.maxPending {
			// Bounded: the oldest event is given up, loudly.
			n.stats.closeEventsLost.Add(1)
			if k, ok := n.overflow.allow(time.Now()); ok {
				n.log.Error("session-closed event dropped: listener unreachable and its queue is full",
					"module", to.ID, "session", q.events[0].SessionID, "pending", len(q.events), "suppressed", k)
			}
			q.events[0] = nil
			q.events = q.events[1:]
		}
		q.events = append(q.events, sess)
		if !q.running {
			q.running = true
			n.wg.Add(1)
			go n.deliver(q)
		} else {
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
	}
}

// deliver sends q's events in order until it is empty.
func (n *notifier) deliver(q *notifyQueue) {
	defer n.wg.Done()
	backoff := time.Duration(0)
	failingSince := time.Time{}
	for {
		n.mu.Lock()
		if len(q.events) == 0 {
			q.running = false
			n.mu.Unlock()
			return
		}
		select {
		case <-n.quit:
			left := len(q.events)
			q.running = false
			n.mu.Unlock()
			n.log.Error("gate stopping with session-closed events undelivered", "module", q.to.ID, "pending", left)
			n.stats.closeEventsLost.Add(int64(left))
			return
		default:
		}
		ev := q.events[0]
		n.mu.Unlock()

		err := n.send(q.to, ev)
		if err != nil && retryable(err) {
			if failingSince.IsZero() {
				failingSince = time.Now()
				n.log.Warn("session-closed notification failed; retrying until delivered", "module", q.to.ID, "err", err)
			}
			n.stats.closeEventRetries.Add(1)
			backoff = min(max(backoff*2, notifyRetryMin), notifyRetryMax)
			select {
			case <-time.After(backoff):
				continue
			case <-n.quit:
				n.mu.Lock()
				left := len(q.events)
				q.running = false
				n.mu.Unlock()
				n.log.Error("gate stopping with session-closed events undelivered", "module", q.to.ID, "pending", left, "err", err)
				n.stats.closeEventsLost.Add(int64(left))
				return
			}
		}
		if err != nil {
			n.log.Error("session-closed notification refused by the listener", "module", q.to.ID, "session", ev.SessionID, "err", err)
		} else {
			n.stats.closeEventsSent.Add(1)
		}
		if !failingSince.IsZero() {
			n.mu.Lock()
			left := len(q.events) - 1
			n.mu.Unlock()
			n.log.Info("session-closed notifications flowing again", "module", q.to.ID,
				"after", time.Since(failingSince).Round(time.Millisecond), "pending", left)
			failingSince = time.Time{}
		}
		backoff = 0
		n.mu.Lock()
		if len(q.events) > 0 && q.events[0] == ev { // not dropped by an overflow meanwhile
			q.events[0] = nil
			q.events = q.events[1:]
		}
		n.mu.Unlock()
	}
}

// send delivers one event and waits for the handler to finish, so a
// delivery counts only once the listener has run it.
func (n *notifier) send(to core.Target, sess *core.SessionData) error {
	ctx, cancel := context.WithTimeout(n.ctx, notifyTimeout)
	defer cancel()
	_, err := n.app.Invoke(ctx, to, &core.Request{Fn: sessionClosedMethod, Session: sess})
	return err
}

// retryable tells a listener that cannot be reached now (down, restarting,
// broker away, timed out) from one that ran the event or never will (no
// OnSessionClosed method: a configuration error, reported, not retried).
func retryable(err error) bool {
	switch {
	case errors.Is(err, core.ErrTransport), errors.Is(err, core.ErrTimeout):
		return true
	case errors.Is(err, core.ErrNotFound):
		var e *core.Error
		return !(errors.As(err, &e) && strings.HasPrefix(e.Msg, "Remote function("))
	}
	return false
}

// close stops retrying: it gives what is pending up to wait to be
// delivered, then reports what was not.
func (n *notifier) close(wait time.Duration) {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(wait):
	}
	close(n.quit)
	n.cancel()
	<-done
}
