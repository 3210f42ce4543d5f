package rabbitmq_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

// silencer is a TCP proxy to the broker that can make the connections it
// carries go silent: from silence() on, what either side sends is read
// and dropped, and nothing is closed, not even when the broker gives up
// on its side. That is a broker frozen, or a network that drops
// everything: no error, no EOF, only nothing. Connections made after
// silence() are carried as usual.
type silencer struct {
	ln     net.Listener
	target string
	URI    string

	mu     sync.Mutex
	quiet  map[*pair]bool // pairs made before silence(): silent
	pairs  []*pair
	closed bool
	wg     sync.WaitGroup
}

type pair struct{ client, server net.Conn }

func startSilencer(t *testing.T, brokerPort int) *silencer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silencer{ln: ln, target: net.JoinHostPort("127.0.0.1", strconv.Itoa(brokerPort)), quiet: map[*pair]bool{},
		URI: "amqp://guest:guest@" + ln.Addr().String() + "/"}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *silencer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", s.target)
		if err != nil {
			c.Close()
			continue
		}
		p := &pair{client: c, server: u}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		s.pairs = append(s.pairs, p)
		s.wg.Add(2)
		s.mu.Unlock()
		go s.carry(p, p.client, p.server)
		go s.carry(p, p.server, p.client)
	}
}

// carry copies from to to while p speaks; once p is silent it drops what
// comes, and an end of from closes nothing.
func (s *silencer) carry(p *pair, from, to net.Conn) {
	defer s.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		s.mu.Lock()
		quiet := s.quiet[p]
		s.mu.Unlock()
		if n > 0 && !quiet {
			if _, werr := to.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if !quiet {
				from.Close()
				to.Close()
			}
			return
		}
	}
}

// silence makes every connection carried so far go silent.
func (s *silencer) silence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pairs {
		s.quiet[p] = true
	}
}

func (s *silencer) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	s.quiet = map[*pair]bool{} // ends close both sides again
	for _, p := range s.pairs {
		p.client.Close()
		p.server.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Fault: the broker, or the network to it, goes silent. The process
// notices within two heartbeats though nothing closes, fails the calls
// waiting for replies at once (not at their deadline), logs why, and is
// back once a new connection gets through.
//
// A plain amqp:// URI connects over the transport's own reads, which keep
// the read deadline; one with options goes through amqp.DialConfig, where
// amqp091-go's heartbeater keeps it (wire.go, dialBroker). Both notice.
func TestSilentBrokerNoticed(t *testing.T) {
	for _, tc := range []struct{ name, query string }{{"own reads", ""}, {"amqp091 heartbeater", "?heartbeat=1"}} {
		t.Run(tc.name, func(t *testing.T) { testSilentBroker(t, tc.query) })
	}
}

func testSilentBroker(t *testing.T, query string) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	const hb = time.Second // the least RabbitMQ negotiates
	old := rabbitmq.SetHeartbeat(hb)
	defer rabbitmq.SetHeartbeat(old)
	px := startSilencer(t, broker.Port)
	c := startClusterVia(t, 30*time.Second, map[string]string{"caller": px.URI + query}, "p1")
	// Cleanups run last first: the proxy's connections end before the
	// processes stop, so a process that never noticed the silence fails
	// this test instead of hanging it.
	t.Cleanup(px.close)
	cl := c.client()
	if !echoOK(cl) {
		t.Fatal("no call through the proxy before the fault")
	}
	// A call the server answers only after the fault: its reply is what
	// the caller waits for when the broker goes silent.
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := cl.Slow(context.Background(), 5000)
		errc <- err
	}()
	pollWithin(t, 5*time.Second, "the slow call reaches the server", func() bool { return c.probes["p1"].SlowRan.Load() > 0 })
	px.silence()
	select {
	case err := <-errc:
		took := time.Since(start)
		if !errors.Is(err, core.ErrTransport) {
			t.Errorf("the waiting call failed with %v, want an ErrTransport", err)
		}
		// Nothing arrives for 1.5 to 2 heartbeats; then the call fails,
		// before its reply would have come.
		if took > 4*hb {
			t.Errorf("the waiting call failed after %v; the heartbeat is %v", took, hb)
		}
		t.Logf("silent broker noticed: the waiting call failed after %v (%v)", took, err)
	case <-time.After(15 * time.Second):
		t.Fatal("a silent broker was not noticed in 15 s (heartbeat 1 s): the waiting call still waits")
	}
	logs := c.logs.String()
	if i := strings.Index(logs, "broker connection lost"); i < 0 {
		t.Errorf("the lost connection is not logged:\n%s", logs)
	} else {
		line, _, _ := strings.Cut(logs[i:], "\n")
		t.Logf("log: %s", line)
	}
	if query == "" && !strings.Contains(logs, "nothing from the broker") {
		t.Errorf("the log does not say the broker went silent:\n%s", logs)
	}
	pollWithin(t, 15*time.Second, "calls work again over a new connection", func() bool { return echoOK(cl) })
	pollWithin(t, 10*time.Second, "the slow call ends on the server", func() bool { return c.probes["p1"].SlowDone.Load() > 0 })
}
