package gate_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// The gate reads plain TCP sockets itself (rawread.go): these tests cut
// the stream where a net.Conn reader never sees it cut, and close it
// where only the read it skips would notice.

// TestRequestsInPieces: requests of every size, from empty text to four
// times the read buffer, written in pieces that cut them anywhere (in a
// fixed header, in a body, several packets in one piece), all get their
// replies, intact and in order.
func TestRequestsInPieces(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.StartWith(t, echoModule())
	c := mqtttest.Connect(t, d.TCPAddr, "pieces", 30)
	rng := rand.New(rand.NewPCG(11, 7))
	sizes := []int{0, 1, 100, 2030, 2048, 2049, 4000, 9000}
	const batches, perBatch = 8, 25 // within the connection's in-flight limit
	i := 0
	for range batches {
		var stream []byte
		var want []string
		for range perBatch {
			text := strings.Repeat(string(rune('a'+i%26)), sizes[i%len(sizes)]+rng.IntN(40))
			body := fmt.Sprintf(`{"n":%d,"text":%q}`, i, text)
			stream = (&packets.Publish{Topic: fmt.Sprintf("Echo/Handler_Work/%d", i+1), Payload: []byte(body)}).AppendTo(stream)
			want = append(want, fmt.Sprintf(`{"Error":"","Result":{"n":%d,"text":%q}}`, i+1, text))
			i++
		}
		for off := 0; off < len(stream); {
			end := min(off+1+rng.IntN(3000), len(stream))
			c.Write(stream[off:end])
			off = end
			if rng.IntN(4) == 0 {
				// Pacing, not synchronisation: a pause lets the gate read
				// what was sent so far, so reads end inside packets.
				time.Sleep(time.Millisecond)
			}
		}
		for k, w := range want {
			p := c.WaitPublish("Echo/Handler_Work/", 10*time.Second)
			if got := string(p.Payload); got != w {
				t.Fatalf("reply %d of the batch (%s): got %.80s... (%d bytes), want %.80s... (%d bytes)",
					k, p.Topic, got, len(got), w, len(w))
			}
		}
	}
	if got := c.Request("Echo/Handler_Work/9999", `{"n":1,"text":"after"}`); got != `{"Error":"","Result":{"n":2,"text":"after"}}` {
		t.Fatalf("after the pieces: %s", got)
	}
}

// TestCloseRightBehindARequest: a busy client whose last request and the
// end of its stream come in one segment is closed at once, not after its
// keep-alive. The gate's read that returns the request does not see the
// end; the poller reported both together and wakes no one again, so the
// gate's wait without an empty read must be bounded.
func TestCloseRightBehindARequest(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.StartWith(t, echoModule())
	c := mqtttest.Connect(t, d.TCPAddr, "leaver", 60)
	// Busy: requests one after another, reads well under busyGap apart.
	for range 20 {
		if got := c.Request("Echo/Handler_Echo/1", `{"n":1,"text":"x"}`); !strings.Contains(got, `"Error":""`) {
			t.Fatalf("echo: %s", got)
		}
	}
	tcp := c.Conn.(*net.TCPConn)
	rc, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// Corked, the request waits for the shutdown and leaves with its FIN.
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	c.Write((&packets.Publish{Topic: "Echo/Handler_Echo/2", Payload: []byte(`{"n":2,"text":"bye"}`)}).AppendTo(nil))
	sent := time.Now()
	if err := tcp.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	mqtttest.Poll(t, "connection closed by peer", func() bool { return strings.Contains(d.Logs.String(), "connection closed by peer") })
	// The keep-alive would close it after 90 s; blindWait is 250 ms.
	if took := time.Since(sent); took > 2*time.Second {
		t.Errorf("the end of the stream was noticed after %v", took)
	}
	mqtttest.Poll(t, "connection unregistered", func() bool { return d.Gate.Stats().Connections == 0 })
}

// TestRequestsWithTheConnect: what a client sends in the CONNECT's write
// (requests, and the start of one more) is read before the socket is
// read again, and the rest of that request completes it.
func TestRequestsWithTheConnect(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.StartWith(t, echoModule())
	c := mqtttest.Dial(t, d.TCPAddr)
	b := (&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 30, ClientID: "eager"}).AppendTo(nil)
	for i := 1; i <= 3; i++ {
		b = (&packets.Publish{Topic: fmt.Sprintf("Echo/Handler_Work/%d", i), Payload: []byte(fmt.Sprintf(`{"n":%d,"text":"t"}`, i))}).AppendTo(b)
	}
	last := (&packets.Publish{Topic: "Echo/Handler_Work/4", Payload: []byte(`{"n":4,"text":"` + strings.Repeat("z", 3000) + `"}`)}).AppendTo(nil)
	c.Write(append(b, last[:100]...))
	if p, ok := c.Next(5 * time.Second).(*packets.Connack); !ok || p.ReturnCode != packets.Accepted {
		t.Fatalf("CONNACK: %#v", p)
	}
	for i := 1; i <= 3; i++ {
		p := c.WaitPublish(fmt.Sprintf("Echo/Handler_Work/%d", i), 5*time.Second)
		if want := fmt.Sprintf(`{"Error":"","Result":{"n":%d,"text":"t"}}`, i+1); string(p.Payload) != want {
			t.Fatalf("reply %d: %s", i, p.Payload)
		}
	}
	c.Write(last[100:])
	p := c.WaitPublish("Echo/Handler_Work/4", 5*time.Second)
	if want := `{"Error":"","Result":{"n":5,"text":"` + strings.Repeat("z", 3000) + `"}}`; string(p.Payload) != want {
		t.Fatalf("reply 4: %.80s... (%d bytes)", p.Payload, len(p.Payload))
	}
}
