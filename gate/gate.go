package gate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/workpool"
	"github.com/mqantgen/mqantgen/runtime"
)

// Limits and defaults of the gate; each can be set in the module's config
// Settings under the same name.
const (
	DefaultMaxMsgLen       = 64 << 10 // bytes in one MQTT packet
	DefaultConnectMsgLen   = 16 << 10 // bytes in a packet before CONNECT
	DefaultMaxConnections  = 100000
	DefaultMaxQueue        = 1024 // outgoing messages waiting per connection
	DefaultMaxInflight     = 64   // handler calls per connection
	DefaultConnectTimeout  = 10 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultOverflowBytes   = 8 << 20 // outgoing bytes waiting per connection
	settingCloseListeners  = "SessionCloseListeners"
	sessionClosedMethod    = "OnSessionClosed"
	defaultSingleSessionOn = true
)

// AuthInfo is what an auth hook sees of a CONNECT.
type AuthInfo struct {
	ClientID   string
	Username   string
	Password   []byte
	RemoteAddr string
}

// AuthFunc decides on a CONNECT: 0 accepts; any other value is the CONNACK
// return code sent before the connection is closed (4: bad user name or
// password, 5: not authorised).
type AuthFunc func(ctx context.Context, info AuthInfo) byte

// Option changes a gate built by New.
type Option func(*Gate)

// WithAuth installs an auth hook.
func WithAuth(f AuthFunc) Option { return func(g *Gate) { g.auth = f } }

// Publisher is the connection a PublishHandler was called for.
type Publisher interface {
	// Publish queues a QoS 0 PUBLISH to the client, as a reply or push
	// does; false when the connection is closed (or closes because its
	// queue is full).
	Publish(topic string, body []byte) bool
}

// PublishHandler receives the PUBLISH packets clients send, in place of the
// gate's routing: no topic or JSON checks, no RPC. It runs on the
// connection's reader goroutine, so it must not block, and p and its
// Payload are valid only until it returns. QoS 1 and 2 are still
// acknowledged by the gate.
type PublishHandler func(c Publisher, p *packets.Publish)

// WithPublishHandler replaces routing with h. It exists for the benchmark's
// reference echo server (bench/echoserver), which measures the gate's own
// listeners, codec and connection code without routing and RPC; a real
// gate never uses it.
func WithPublishHandler(h PublishHandler) Option { return func(g *Gate) { g.onPublish = h } }

// Stats are the gate's counters.
type Stats struct {
	Connections    int64 // open now
	Accepted       int64 // since start
	Refused        int64 // over MaxConnections or refused by auth
	Malformed      int64 // connections closed for a malformed or oversized packet
	SlowClosed     int64 // connections closed because their outgoing queue was full
	KeepAliveLost  int64 // connections closed for silence
	Dropped        int64 // messages dropped (bad topic, over the in-flight limit)
	Requests       int64 // PUBLISH packets routed to a handler
	BroadcastCalls int64 // Broadcast RPC calls received
	Sends          int64 // messages queued to clients
}

// Gate is the gate module.
//
//mqant:module
type Gate struct {
	runtime.BaseModule
	log       *slog.Logger
	auth      AuthFunc
	onPublish PublishHandler // nil: route to modules

	cfg       gateConfig
	drains    *workpool.Pool[drainJob] // runs connections' call queues
	listeners []listener
	wg        sync.WaitGroup
	closing   atomic.Bool

	mu         sync.Mutex
	byID       map[string]*conn
	byClientID map[string]*conn
	byUID      map[string]*conn
	nextID     atomic.Uint64

	stats struct {
		connections, accepted, refused, malformed, slowClosed, keepAliveLost,
		dropped, requests, broadcastCalls, sends atomic.Int64
	}
}

type gateConfig struct {
	tcpAddr, wsAddr string
	tlsConfig       *tls.Config
	maxMsgLen       int
	maxConnections  int
	maxQueue        int
	maxInflight     int
	singleSession   bool
	closeListeners  []string
	connectTimeout  time.Duration
}

// New returns a gate module factory for App.Register.
func New(opts ...Option) func() runtime.Module {
	return func() runtime.Module {
		g := &Gate{}
		for _, o := range opts {
			o(g)
		}
		return g
	}
}

// GetType implements runtime.Module.
func (g *Gate) GetType() string { return Gate_Type }

