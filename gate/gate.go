package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/suggest"
	"github.com/mqantgen/mqantgen/internal/workpool"
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
	// queue is full) or the topic is invalid.
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

// Gate is the gate module.
//
//mqant:module
type Gate struct {
	core.BaseModule
	log       *slog.Logger
	auth      AuthFunc
	onPublish PublishHandler // nil: route to modules
	fanout    localFanout    // pushes of this process's modules handed off (local.go)

	cfg        gateConfig
	types      map[string]bool // module types of the deployment, read-only after OnInit
	rpcTimeout time.Duration
	drains     *workpool.Pool[drainJob] // runs connections' call queues
	notifier   *notifier
	listeners  []listener
	sockets    *socketLimiter
	limitWarns warnLimiter // rate-limits warnings about refused sockets
	wg         sync.WaitGroup
	closing    atomic.Bool
	inflight   atomic.Int64 // client calls queued or running, all connections
	// ctx is the parent of every call the gate makes for a client; it is
	// cancelled at shutdown so no call holds the gate up.
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	connecting map[*conn]struct{} // accepted, no CONNECT accepted yet
	byID       map[string]*conn
	byClientID map[string]*conn
	byUID      map[string]*conn
	idPrefix   string
	nextID     atomic.Uint64
	moved      map[string]moved // sessions handed to other gates: where their pushes go
	movedAdds  int

	sessWarns warnLimiter // rate-limits warnings about persistent sessions dropping pushes

	stats gateStats
}

// New returns a gate module factory for App.Register.
func New(opts ...Option) func() core.Module {
	return func() core.Module {
		g := &Gate{}
		for _, o := range opts {
			o(g)
		}
		return g
	}
}

// Frontend marks the gate as a core.Frontend: it stops before the
// modules its clients call.
func (g *Gate) Frontend() {}

// checkListenerTypes fails the start when SessionCloseListeners names a
// module type the config does not have: a misspelt name would otherwise
// drop every session-closed event.
func (g *Gate) checkListenerTypes(settings *core.ModuleSettings) error {
	known := make([]string, 0, len(g.types))
	for t := range g.types {
		known = append(known, t)
	}
	sort.Strings(known)
	var errs []error
	for i, typ := range g.cfg.closeListeners {
		if g.types[typ] {
			continue
		}
		hint := "the config's module types are " + strings.Join(known, ", ")
		if best := suggest.Closest(typ, known); best != "" {
			hint = "did you mean " + best + "?"
		}
		errs = append(errs, fmt.Errorf("%s.Settings.%s[%d]: no module type %q in the config; %s", settings.Path, settingCloseListeners, i, typ, hint))
	}
	return errors.Join(errs...)
}

// declaredListeners adds to the SessionCloseListeners setting every
// configured module type whose generated table has OnSessionClosed: having
// the method is what declares the listening, so a module cannot have one
// and silently never hear a close. (A type whose generated package this
// binary does not link can only be named in the setting.)
func (g *Gate) declaredListeners() []string {
	out := append([]string(nil), g.cfg.closeListeners...)
	listed := map[string]bool{}
	for _, t := range out {
		listed[t] = true
	}
	types := make([]string, 0, len(g.types))
	for t := range g.types {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if d, ok := core.Described(t); ok && !listed[t] && d.Has(sessionClosedMethod) {
			out = append(out, t)
		}
	}
	return out
}

// CheckStart implements core.StartChecker: a session-closed listener
// running in this process must have an OnSessionClosed method (listeners
// in other processes are checked by the process that runs them, and a
// delivery they refuse is logged).
func (g *Gate) CheckStart(app *core.App) error {
	for i, typ := range g.cfg.closeListeners {
		local, has := app.Serves(typ, sessionClosedMethod)
		if !local {
			// Another process runs it: its generated table, when linked
			// into this binary, says whether it has the method.
			d, ok := core.Described(typ)
			has = !ok || d.Has(sessionClosedMethod)
		}
		if !has {
			return fmt.Errorf("%s.Settings.%s[%d]: module %s has no OnSessionClosed method to receive session-closed events; add one (func (m *%s) OnSessionClosed(ctx context.Context, s *gate.Session) error) and run go generate, or remove %s from the list", g.Settings.Path, settingCloseListeners, i, typ, typ, typ)
		}
	}
	return nil
}

// GetType implements core.Module.
func (g *Gate) GetType() string { return Gate_Type }

