package rabbittest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func dial(uri string) (*amqp.Connection, error) {
	return amqp.DialConfig(uri, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
}

func mustDial(t *testing.T, uri string) *amqp.Connection {
	t.Helper()
	c, err := dial(uri)
	if err != nil {
		t.Fatalf("dial %s: %v", uri, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip publishes body to queue and consumes it back.
func roundTrip(t *testing.T, c *amqp.Connection, queue, body string) {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	consume(t, ch, queue, body)
}

func consume(t *testing.T, ch *amqp.Channel, queue, want string) {
	t.Helper()
	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-deliveries:
		if string(d.Body) != want {
			t.Fatalf("queue %s: got %q, want %q", queue, d.Body, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("queue %s: no message within 10 s", queue)
	}
}

// ours lists live processes of b found independently of Stop's own
// bookkeeping: the node name on the command line, or b's epmd port in the
// environment.
func ours(b *Broker) []int {
	pids := findProcs(nil, b.markers())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if state, _, ok := procStat(pid); ok && state != 'Z' && strings.Contains(string(cmdline), b.Node) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// shared is the package's broker, started by TestMain through Main.
var shared *Broker

func TestMain(m *testing.M) { os.Exit(Main(m, &shared)) }

func TestShared(t *testing.T) {
	c := mustDial(t, shared.URI)
	roundTrip(t, c, "rabbittest.shared", "hello")

	t0 := time.Now()
	if err := shared.AddUser("alice", "s3cret"); err != nil {
		t.Fatal(err)
	}
	t.Logf("AddUser: %v", time.Since(t0))
	alice := mustDial(t, fmt.Sprintf("amqp://alice:s3cret@127.0.0.1:%d/", shared.Port))
	roundTrip(t, alice, "rabbittest.alice", "hi alice")
	if c, err := dial(fmt.Sprintf("amqp://alice:wrong@127.0.0.1:%d/", shared.Port)); err == nil {
		c.Close()
		t.Fatal("dial with a wrong password succeeded")
	}
}

func TestLifecycle(t *testing.T) {
	t0 := time.Now()
	b := StartT(t)
	t.Logf("start: %v (node %s, AMQP %d, dist %d, epmd %d)", time.Since(t0), b.Node, b.Port, b.distPort, b.epmdPort)
	if b.Port == shared.Port || b.Node == shared.Node {
		t.Fatalf("two brokers share port %d or node %s", b.Port, b.Node)
	}

	// A confirmed persistent message in a durable queue survives restarts.
	c := mustDial(t, b.URI)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("rabbittest.durable", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	kept := amqp.Publishing{Body: []byte("kept"), DeliveryMode: amqp.Persistent}
	conf, err := ch.PublishWithDeferredConfirm("", "rabbittest.durable", false, false, kept)
	if err != nil {
		t.Fatal(err)
	}
	if !conf.Wait() {
		t.Fatal("publish nacked")
	}

	closed := c.NotifyClose(make(chan *amqp.Error, 1))
	t0 = time.Now()
	if err := b.StopBroker(); err != nil {
		t.Fatal(err)
	}
	t.Logf("StopBroker: %v", time.Since(t0))
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("open connection not closed by StopBroker")
	}
	if c, err := dial(b.URI); err == nil {
		c.Close()
		t.Fatal("dial succeeded while the broker is stopped")
	}
	if err := b.StopBroker(); err != nil {
		t.Fatalf("second StopBroker: %v", err)
	}

	t0 = time.Now()
	if err := b.StartAgain(); err != nil {
		t.Fatal(err)
	}
	t.Logf("StartAgain: %v", time.Since(t0))
	c = mustDial(t, b.URI)
	ch, err = c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	consume(t, ch, "rabbittest.durable", "kept") // same data dir

	t0 = time.Now()
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart: %v", time.Since(t0))
	mustDial(t, b.URI)

	t0 = time.Now()
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop: %v", time.Since(t0))
	if err := b.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if left := ours(b); len(left) > 0 {
		t.Fatalf("processes left after Stop:%s", describe(left))
	}
	for _, p := range []int{b.Port, b.distPort, b.epmdPort} {
		if listening(p) {
			t.Errorf("port %d still listening after Stop", p)
		}
	}
	if err := b.StartAgain(); err == nil {
		t.Error("StartAgain after Stop succeeded")
	}
	if _, err := os.Stat(b.path("run", "erl_crash.dump")); err == nil {
		t.Error("the broker crashed: erl_crash.dump in", b.path("run"))
	}
}

func TestMissingServer(t *testing.T) {
	defer func(d string) { binDir = d }(binDir)
	binDir = t.TempDir()
	_, err := Start(t.TempDir())
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install -y rabbitmq-server") {
		t.Fatalf("got %v, want ErrNotInstalled naming the package", err)
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = StartOn(t.TempDir(), port)
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("got %v, want ErrPortInUse", err)
	}
	if left := ours(newBroker("", port)); len(left) > 0 {
		t.Fatalf("processes left:%s", describe(left))
	}
}

// TestBootFailure checks that a broker dying at boot is reported at once,
// with its log, and leaves nothing behind.
func TestBootFailure(t *testing.T) {
	if err := checkInstalled(); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	b := newBroker(t.TempDir(), port)
	b.extraConf = "rabbittest.no_such_setting = 1\n"
	t0 := time.Now()
	b.mu.Lock()
	err = b.start()
	b.mu.Unlock()
	took := time.Since(t0)
	t.Logf("boot failure reported after %v", took)
	if err == nil {
		b.Stop()
		t.Fatal("broker with a bad config started")
	}
	if !strings.Contains(err.Error(), "no_such_setting") {
		t.Errorf("error does not show the log:\n%v", err)
	}
	if took > readyTimeout/2 {
		t.Errorf("boot failure took %v to report, want well under the %v deadline", took, readyTimeout)
	}
	if left := ours(b); len(left) > 0 {
		t.Fatalf("processes left:%s", describe(left))
	}
}

// TestMessagesReceived: the broker's count of published messages rises by
// exactly the messages a client publishes.
func TestMessagesReceived(t *testing.T) {
	before, err := shared.MessagesReceived()
	if err != nil {
		t.Fatal(err)
	}
	c := mustDial(t, shared.URI)
	for i := range 3 {
		roundTrip(t, c, "rabbittest.counted", fmt.Sprint("message ", i))
	}
	after, err := shared.MessagesReceived()
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 3 {
		t.Errorf("messages received went from %d to %d after 3 publishes, want +3", before, after)
	}
}
