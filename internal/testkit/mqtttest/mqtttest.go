// Package mqtttest is a minimal raw MQTT client for tests that need to do
// what well-behaved clients never do: send malformed or oversized packets,
// retransmit, stay silent, never read. It encodes and decodes with the
// gate's own codec.
package mqtttest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/wsconn"
)

// Client is one raw MQTT connection.
type Client struct {
	t       testing.TB
	Conn    net.Conn
	rd      *packets.Reader
	pending []*packets.Publish // PUBLISHes read while waiting for something else
}

// Dial connects without sending anything.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	rd := packets.NewReader(bufio.NewReader(nc))
	rd.SetMaxSize(packets.MaxRemainingLength)
	return &Client{t: t, Conn: nc, rd: rd}
}

// Connect dials and completes CONNECT/CONNACK (accepted).
func Connect(t testing.TB, addr, clientID string, keepAlive uint16) *Client {
	t.Helper()
	c := Dial(t, addr)
	c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: keepAlive, ClientID: clientID})
	p := c.Next(5 * time.Second)
	ack, ok := p.(*packets.Connack)
	if !ok || ack.ReturnCode != packets.Accepted {
		t.Fatalf("CONNECT %s: got %#v", clientID, p)
	}
	return c
}

// Send writes one packet.
func (c *Client) Send(p packets.Packet) {
	c.t.Helper()
	c.Write(p.AppendTo(nil))
}

// Write writes raw bytes.
func (c *Client) Write(b []byte) {
	c.t.Helper()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Read reads the next packet, or returns the error (EOF when the server
// closed the connection).
func (c *Client) Read(within time.Duration) (packets.Packet, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(within))
	p, err := c.rd.ReadPacket()
	if pub, ok := p.(*packets.Publish); ok {
		return pub.Clone(), err
	}
	return p, err
}

// Next reads the next packet and fails the test on error.
func (c *Client) Next(within time.Duration) packets.Packet {
	c.t.Helper()
	p, err := c.Read(within)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}

// WaitPublish returns the first PUBLISH whose topic has the given prefix,
// keeping the others for later calls.
func (c *Client) WaitPublish(prefix string, within time.Duration) *packets.Publish {
	c.t.Helper()
	for i, p := range c.pending {
		if strings.HasPrefix(p.Topic, prefix) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return p
		}
	}
	deadline := time.Now().Add(within)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("no PUBLISH on %s* within %v", prefix, within)
		}
		p, err := c.Read(left)
		if err != nil {
			c.t.Fatalf("waiting for %s*: %v", prefix, err)
		}
		pub, ok := p.(*packets.Publish)
		if !ok {
			continue
		}
		if strings.HasPrefix(pub.Topic, prefix) {
			return pub
		}
		c.pending = append(c.pending, pub)
	}
}

// Pending returns the PUBLISHes read but not yet claimed.
func (c *Client) Pending() []*packets.Publish { return c.pending }

// WaitAny returns the next packet that is not a PUBLISH, keeping PUBLISHes
// for WaitPublish.
func (c *Client) WaitAny(within time.Duration) packets.Packet {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := c.Read(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for a packet: %v", err)
		}
		if pub, ok := p.(*packets.Publish); ok {
			c.pending = append(c.pending, pub)
			continue
		}
		return p
	}
}

// Request publishes payload at QoS 0 on topic (which carries a msgid) and
// returns the reply body.
func (c *Client) Request(topic, payload string) string {
	c.t.Helper()
	c.Send(&packets.Publish{Topic: topic, Payload: []byte(payload)})
	return string(c.WaitPublish(topic, 10*time.Second).Payload)
}

// WaitClosed waits until the server closes the connection, discarding
// whatever arrives first.
func (c *Client) WaitClosed(within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, err := c.Read(time.Until(deadline)); err != nil {
			var ne net.Error
			if ok := asNetError(err, &ne); ok && ne.Timeout() {
				return false
			}
			return true
		}
	}
	return false
}

func asNetError(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// DialWS opens a WebSocket to url (ws://host:port/path) asking for the
// given subprotocols, and returns a Client over it plus the WebSocket, for
// tests that look at the handshake or send frames of their own. Every
// Client.Write is one binary frame, so a test chooses how packets fall into
// frames: one packet split over two writes, or two packets in one.
func DialWS(t testing.TB, url string, subprotocols ...string) (*Client, *websocket.Conn) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: subprotocols}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("websocket dial %s %v: %v", url, subprotocols, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	nc := wsconn.New(ws)
	rd := packets.NewReader(bufio.NewReader(nc))
	rd.SetMaxSize(packets.MaxRemainingLength)
	return &Client{t: t, Conn: nc, rd: rd}, ws
}