// OnInit reads the settings and binds the listeners, so a taken port fails
// start-up instead of leaving a half-started server.
func (g *Gate) OnInit(app *core.App, settings *core.ModuleSettings) error {
	g.Init(app, settings)
	g.log = app.Logger().With("gate", settings.ID)
	g.byID = map[string]*conn{}
	g.connecting = map[*conn]struct{}{}
	g.byClientID = map[string]*conn{}
	g.byUID = map[string]*conn{}
	g.idPrefix = randomHex(4) + "."
	cfg, err := parseSettings(settings)
	if err != nil {
		return err
	}
	g.cfg = cfg
	g.types = map[string]bool{}
	for _, m := range app.Config().Modules {
		g.types[m.Type] = true
	}
	if err := g.checkListenerTypes(settings); err != nil {
		return err
	}
	g.rpcTimeout = app.RPCTimeout()
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.cfg.closeListeners = g.declaredListeners()
	g.log.Info("session-closed listeners", "types", g.cfg.closeListeners)
	g.notifier = newNotifier(app, g.log, g.cfg.closeListeners, cfg.notifyMaxPending, &g.stats)
	RegisterGateServer(g.RPCServer(), g)
	g.drains = workpool.New(runDrain, 30*time.Second)
	g.sockets = newSocketLimiter(cfg.maxConnections, cfg.maxConnsPerIP)
	if cfg.tcpAddr != "" {
		l, err := g.listenTCP(cfg.tcpAddr, cfg.tlsConfig)
		if err != nil {
			return fmt.Errorf("gate %s: TCP listen %s: %w", settings.ID, cfg.tcpAddr, err)
		}
		g.listeners = append(g.listeners, l)
		g.log.Info("TCP listening", "addr", l.Addr().String(), "tls", cfg.tlsConfig != nil)
	}
	if cfg.wsAddr != "" {
		l, err := g.listenWS(cfg.wsAddr, cfg.tlsConfig)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("gate %s: WebSocket listen %s: %w", settings.ID, cfg.wsAddr, err)
		}
		g.listeners = append(g.listeners, l)
		g.log.Info("WebSocket listening", "addr", l.Addr().String(), "tls", cfg.tlsConfig != nil, "origins", cfg.wsOrigins)
	}
	g.registerLocal()
	app.MustRegister(newGateCollector(g))
	return nil
}

// OnDestroy implements core.Module: the gate is no longer reachable by
// direct calls, and its listeners are closed (Run closes them when it ran;
// a start that failed after this gate's OnInit never runs it).
func (g *Gate) OnDestroy() {
	g.closeListeners()
	g.unregisterLocal()
}

// knownType reports whether typ is a module type of the deployment.
func (g *Gate) knownType(typ string) bool { return g.types[typ] }

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

// Sessions returns a copy of every session this gate owns: connected, or
// persistent and away.
func (g *Gate) Sessions() []core.SessionData {
	conns := g.connections()
	out := make([]core.SessionData, 0, len(conns))
	for _, c := range conns {
		out = append(out, *c.session().Clone())
	}
	return out
}

// shutdownGrace is how long the gate's shutdown lets calls in flight
// finish (and answer) before cancelling them; flushGrace how long it then
// gives their replies to reach the clients.
const (
	shutdownGrace = 2 * time.Second
	flushGrace    = time.Second
)

// Run accepts connections until closeSig, then shuts down gracefully: no
// new connections or requests, calls in flight answered (up to
// shutdownGrace), replies flushed, connections closed.
func (g *Gate) Run(closeSig chan bool) {
	for _, l := range g.listeners {
		g.wg.Add(1)
		go func(l listener) {
			defer g.wg.Done()
			g.accept(l)
		}(l)
	}
	watchdogDone := make(chan struct{})
	stopWatchdog := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		g.watchdog(stopWatchdog)
	}()
	<-closeSig
	g.closing.Store(true)
	g.closeListeners()
	// Sockets that have not completed CONNECT (or are in the auth hook)
	// are closed now rather than waited for until ConnectTimeout.
	g.mu.Lock()
	for c := range g.connecting {
		go c.close("gate shutting down")
	}
	g.mu.Unlock()
	deadline := time.Now().Add(shutdownGrace)
	for g.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling a counter, at shutdown only
	}
	if n := g.inflight.Load(); n > 0 {
		g.log.Warn("shutting down with calls still running; cancelling them", "calls", n)
	}
	// Calls still waiting for other modules are cancelled (their clients
	// get the error), and handlers that ignore the cancellation abandoned.
	g.cancel()
	g.expireBusy(time.Now().Add(24 * time.Hour))
	conns := g.connections()
	g.flushAll(conns)
	for _, c := range conns {
		c.close("gate shutting down")
	}
	g.wg.Wait()
	g.endAway()
	close(stopWatchdog)
	<-watchdogDone
	g.notifier.close(2 * time.Second)
	g.drains.Stop() // handlers that ignore their deadline finish on their own
}

// flushAll writes what is queued for each connection, giving slow readers
// flushGrace in all.
func (g *Gate) flushAll(conns []*conn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		if c.out.queued() == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.out.flush()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(flushGrace): // closing the connections ends the writes
	}
}

// watchdog abandons calls whose handlers outlive their deadline.
func (g *Gate) watchdog(stop chan struct{}) {
	tick := min(max(g.rpcTimeout/10, 50*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			g.expireBusy(now)
		case <-stop:
			return
		}
	}
}

// expireBusy abandons the calls running past now on every connection.
func (g *Gate) expireBusy(now time.Time) {
	var busy []*conn
	g.mu.Lock()
	for _, c := range g.byID {
		if c.calls.busy.Load() > 0 {
			busy = append(busy, c)
		}
	}
	g.mu.Unlock()
	for _, c := range busy {
		c.calls.expire(now)
	}
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
			if g.closing.Load() || isClosed(err) {
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
		g.mu.Lock()
		g.connecting[c] = struct{}{}
		g.mu.Unlock()
		if g.closing.Load() { // Run closed the set already (or is about to)
			c.close("gate shutting down")
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer g.doneConnecting(c)
			c.serve()
		}()
	}
}
