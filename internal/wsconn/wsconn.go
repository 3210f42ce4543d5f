// Package wsconn presents a WebSocket as a net.Conn byte stream, the way
// MQTT over WebSocket is carried: reads run across frame boundaries (a
// packet may span frames, a frame may hold several packets) and every
// Write is one binary frame. The gate's listener, the load tool and the
// test clients share it.
package wsconn

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// ErrTextFrame is returned by Read when the peer sends a text frame: MQTT
// needs binary frames [MQTT-6.0.0-1].
var ErrTextFrame = errors.New("websocket: text frame; MQTT needs binary frames")

// Conn is a WebSocket as a byte stream. Like a socket's, its read error is
// final: once Read fails, every later Read returns the same error. A stream
// with a text frame in it is broken, and gorilla/websocket panics on the
// 1000th read of a failed connection.
type Conn struct {
	ws  *websocket.Conn
	r   io.Reader
	err error // the first read error, returned from then on
}

// New wraps ws.
func New(ws *websocket.Conn) *Conn { return &Conn{ws: ws} }

// WS returns the underlying WebSocket.
func (c *Conn) WS() *websocket.Conn { return c.ws }

// Read reads the binary messages' payloads as one stream. One goroutine
// reads at a time.
func (c *Conn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for {
		if c.r == nil {
			mt, r, err := c.ws.NextReader()
			if err != nil {
				c.err = err
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				c.err = ErrTextFrame
				return 0, ErrTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			c.err = err
		}
		return n, err
	}
}

func (c *Conn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *Conn) Close() error                       { return c.ws.Close() }
func (c *Conn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}
