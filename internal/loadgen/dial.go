package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
)

// target is where connections go, parsed from Config.URL.
type target struct {
	ws   bool
	addr string // host:port
	url  string // the WebSocket URL
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("-url %q: %v", raw, err)
	}
	if u.Host == "" || u.Port() == "" {
		return target{}, fmt.Errorf("-url %q: want tcp://host:port or ws://host:port/path", raw)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		return target{addr: u.Host}, nil
	case "ws":
		return target{ws: true, addr: u.Host, url: u.String()}, nil
	}
	return target{}, fmt.Errorf("-url %q: scheme %q: want tcp or ws", raw, u.Scheme)
}

// loopback reports whether the target host is a loopback address, where
// several source addresses (127.0.0.1, 127.0.0.2, ...) are available.
func (t target) loopback() bool {
	host, _, _ := net.SplitHostPort(t.addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// portsPerSource is how many connections one source address carries before
// the next is used: well under Linux's ~28k ephemeral ports, which
// TIME_WAIT sockets of earlier runs also hold.
const portsPerSource = 20000

// sourceAddrs returns the local addresses to spread n connections over:
// nil (the kernel chooses) for one source, else 127.0.0.1, 127.0.0.2, ...
// sources 0 means enough for n.
func sourceAddrs(t target, n, sources int) ([]net.IP, error) {
	if sources == 0 {
		if !t.loopback() {
			return nil, nil
		}
		sources = (n + portsPerSource - 1) / portsPerSource
	}
	if sources <= 1 {
		return nil, nil
	}
	if !t.loopback() {
		return nil, fmt.Errorf("-sources %d: several source addresses need a loopback target, not %s", sources, t.addr)
	}
	if sources > 254 {
		return nil, fmt.Errorf("-sources %d: at most 254", sources)
	}
	ips := make([]net.IP, sources)
	for i := range ips {
		ips[i] = net.IPv4(127, 0, 0, byte(i+1))
	}
	return ips, nil
}

// dial opens one byte stream to the target from source (nil: any).
func dial(ctx context.Context, t target, source net.IP) (net.Conn, error) {
	d := &net.Dialer{}
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	if !t.ws {
		nc, err := d.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		return nc, nil
	}
	wd := websocket.Dialer{NetDialContext: d.DialContext, Subprotocols: []string{"mqtt"},
		ReadBufferSize: 4096, WriteBufferSize: 4096}
	ws, resp, err := wd.DialContext(ctx, t.url, nil)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	return &wsStream{ws: ws}, nil
}

// wsStream presents a WebSocket as a byte stream: reads run across frame
// boundaries, each Write sends one binary frame.
type wsStream struct {
	ws *websocket.Conn
	r  io.Reader
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			_, r, err := s.ws.NextReader()
			if err != nil {
				return 0, err
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	if err := s.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsStream) Close() error                       { return s.ws.Close() }
func (s *wsStream) LocalAddr() net.Addr                { return s.ws.LocalAddr() }
func (s *wsStream) RemoteAddr() net.Addr               { return s.ws.RemoteAddr() }
func (s *wsStream) SetReadDeadline(t time.Time) error  { return s.ws.SetReadDeadline(t) }
func (s *wsStream) SetWriteDeadline(t time.Time) error { return s.ws.SetWriteDeadline(t) }
func (s *wsStream) SetDeadline(t time.Time) error {
	if err := s.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return s.ws.SetWriteDeadline(t)
}
