package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/wsconn"
)

// Routes and push topic of the chat demo.
const (
	LoginRoute = "Login/Handler_Login"
	JoinRoute  = "Chat/Handler_JoinChat"
	SayRoute   = "Chat/Handler_Say"
	onSayTopic = "Chat/OnSay"
)

// Backoff bounds of a client's reconnects.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 500 * time.Millisecond
)

// ClientConfig says what a client does.
type ClientConfig struct {
	Name string // unique in the run: client id, chaosId prefix
	Gate string // the gate's name, for the figures
	URL  string // tcp://host:port or ws://host:port/mqtt
	User string // log in as
	// Room makes the client a chat member: it logs in, joins Room and says
	// numbered messages there; without it the client logs in again and
	// again.
	Room    string
	Every   time.Duration // pause between calls, ±20%
	Timeout time.Duration // a call without a reply after this has timed out
}

// Client is one player: it connects, calls handlers one at a time, and
// reconnects with backoff (50 ms doubling to 500 ms) when its connection
// drops.
type Client struct {
	cfg ClientConfig
	rec *Recorder
	seq int // last msgid; only the Run goroutine uses it

	mu   sync.Mutex
	sess *session // current connection; nil between connections
	done chan struct{}
}

// NewClient returns a client that records into rec.
func NewClient(cfg ClientConfig, rec *Recorder) *Client {
	return &Client{cfg: cfg, rec: rec, done: make(chan struct{})}
}

// Gate returns the name of the gate the client connects to.
func (c *Client) Gate() string { return c.cfg.Gate }

