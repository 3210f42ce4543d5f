package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// conn is one MQTT client connection of the load tool: a reader goroutine
// that handles everything the server sends, and writes from the connection's
// sender (requests), its set-up and the pinger, serialised by a mutex. The
// sender batches every request due at once into one write.
type conn struct {
	r    *run
	id   int
	nc   net.Conn
	user string
	room string

	wmu       sync.Mutex
	lastWrite atomic.Int64 // run clock, for keep-alive pings

	rd   *packets.Reader
	ctl  chan packets.Packet    // set-up answers: CONNACK, SUBACK, the awaited reply
	wait atomic.Pointer[string] // topic of the set-up reply awaited

	req    *requester // nil for idle connections and broadcast members
	member bool       // broadcast member: times Chat/OnSay deliveries

	closing atomic.Bool   // we are closing it: read errors are expected
	done    chan struct{} // closed when the reader has stopped
	readErr error         // why the reader stopped; read after done
}

func newConn(r *run, id int, nc net.Conn) *conn {
	c := &conn{r: r, id: id, nc: nc, ctl: make(chan packets.Packet, 4), done: make(chan struct{})}
	size := 4096
	if r.cfg.Mode == ModeIdle {
		size = 512 // idle connections read little; keep the tool small next to the server
	}
	c.rd = packets.NewReader(bufio.NewReaderSize(nc, size))
	c.rd.SetMaxSize(packets.MaxRemainingLength)
	c.lastWrite.Store(r.now())
	return c
}

// write sends b; any goroutine may call it.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.r.cfg.Timeout))
	_, err := c.nc.Write(b)
	c.lastWrite.Store(c.r.now())
	return err
}

func (c *conn) readLoop() {
	defer close(c.done)
	for {
		p, err := c.rd.ReadPacket()
		if err != nil {
			c.readErr = err
			if !c.closing.Load() {
				c.r.lost(c, err)
			}
			return
		}
		switch p := p.(type) {
		case *packets.Publish:
			if w := c.wait.Load(); w != nil && *w == p.Topic {
				c.wait.Store(nil)
				select {
				case c.ctl <- p.Clone():
				default:
				}
				continue
			}
			if c.req != nil && c.req.reply(p) {
				continue
			}
			if c.member && p.Topic == onSayTopic {
				c.r.delivery(c, p.Payload)
			}
			// Anything else (another member's OnJoin, ...) is not measured.
		case *packets.Pingresp:
		default:
			select {
			case c.ctl <- p:
			default:
			}
		}
	}
}

// await returns the next set-up answer, or an error when the reader stops
// or the deadline passes.
func (c *conn) await(ctx context.Context, what string) (packets.Packet, error) {
	select {
	case p := <-c.ctl:
		return p, nil
	case <-c.done:
		return nil, fmt.Errorf("waiting for %s: connection closed: %v", what, c.readErr)
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
	}
}

// setup runs CONNECT, SUBSCRIBE (rt), login and join, in that order.
func (c *conn) setup(ctx context.Context) error {
	cfg := &c.r.cfg
	go c.readLoop()
	connect := &packets.Connect{ProtocolName: packets.ProtocolNameV311, ProtocolLevel: packets.ProtocolLevelV311,
		CleanSession: true, KeepAlive: uint16(cfg.KeepAlive / time.Second), ClientID: fmt.Sprintf("mqantbench-%s-%d", c.r.tag, c.id)}
	if err := c.write(connect.AppendTo(nil)); err != nil {
		return fmt.Errorf("CONNECT: %w", err)
	}
	p, err := c.await(ctx, "CONNACK")
	if err != nil {
		return err
	}
	if ack, ok := p.(*packets.Connack); !ok {
		return fmt.Errorf("got %s, want CONNACK", packets.TypeName(p.Type()))
	} else if ack.ReturnCode != packets.Accepted {
		return fmt.Errorf("CONNECT refused, return code %d", ack.ReturnCode)
	}
	if cfg.Mode == ModeRT {
		filter := c.req.prefix + "+"
		sub := &packets.Subscribe{PacketID: 1, Topics: []packets.Subscription{{Filter: filter}}}
		if err := c.write(sub.AppendTo(nil)); err != nil {
			return fmt.Errorf("SUBSCRIBE: %w", err)
		}
		p, err := c.await(ctx, "SUBACK")
		if err != nil {
			return err
		}
		ack, ok := p.(*packets.Suback)
		if !ok {
			return fmt.Errorf("got %s, want SUBACK", packets.TypeName(p.Type()))
		}
		if len(ack.ReturnCodes) != 1 || ack.ReturnCodes[0] == packets.SubackFailure {
			return fmt.Errorf("SUBSCRIBE %s refused", filter)
		}
	}
	if cfg.Login {
		body, _ := json.Marshal(map[string]string{"userName": c.user, "passWord": "x"})
		if err := c.call(ctx, loginTopic+"/login", body); err != nil {
			return err
		}
	}
	if c.room != "" {
		body, _ := json.Marshal(map[string]string{"roomName": c.room})
		if err := c.call(ctx, joinTopic+"/join", body); err != nil {
			return err
		}
	}
	return nil
}

// call publishes body on topic and waits for the gate's reply on it.
func (c *conn) call(ctx context.Context, topic string, body []byte) error {
	c.wait.Store(&topic)
	if err := c.write(packets.AppendPublish(nil, topic, body, 0, 0)); err != nil {
		return fmt.Errorf("%s: %w", topic, err)
	}
	p, err := c.await(ctx, "the reply on "+topic)
	if err != nil {
		return err
	}
	pub, ok := p.(*packets.Publish)
	if !ok {
		return fmt.Errorf("%s: got %s, want the reply", topic, packets.TypeName(p.Type()))
	}
	var rep struct{ Error string }
	if err := json.Unmarshal(pub.Payload, &rep); err != nil {
		return fmt.Errorf("%s: reply %q is not the gate's JSON: %v", topic, pub.Payload, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("%s: %s", topic, rep.Error)
	}
	return nil
}

// close says DISCONNECT and closes the connection, then waits for the
// reader.
func (c *conn) close() {
	c.closing.Store(true)
	_ = c.write((&packets.Disconnect{}).AppendTo(nil))
	_ = c.nc.Close()
	<-c.done
}

// errorText returns a gate reply's error text, or "" when the payload is not
// an error reply ({"Error":"", ...} or anything else, such as an echo).
func errorText(payload []byte) string {
	const prefix = `{"Error":"`
	if len(payload) <= len(prefix) || string(payload[:len(prefix)]) != prefix || payload[len(prefix)] == '"' {
		return ""
	}
	var rep struct{ Error string }
	if err := json.Unmarshal(payload, &rep); err != nil || rep.Error == "" {
		return string(payload)
	}
	return rep.Error
}
