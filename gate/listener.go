package gate

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/wsconn"
)

// listener is what the gate accepts connections from: TCP and WebSocket
// present the same net.Conn stream to one connection code path.
type listener interface {
	Accept() (net.Conn, error)
	Close() error
	Addr() net.Addr
	Network() string // "tcp" or "ws"
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

// socketLimiter counts the gate's open sockets from accept (not from
// CONNECT, so sockets that never send one count too), in total and per
// remote IP.
type socketLimiter struct {
	max, perIP int
	n          atomic.Int64
	mu         sync.Mutex
	byIP       map[string]int
}

func newSocketLimiter(max, perIP int) *socketLimiter {
	return &socketLimiter{max: max, perIP: perIP, byIP: map[string]int{}}
}

func (s *socketLimiter) open() int64 { return s.n.Load() }

// acquire takes a place for a socket from ip, or says which limit is full
// (overMax or overPerIP).
func (s *socketLimiter) acquire(ip string) (limit int, ok bool) {
	if s.n.Add(1) > int64(s.max) {
		s.n.Add(-1)
		return overMax, false
	}
	if s.perIP > 0 {
		s.mu.Lock()
		if s.byIP[ip] >= s.perIP {
			s.mu.Unlock()
			s.n.Add(-1)
			return overPerIP, false
		}
		s.byIP[ip]++
		s.mu.Unlock()
	}
	return 0, true
}

func (s *socketLimiter) release(ip string) {
	s.n.Add(-1)
	if s.perIP > 0 {
		s.mu.Lock()
		if s.byIP[ip]--; s.byIP[ip] <= 0 {
			delete(s.byIP, ip)
		}
		s.mu.Unlock()
	}
}

// countedConn gives its place back when closed.
type countedConn struct {
	net.Conn
	ip   string
	lim  *socketLimiter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.lim.release(c.ip) })
	return c.Conn.Close()
}

// limitedListener admits sockets within the gate's limits; the others are
// refused at once, before any goroutine or buffer is spent on them beyond
// a bounded number of refusals in progress.
type limitedListener struct {
	net.Listener
	g       *Gate
	connack bool // plain MQTT over TCP: tell the client why (CONNACK 3)
}

// maxRefusing bounds the over-limit sockets being answered at once.
const maxRefusing = 64

var refusing atomic.Int32

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := nc.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(ip); err == nil {
			ip = h
		}
		limit, ok := l.g.sockets.acquire(ip)
		if ok {
			return &countedConn{Conn: nc, ip: ip, lim: l.g.sockets}, nil
		}
		l.g.stats.overLimit[limit].Add(1)
		if n, ok := l.g.limitWarns.allow(time.Now()); ok {
			l.g.log.Warn("refusing connection", "remote", nc.RemoteAddr().String(), "reason", overLimitSettings[limit]+" reached", "suppressed", n)
		}
		if !l.connack || refusing.Add(1) > maxRefusing {
			if l.connack {
				refusing.Add(-1)
			}
			_ = nc.Close()
			continue
		}
		go refuseConnack(nc)
	}
}

// refuseConnack answers an over-limit MQTT client with CONNACK 3 (server
// unavailable), so it reports why rather than a reset, then closes.
func refuseConnack(nc net.Conn) {
	defer refusing.Add(-1)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write((&packets.Connack{ReturnCode: packets.ServerUnavailable}).AppendTo(nil))
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	// Read what the client sent (its CONNECT) so closing does not reset
	// the connection before it reads the CONNACK.
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
}

type tcpListener struct{ net.Listener }

func (tcpListener) Network() string { return "tcp" }

func (g *Gate) listenTCP(addr string, tc *tls.Config) (listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	var ll net.Listener = &limitedListener{Listener: l, g: g, connack: tc == nil}
	if tc != nil {
		ll = tls.NewListener(ll, tc)
	}
	return tcpListener{ll}, nil
}

// wsListener serves HTTP, upgrades every request (any path) to a WebSocket
// speaking subprotocol mqtt or mqttv3.1, and hands the connections to Accept.
type wsListener struct {
	ln    net.Listener
	srv   *http.Server
	up    websocket.Upgrader
	log   *slog.Logger
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// allowedOrigin reports whether a WebSocket handshake may proceed. Native
// game clients send no Origin and are always allowed; with a list set, a
// browser page from any other site is refused, so it cannot use a
// player's network position to reach the gate.
func allowedOrigin(origins []string, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(origins) == 0 {
		return true
	}
	for _, o := range origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func (g *Gate) listenWS(addr string, tc *tls.Config) (listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	w := &wsListener{ln: ln, log: g.log, conns: make(chan net.Conn), done: make(chan struct{})}
	origins := g.cfg.wsOrigins
	w.up = websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		Subprotocols:    []string{"mqtt", "mqttv3.1"},
		CheckOrigin: func(r *http.Request) bool {
			if allowedOrigin(origins, r) {
				return true
			}
			g.stats.refused[refusedOrigin].Add(1)
			if n, ok := g.limitWarns.allow(time.Now()); ok {
				g.log.Warn("refusing WebSocket: origin not allowed", "remote", r.RemoteAddr, "origin", clip(r.Header.Get("Origin")), "suppressed", n)
			}
			return false
		},
	}
	// A socket that never completes a handshake, or keeps an HTTP
	// connection open without upgrading, is closed after ConnectTimeout.
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(w.upgrade),
		ReadHeaderTimeout: g.cfg.connectTimeout,
		// A request whose body never comes, and a client that does not
		// read the answer, are bounded too. After the upgrade the
		// connection sets its own deadlines on every read and write.
		ReadTimeout:    g.cfg.connectTimeout,
		WriteTimeout:   g.cfg.connectTimeout,
		IdleTimeout:    g.cfg.connectTimeout,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	var served net.Listener = &limitedListener{Listener: ln, g: g}
	if tc != nil {
		served = tls.NewListener(served, tc)
	}
	go func() { _ = w.srv.Serve(served) }()
	return w, nil
}

func (w *wsListener) upgrade(rw http.ResponseWriter, r *http.Request) {
	ws, err := w.up.Upgrade(rw, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	c := wsconn.New(ws)
	select {
	case w.conns <- c:
	case <-w.done:
		_ = ws.Close()
	}
}

func (w *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.done:
		return nil, net.ErrClosed
	}
}

func (w *wsListener) Close() error {
	w.once.Do(func() {
		close(w.done)
		_ = w.srv.Close()
	})
	return nil
}

func (w *wsListener) Addr() net.Addr  { return w.ln.Addr() }
func (w *wsListener) Network() string { return "ws" }