// OnInit reads the settings and binds the listeners, so a taken port fails
// start-up instead of leaving a half-started server.
func (g *Gate) OnInit(app *runtime.App, settings *runtime.ModuleSettings) error {
	g.Init(app, settings)
	g.log = app.Logger().With("gate", settings.ID)
	g.byID = map[string]*conn{}
	g.byClientID = map[string]*conn{}
	g.byUID = map[string]*conn{}
	if err := g.readConfig(settings); err != nil {
		return err
	}
	RegisterGateServer(g.RPCServer(), g)
	g.drains = workpool.New(runDrain, 30*time.Second)
	if g.cfg.tcpAddr != "" {
		l, err := listenTCP(g.cfg.tcpAddr, g.cfg.tlsConfig)
		if err != nil {
			return fmt.Errorf("gate %s: TCP listen %s: %w", settings.ID, g.cfg.tcpAddr, err)
		}
		g.listeners = append(g.listeners, l)
		g.log.Info("TCP listening", "addr", l.Addr().String(), "tls", g.cfg.tlsConfig != nil)
	}
	if g.cfg.wsAddr != "" {
		l, err := listenWS(g.cfg.wsAddr, g.cfg.tlsConfig, g.log)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("gate %s: WebSocket listen %s: %w", settings.ID, g.cfg.wsAddr, err)
		}
		g.listeners = append(g.listeners, l)
		g.log.Info("WebSocket listening", "addr", l.Addr().String(), "tls", g.cfg.tlsConfig != nil)
	}
	return nil
}

func (g *Gate) readConfig(s *runtime.ModuleSettings) error {
	var errs []error
	num := func(key string, def int) int {
		n, err := s.Int(key, def)
		if err != nil {
			errs = append(errs, err)
		} else if n <= 0 {
			errs = append(errs, fmt.Errorf("setting %s: must be positive, got %d", key, n))
			n = def
		}
		return n
	}
	c := gateConfig{
		tcpAddr:        s.String("TCPAddr", ""),
		wsAddr:         s.String("WSAddr", ""),
		maxMsgLen:      num("MaxMsgLen", DefaultMaxMsgLen),
		maxConnections: num("MaxConnections", DefaultMaxConnections),
		maxQueue:       num("MaxQueue", DefaultMaxQueue),
		maxInflight:    num("MaxInflight", DefaultMaxInflight),
		singleSession:  s.Bool("SingleSession", defaultSingleSessionOn),
		connectTimeout: DefaultConnectTimeout,
	}
	if ms := num("ConnectTimeoutMs", int(DefaultConnectTimeout/time.Millisecond)); ms > 0 {
		c.connectTimeout = time.Duration(ms) * time.Millisecond
	}
	if raw, ok := s.Settings[settingCloseListeners]; ok {
		list, ok := raw.([]any)
		if !ok {
			errs = append(errs, fmt.Errorf("setting %s: want an array of module types", settingCloseListeners))
		}
		for _, x := range list {
			t, ok := x.(string)
			if !ok || t == "" {
				errs = append(errs, fmt.Errorf("setting %s: want module type names, got %v", settingCloseListeners, x))
				continue
			}
			c.closeListeners = append(c.closeListeners, t)
		}
	}
	cert, key := s.String("TLSCertFile", ""), s.String("TLSKeyFile", "")
	if (cert == "") != (key == "") {
		set, missing := "TLSCertFile", "TLSKeyFile"
		if cert == "" {
			set, missing = missing, set
		}
		errs = append(errs, fmt.Errorf("settings: %s is set but %s is not; TLS needs both", set, missing))
	} else if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("settings TLSCertFile/TLSKeyFile: %w", err))
		} else {
			c.tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		}
	}
	if c.tcpAddr == "" && c.wsAddr == "" {
		errs = append(errs, fmt.Errorf("settings: set TCPAddr or WSAddr (or both)"))
	}
	g.cfg = c
	return errors.Join(errs...)
}

// TCPAddr returns the bound TCP address, or nil.
func (g *Gate) TCPAddr() net.Addr { return g.addr("tcp") }

// WSAddr returns the bound WebSocket address, or nil.
func (g *Gate) WSAddr() net.Addr { return g.addr("ws") }

func (g *Gate) addr(network string) net.Addr {
	for _, l := range g.listeners {
		if l.Network() == network {
			return l.Addr()
		}
	}
	return nil
}

