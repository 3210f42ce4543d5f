package gate

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

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

type tcpListener struct{ net.Listener }

func (tcpListener) Network() string { return "tcp" }

func listenTCP(addr string, tc *tls.Config) (listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	return tcpListener{l}, nil
}

// wsListener serves HTTP, upgrades every request (any path) to a WebSocket
// speaking subprotocol mqtt or mqttv3.1, and hands the connections to Accept.
type wsListener struct {
	ln    net.Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	Subprotocols:    []string{"mqtt", "mqttv3.1"},
	// Game clients come from any origin; authentication is the CONNECT's job.
	CheckOrigin: func(*http.Request) bool { return true },
}

func listenWS(addr string, tc *tls.Config, log *slog.Logger) (listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	w := &wsListener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	w.srv = &http.Server{
		Handler:           http.HandlerFunc(w.upgrade),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := ln
	if tc != nil {
		served = tls.NewListener(ln, tc)
	}
	go func() { _ = w.srv.Serve(served) }()
	return w, nil
}

func (w *wsListener) upgrade(rw http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(rw, r, nil)
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
