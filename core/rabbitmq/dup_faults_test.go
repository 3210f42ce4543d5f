package rabbitmq_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

// takenLog records OnInstanceTaken reports.
type takenLog struct {
	mu  sync.Mutex
	ids []string
}

func (l *takenLog) note(id string, _ error) { l.mu.Lock(); l.ids = append(l.ids, id); l.mu.Unlock() }
func (l *takenLog) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.ids {
		if x == id {
			return true
		}
	}
	return false
}

// newHeldTransport is a transport whose first connect is held until the
// returned release is called.
func newHeldTransport(t *testing.T, logs *syncBuf, name string) (*rabbitmq.Transport, func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	rabbitmq.SetAfterConnect(func() { <-hold })
	t.Cleanup(func() { release(); rabbitmq.SetAfterConnect(nil) })
	tr := rabbitmq.New(broker.URI, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("process", name))
	t.Cleanup(func() { release(); _ = tr.Close() })
	return tr, release
}

// Fault 2, the duplicate starts while its transport is not connected yet:
// Listen waits for the connection and refuses it; or, past its wait, the
// duplicate is refused on connecting, logged and reported.
func TestDuplicateRefusedWhenListenedDisconnected(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	logs := &syncBuf{}
	owner := newTransport(t, logs, "owner")
	if _, err := owner.Listen("Dup", "d1", newBlockEP()); err != nil {
		t.Fatal(err)
	}

	dup, release := newHeldTransport(t, logs, "dup")
	errc := make(chan error, 1)
	go func() {
		_, err := dup.Listen("Dup", "d1", newBlockEP())
		errc <- err
	}()
	// The connection comes up while Listen waits (if Listen were slower
	// to start, the test would only not exercise the wait).
	time.AfterFunc(300*time.Millisecond, release)
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "another connection") {
			t.Errorf("Listen of a duplicate while disconnected: %v, want refused", err)
		}
		t.Logf("refused: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("Listen did not return")
	}

	// Past Listen's wait: refused on connecting, logged and reported.
	old := rabbitmq.SetListenWait(100 * time.Millisecond)
	defer rabbitmq.SetListenWait(old)
	dup2, release2 := newHeldTransport(t, logs, "dup2")
	taken := &takenLog{}
	dup2.SetOnInstanceTaken(taken.note)
	if _, err := dup2.Listen("Dup", "d1", newBlockEP()); err != nil {
		t.Fatalf("Listen past its wait: %v", err)
	}
	release2()
	pollWithin(t, 15*time.Second, "the duplicate reported", func() bool { return taken.has("d1") })
	if logLines(logs, "level=ERROR", "instance id served by another process", "process=dup2") != 1 {
		t.Error("the refused duplicate is not logged once at Error")
	}
	if rabbitmq.Consuming(dup2, "d1") {
		t.Error("the refused duplicate still consumes")
	}
}

// Fault 2 after a reconnect: another connection consumes the instance
// queue when the process comes back; it retries quietly for as long as
// the broker may hold its old consumer, then says loudly that it was
// taken over and stops trying.
func TestInstanceTakenOverWhileReconnecting(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	old := rabbitmq.SetTakeoverAfter(1500 * time.Millisecond)
	defer rabbitmq.SetTakeoverAfter(old)
	logs := &syncBuf{}
	tr := newTransport(t, logs, "legit")
	taken := &takenLog{}
	tr.SetOnInstanceTaken(taken.note)
	cl, err := tr.Listen("Dup", "tk1", newBlockEP())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	hold := make(chan struct{})
	rabbitmq.SetAfterConnect(func() { <-hold })
	defer rabbitmq.SetAfterConnect(nil)
	if n, err := broker.CloseConnections(tr.Name(), "test: connection dropped"); err != nil || n != 1 {
		t.Fatalf("closing %s: %d, %v", tr.Name(), n, err)
	}
	// A duplicate takes the instance queue while the process reconnects.
	raw, err := amqp.Dial(broker.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var rch *amqp.Channel
	pollFor(t, "the duplicate consumes the instance queue", func() bool {
		ch, err := raw.Channel()
		if err != nil {
			return false
		}
		if _, err := ch.Consume("mqant.i.tk1", "", false, true, false, false, nil); err != nil {
			return false
		}
		rch = ch
		return true
	})
	_ = rch
	close(hold)
	t0 := time.Now()
	pollWithin(t, 10*time.Second, "the take-over reported", func() bool { return taken.has("tk1") })
	t.Logf("take-over reported after %v", time.Since(t0))
	if logLines(logs, "level=ERROR", "instance id taken over by another process", "tk1") != 1 {
		t.Error("the take-over is not logged once at Error")
	}
	if n := logLines(logs, "cannot consume", "tk1"); n > 3 {
		t.Errorf("the retries logged %d lines in %v", n, time.Since(t0))
	}
	if rabbitmq.Consuming(tr, "tk1") {
		t.Error("the taken-over endpoint still tries to consume")
	}
}

// A permission refused on the instance queue is the user's, not a
// duplicate: the endpoint is not refused as one, and the error names the
// queue.
func TestPermissionRefusedIsNotDuplicate(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	if _, err := broker.Ctl("add_user", "noread", "pw"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = broker.Ctl("delete_user", "noread") })
	if _, err := broker.Ctl("set_permissions", "-p", "/", "noread", ".*", ".*", "^amq\\.rabbitmq\\.reply-to$"); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	tr := rabbitmq.New(strings.Replace(broker.URI, "guest:guest", "noread:pw", 1), slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { _ = tr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := tr.Listen("Perm", "perm1", newBlockEP())
	if err != nil {
		var re *core.Error
		t.Fatalf("a permission error refused as a duplicate: %v (%v)", err, errors.As(err, &re))
	}
	defer cl.Close()
	pollWithin(t, 10*time.Second, "the permission error logged with its queue", func() bool {
		return logLines(logs, "cannot consume", "ACCESS_REFUSED", "mqant.i.perm1") > 0
	})
	if logLines(logs, "already served by another process") > 0 {
		t.Error("a permission error logged as a duplicate")
	}
}

// An endpoint closed while a reconnect starts the endpoints it listed
// does not come back as a consumer nobody closes.
func TestEndpointClosedDuringReconnectStaysClosed(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	logs := &syncBuf{}
	tr := newTransport(t, logs, "zmb")
	cl, err := tr.Listen("Zmb", "z1", newBlockEP())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closed := make(chan struct{})
	rabbitmq.SetBeforeResume(func() { once.Do(func() { _ = cl.Close(); close(closed) }) })
	defer rabbitmq.SetBeforeResume(nil)
	if n, err := broker.CloseConnections(tr.Name(), "test: connection dropped"); err != nil || n != 1 {
		t.Fatalf("closing %s: %d, %v", tr.Name(), n, err)
	}
	pollFor(t, "reconnected", func() bool { return logLines(logs, `msg="broker connected"`, "process=zmb") >= 2 })
	<-closed
	if rabbitmq.Consuming(tr, "z1") {
		t.Error("the closed endpoint consumes again after the reconnect")
	}
	raw, err := amqp.Dial(broker.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if dq, err := ch.QueueDeclarePassive("mqant.i.z1", false, false, false, false, nil); err == nil && dq.Consumers != 0 {
		t.Errorf("the closed endpoint's instance queue has %d consumers", dq.Consumers)
	}
}