// Stats returns the gate's counters.
func (g *Gate) Stats() Stats {
	s := &g.stats
	return Stats{Connections: s.connections.Load(), Accepted: s.accepted.Load(), Refused: s.refused.Load(),
		Malformed: s.malformed.Load(), SlowClosed: s.slowClosed.Load(), KeepAliveLost: s.keepAliveLost.Load(),
		Dropped: s.dropped.Load(), Requests: s.requests.Load(), BroadcastCalls: s.broadcastCalls.Load(),
		Sends: s.sends.Load()}
}

// Sessions returns a copy of every session connected to this gate.
func (g *Gate) Sessions() []runtime.SessionData {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]runtime.SessionData, 0, len(g.byID))
	for _, c := range g.byID {
		out = append(out, *c.session().Clone())
	}
	return out
}

// Run accepts connections until closeSig.
func (g *Gate) Run(closeSig chan bool) {
	for _, l := range g.listeners {
		g.wg.Add(1)
		go func(l listener) {
			defer g.wg.Done()
			g.accept(l)
		}(l)
	}
	<-closeSig
	g.closing.Store(true)
	g.closeListeners()
	g.mu.Lock()
	conns := make([]*conn, 0, len(g.byID))
	for _, c := range g.byID {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.close("gate shutting down")
	}
	g.wg.Wait()
	g.drains.Close()
}

func (g *Gate) closeListeners() {
	for _, l := range g.listeners {
		_ = l.Close()
	}
}

func (g *Gate) accept(l listener) {
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if g.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			g.log.Warn("accept failed", "network", l.Network(), "err", err, "retryIn", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		g.stats.accepted.Add(1)
		c := newConn(g, nc, l.Network())
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			c.serve()
		}()
	}
}

// newSessionID returns a gate-unique session id.
func (g *Gate) newSessionID() string {
	return fmt.Sprintf("%s#%d", g.Settings.ID, g.nextID.Add(1))
}

// register adds a connection after its CONNECT was accepted. A client id
// already connected here closes the older connection [MQTT-3.1.4-2].
func (g *Gate) register(c *conn) bool {
	g.mu.Lock()
	if g.closing.Load() {
		g.mu.Unlock()
		return false
	}
	old := g.byClientID[c.clientID]
	g.byID[c.sessionID] = c
	g.byClientID[c.clientID] = c
	g.mu.Unlock()
	g.stats.connections.Add(1)
	if old != nil {
		g.log.Info("client id taken over by a new connection", "clientId", c.clientID, "old", old.remote, "new", c.remote)
		old.close("client id taken over [MQTT-3.1.4-2]")
	}
	return true
}

// unregister removes a closed connection and tells the modules that asked.
func (g *Gate) unregister(c *conn) {
	g.mu.Lock()
	if g.byID[c.sessionID] != c {
		g.mu.Unlock()
		return
	}
	delete(g.byID, c.sessionID)
	if g.byClientID[c.clientID] == c {
		delete(g.byClientID, c.clientID)
	}
	sess := c.session()
	if sess.UserID != "" && g.byUID[sess.UserID] == c {
		delete(g.byUID, sess.UserID)
	}
	g.mu.Unlock()
	g.stats.connections.Add(-1)
	g.notifyClosed(sess)
}

func (g *Gate) notifyClosed(sess *runtime.SessionData) {
	if len(g.cfg.closeListeners) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, typ := range g.cfg.closeListeners {
		for _, id := range g.App.ServerIDs(typ) {
			req := &runtime.Request{Fn: sessionClosedMethod, Session: sess, NoReply: true}
			if _, err := g.App.Invoke(ctx, runtime.Target{Type: typ, ID: id}, req); err != nil {
				g.log.Warn("session-closed notification failed", "module", id, "err", err)
			}
		}
	}
}

func (g *Gate) conn(sessionID string) (*conn, error) {
	g.mu.Lock()
	c := g.byID[sessionID]
	g.mu.Unlock()
	if c == nil {
		return nil, runtime.Errorf(runtime.ErrNotFound, "session %s not found on %s", sessionID, g.Settings.ID)
	}
	return c, nil
}

