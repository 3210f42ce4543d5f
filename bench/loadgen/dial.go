package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"github.com/gorilla/websocket"

	"github.com/mqantgen/mqantgen/internal/wsconn"
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
	return wsconn.New(ws), nil
}