// Run makes calls until load is done, then returns once the call in
// flight has its outcome, leaving the connection open so late replies are
// still seen. Close closes it.
func (c *Client) Run(load context.Context) {
	defer close(c.done)
	backoff := backoffMin
	for load.Err() == nil {
		s, err := c.connect(load)
		if err != nil {
			if !sleep(load, jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		backoff = backoffMin
		c.serve(load, s)
	}
}

// Close waits for Run to return, then says DISCONNECT and closes the
// connection.
func (c *Client) Close() {
	<-c.done
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// serve makes calls on s until load is done or s is lost.
func (c *Client) serve(load context.Context, s *session) {
	joined := c.cfg.Room == ""
	var join *Join
	var inRoom time.Time // last time the member was known to be in the room
	for load.Err() == nil && s.alive() {
		if !joined {
			if c.call(s, LoginRoute, map[string]string{"userName": c.cfg.User, "passWord": "x"}).OK() &&
				c.call(s, JoinRoute, map[string]string{"roomName": c.cfg.Room}).OK() {
				joined = true
				join = &Join{Member: c.cfg.User, Gate: c.cfg.Gate, From: time.Now()}
				inRoom = join.From
				c.rec.addJoin(join)
				s.onLost(func(at time.Time) { c.endJoin(join, at) })
			}
		} else if c.cfg.Room == "" {
			c.call(s, LoginRoute, map[string]string{"userName": c.cfg.User, "passWord": "x"})
		} else {
			call := c.call(s, SayRoute, map[string]string{"roomName": c.cfg.Room, "say": ""})
			switch {
			case call.OK():
				inRoom = call.Replied
			case call.Err == "Not Logined", call.Err == "No room", call.Err == "You haven't been in the room yet":
				// The server forgot the membership (Chat restarted)
				// some time after the last good say: broadcasts are
				// expected up to then only. Join again.
				c.endJoin(join, inRoom)
				joined = false
			}
		}
		if !sleep(load, jitter(c.cfg.Every)) {
			return
		}
	}
}

func (c *Client) endJoin(j *Join, at time.Time) {
	c.mu.Lock()
	if j.To.IsZero() {
		j.To = at
	}
	c.mu.Unlock()
}

// call sends one request and waits for its reply, the call timeout or the
// connection's loss. Its body gets the call's chaosId; a say's text is the
// chaosId too, so broadcasts can be matched to calls.
func (c *Client) call(s *session, route string, body map[string]string) *Call {
	c.seq++
	id := c.cfg.Name + "." + strconv.Itoa(c.seq)
	body["chaosId"] = id
	if _, ok := body["say"]; ok {
		body["say"] = id
	}
	payload, _ := json.Marshal(body)
	topic := route + "/" + strconv.Itoa(c.seq)
	call := &Call{ID: id, Client: c.cfg.Name, Gate: c.cfg.Gate, Route: route}
	p := &pending{call: call, done: make(chan struct{})}
	c.mu.Lock()
	s.pending[topic] = p
	call.Sent = time.Now()
	c.mu.Unlock()
	c.rec.addCall(call)
	if err := s.write(packets.AppendPublish(nil, topic, payload, 0, 0)); err != nil {
		s.nc.Close() // the reader sees it and marks the call lost
	}
	timer := time.NewTimer(c.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-s.dead:
	case <-timer.C:
	}
	c.mu.Lock()
	if call.Ended.IsZero() { // no reply and the connection is still up (or was lost just now)
		call.Ended = time.Now()
		if s.alive() {
			call.GaveUp = true
		} else {
			call.ConnLost = true
		}
	}
	c.mu.Unlock()
	return call
}

// pending is a call awaiting its reply.
type pending struct {
	call   *Call
	done   chan struct{} // closed on the first reply
	closed bool
}

// session is one connection of a client.
type session struct {
	c       *Client
	nc      net.Conn
	rd      *packets.Reader
	conn    *Conn
	wmu     sync.Mutex
	connack chan *packets.Connack
	dead    chan struct{} // closed when the reader stops

	// Guarded by c.mu.
	pending map[string]*pending // topic -> call
	closing bool
	lostFn  []func(time.Time)
}

func (c *Client) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := dial(ctx, c.cfg.URL)
	if err != nil {
		return nil, err
	}
	s := &session{c: c, nc: nc, rd: packets.NewReader(bufio.NewReader(nc)),
		connack: make(chan *packets.Connack, 1), dead: make(chan struct{}), pending: map[string]*pending{}}
	s.rd.SetMaxSize(packets.MaxRemainingLength)
	go s.readLoop()
	connect := &packets.Connect{ProtocolName: packets.ProtocolNameV311, ProtocolLevel: packets.ProtocolLevelV311,
		CleanSession: true, KeepAlive: 30, ClientID: c.cfg.Name}
	if err := s.write(connect.AppendTo(nil)); err != nil {
		s.abandon()
		return nil, err
	}
	select {
	case ack := <-s.connack:
		if ack.ReturnCode != packets.Accepted {
			s.abandon()
			return nil, fmt.Errorf("CONNECT refused: %d", ack.ReturnCode)
		}
	case <-s.dead:
		s.abandon()
		return nil, fmt.Errorf("closed before CONNACK")
	case <-ctx.Done():
		s.abandon()
		return nil, ctx.Err()
	}
	s.conn = &Conn{Client: c.cfg.Name, Gate: c.cfg.Gate, Up: time.Now()}
	c.rec.addConn(s.conn)
	c.mu.Lock()
	c.sess = s
	dead := false
	select {
	case <-s.dead:
		dead = true
	default:
	}
	c.mu.Unlock()
	if dead { // lost between CONNACK and now: record it as lost
		s.lost(fmt.Errorf("closed right after CONNACK"))
	}
	return s, nil
}

// abandon closes a connection that never became a session.
func (s *session) abandon() {
	s.c.mu.Lock()
	s.closing = true
	s.c.mu.Unlock()
	s.nc.Close()
	<-s.dead
}

func (s *session) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := s.nc.Write(b)
	return err
}

func (s *session) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

// onLost registers f to run with the time the connection is lost (at once
// if it already is).
func (s *session) onLost(f func(time.Time)) {
	c := s.c
	c.mu.Lock()
	if s.conn.Down.IsZero() {
		s.lostFn = append(s.lostFn, f)
		c.mu.Unlock()
		return
	}
	at := s.conn.Down
	c.mu.Unlock()
	f(at)
}

func (s *session) readLoop() {
	defer close(s.dead)
	for {
		p, err := s.rd.ReadPacket()
		now := time.Now()
		if err != nil {
			s.lost(err)
			return
		}
		switch p := p.(type) {
		case *packets.Connack:
			select {
			case s.connack <- p:
			default:
			}
		case *packets.Publish:
			if p.Topic == onSayTopic {
				var m struct{ Say string }
				if json.Unmarshal(p.Payload, &m) == nil {
					s.c.rec.received(s.c.cfg.User, m.Say, now)
				}
				continue
			}
			s.reply(p, now)
		}
	}
}

func (s *session) reply(p *packets.Publish, now time.Time) {
	var rep struct{ Error string }
	if err := json.Unmarshal(p.Payload, &rep); err != nil {
		rep.Error = "reply not JSON: " + string(p.Payload)
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := s.pending[p.Topic]
	if pc == nil {
		return // a push the client does not track (OnJoin, OnLeave)
	}
	call := pc.call
	call.Replies++
	if !call.Replied.IsZero() {
		return
	}
	call.Replied, call.Err = now, rep.Error
	if call.Ended.IsZero() {
		call.Ended = now
	}
	if !pc.closed {
		pc.closed = true
		close(pc.done)
	}
	if call.Err == "" && !call.GaveUp {
		c.rec.ok(call.Client, call.Gate, call.Route, now)
	}
}

// lost records the end of the connection; calls still waiting lose it.
func (s *session) lost(err error) {
	c := s.c
	now := time.Now()
	c.mu.Lock()
	if s.conn == nil { // not yet a session: connect reports it
		c.mu.Unlock()
		return
	}
	if !s.conn.Down.IsZero() {
		c.mu.Unlock()
		return
	}
	s.conn.Down = now
	if s.closing {
		s.conn.Closed = true
	} else {
		s.conn.Err = err.Error()
	}
	for _, pc := range s.pending {
		if pc.call.Ended.IsZero() {
			pc.call.ConnLost, pc.call.Ended = true, now
		}
	}
	fns := s.lostFn
	s.lostFn = nil
	if c.sess == s {
		c.sess = nil
	}
	c.mu.Unlock()
	for _, f := range fns {
		f(now)
	}
}

// close says DISCONNECT, closes and waits for the reader.
func (s *session) close() {
	s.c.mu.Lock()
	s.closing = true
	s.c.mu.Unlock()
	_ = s.write((&packets.Disconnect{}).AppendTo(nil))
	s.nc.Close()
	<-s.dead
}

func dial(ctx context.Context, raw string) (net.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{}
	switch u.Scheme {
	case "tcp":
		return d.DialContext(ctx, "tcp", u.Host)
	case "ws":
		wd := websocket.Dialer{NetDialContext: d.DialContext, Subprotocols: []string{"mqtt"}}
		ws, resp, err := wd.DialContext(ctx, raw, nil)
		if err != nil {
			return nil, err
		}
		_ = resp.Body.Close()
		return wsconn.New(ws), nil
	}
	return nil, fmt.Errorf("chaos: URL %q: want tcp:// or ws://", raw)
}

func jitter(d time.Duration) time.Duration {
	return d*4/5 + rand.N(d*2/5+1)
}

// sleep waits d or until ctx is done; false when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