// Bind binds a session to a user id. With SingleSession (the default) an
// older session of the same user, on this gate or another, is unbound and
// closed.
//
//mqant:rpc
func (g *Gate) Bind(ctx context.Context, sessionID, uid string) (*runtime.SessionData, error) {
	if uid == "" {
		return nil, errors.New("bind: empty user id")
	}
	c, err := g.conn(sessionID)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	old := g.byUID[uid]
	prev := c.session().UserID
	if prev != "" && prev != uid && g.byUID[prev] == c {
		delete(g.byUID, prev)
	}
	g.byUID[uid] = c
	d := c.update(func(s *runtime.SessionData) { s.UserID = uid })
	g.mu.Unlock()
	if g.cfg.singleSession {
		if old != nil && old != c {
			// Closed with its user id still set, so the modules that hear
			// of the close (Chat's OnLeave) know who left.
			old.close("user " + uid + " logged in on another connection")
		}
		g.kickElsewhere(ctx, uid, sessionID)
	}
	return d, nil
}

// kickElsewhere asks every other gate to drop uid's sessions.
func (g *Gate) kickElsewhere(ctx context.Context, uid, keep string) {
	client := NewGateClient(g.App)
	for _, id := range g.App.ServerIDs(Gate_Type) {
		if id == g.Settings.ID {
			continue
		}
		if err := client.To(id).KickNR(ctx, uid, keep); err != nil {
			g.log.Debug("kick on other gate failed", "gate", id, "err", err)
		}
	}
}

// Kick closes this gate's session of uid unless it is keep.
//
//mqant:rpc
func (g *Gate) Kick(ctx context.Context, uid, keep string) error {
	g.mu.Lock()
	c := g.byUID[uid]
	if c != nil && c.sessionID != keep {
		delete(g.byUID, uid)
	} else {
		c = nil
	}
	g.mu.Unlock()
	if c != nil {
		c.close("user " + uid + " logged in on another gate")
	}
	return nil
}

// UnBind removes the user id from a session.
//
//mqant:rpc
func (g *Gate) UnBind(ctx context.Context, sessionID string) (*runtime.SessionData, error) {
	c, err := g.conn(sessionID)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	if uid := c.session().UserID; uid != "" && g.byUID[uid] == c {
		delete(g.byUID, uid)
	}
	d := c.update(func(s *runtime.SessionData) { s.UserID = "" })
	g.mu.Unlock()
	return d, nil
}

// Push replaces a session's settings.
//
//mqant:rpc
func (g *Gate) Push(ctx context.Context, sessionID string, settings map[string]string) (*runtime.SessionData, error) {
	c, err := g.conn(sessionID)
	if err != nil {
		return nil, err
	}
	return c.update(func(s *runtime.SessionData) {
		s.Settings = make(map[string]string, len(settings))
		for k, v := range settings {
			s.Settings[k] = v
		}
	}), nil
}

// Send queues a message to one client. Sends and Broadcasts run on the
// gate's single goroutine, so a client receives pushes in the order the
// modules sent them.
//
//mqant:rpc
//mqant:sync
func (g *Gate) Send(ctx context.Context, sessionID, topic string, body []byte) error {
	c, err := g.conn(sessionID)
	if err != nil {
		return err
	}
	if !c.publish(topic, body) {
		return fmt.Errorf("session %s: connection closed", sessionID)
	}
	return nil
}

// Broadcast queues one message to many of this gate's clients and returns
// how many it reached. Sessions gone meanwhile are skipped.
//
//mqant:rpc
//mqant:sync
func (g *Gate) Broadcast(ctx context.Context, sessionIDs []string, topic string, body []byte) (int, error) {
	g.stats.broadcastCalls.Add(1)
	conns := make([]*conn, 0, len(sessionIDs))
	g.mu.Lock()
	for _, id := range sessionIDs {
		if c := g.byID[id]; c != nil {
			conns = append(conns, c)
		}
	}
	g.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.publish(topic, body) {
			n++
		}
	}
	return n, nil
}

// Close closes a client's connection.
//
//mqant:rpc
func (g *Gate) Close(ctx context.Context, sessionID string) error {
	c, err := g.conn(sessionID)
	if err != nil {
		return err
	}
	c.close("closed by a module")
	return nil
}

// Lookup returns the session uid is bound to on this gate, or nil.
//
//mqant:rpc
func (g *Gate) Lookup(ctx context.Context, uid string) (*runtime.SessionData, error) {
	g.mu.Lock()
	c := g.byUID[uid]
	g.mu.Unlock()
	if c == nil {
		return nil, nil
	}
	return c.session().Clone(), nil
}
