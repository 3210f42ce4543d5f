package wsconn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Frame opcodes and bits (RFC 6455, section 5.2).
const (
	opContinuation = 0
	opText         = 1
	opBinary       = 2
	opClose        = 8
	opPing         = 9
	opPong         = 10
	finBit         = 0x80
	rsv1Bit        = 0x40
)

// appendFrame appends one client frame; client frames are masked [RFC
// 6455 5.3] unless unmasked asks for a broken one.
func appendFrame(b []byte, fin bool, bits, op byte, unmasked bool, payload []byte) []byte {
	h := bits | op
	if fin {
		h |= finBit
	}
	b = append(b, h)
	var mask byte = 0x80
	if unmasked {
		mask = 0
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mask|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, mask|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, mask|127), uint64(n))
	}
	if unmasked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// outcome is what the reader must see once the scripted frames are read.
type outcome int

const (
	endClose   outcome = iota // a normal close frame: a *websocket.CloseError
	endText                   // a text frame: ErrTextFrame
	endBad                    // a protocol violation: an error of gorilla's
	endGarbage                // raw bytes: any error, once the peer hangs up
)

// script turns fuzz input into client frames: each step is an op byte, a
// length byte and that many payload bytes. It returns the bytes to send,
// the binary payloads the reader must return, in order, and how the stream
// must end.
func script(data []byte) (wire, want []byte, end outcome) {
	for len(data) > 0 {
		op := data[0]
		n := 0
		if len(data) > 1 {
			n = int(data[1])
		}
		data = data[min(2, len(data)):]
		p := data[:min(n, len(data))]
		data = data[len(p):]
		switch op % 8 {
		case 0: // one binary frame
			wire = appendFrame(wire, true, 0, opBinary, false, p)
			want = append(want, p...)
		case 1: // one binary message in up to three frames, maybe a ping between
			a, b := len(p)/3, 2*len(p)/3
			wire = appendFrame(wire, false, 0, opBinary, false, p[:a])
			if op&0x10 != 0 {
				wire = appendFrame(wire, true, 0, opPing, false, []byte("mid"))
			}
			wire = appendFrame(wire, false, 0, opContinuation, false, p[a:b])
			wire = appendFrame(wire, true, 0, opContinuation, false, p[b:])
			want = append(want, p...)
		case 2: // ping, answered by gorilla's default handler
			wire = appendFrame(wire, true, 0, opPing, false, p[:min(len(p), 125)])
		case 3: // unsolicited pong, ignored
			wire = appendFrame(wire, true, 0, opPong, false, p[:min(len(p), 125)])
		case 4:
			return appendFrame(wire, true, 0, opText, false, p), want, endText
		case 5: // empty binary message: nothing to read, not the end
			wire = appendFrame(wire, true, 0, opBinary, false, nil)
		case 6: // a frame the protocol forbids
			switch (op >> 3) % 6 {
			case 0:
				wire = appendFrame(wire, true, rsv1Bit, opBinary, false, p) // no extension negotiated
			case 1:
				wire = appendFrame(wire, true, 0, 3, false, p) // reserved opcode
			case 2:
				wire = appendFrame(wire, true, 0, opBinary, true, p) // client frame unmasked
			case 3:
				wire = appendFrame(wire, true, 0, opPing, false, bytes.Repeat([]byte{'x'}, 126)) // control frame > 125
			case 4:
				wire = appendFrame(wire, true, 0, opContinuation, false, p) // nothing to continue
			case 5:
				wire = appendFrame(wire, false, 0, opPing, false, p[:min(len(p), 125)]) // fragmented control frame
			}
			return wire, want, endBad
		case 7:
			return append(wire, p...), want, endGarbage
		}
	}
	closing := binary.BigEndian.AppendUint16(nil, websocket.CloseNormalClosure)
	return appendFrame(wire, true, 0, opClose, false, closing), want, endClose
}

// FuzzRead sends arbitrary frames from a raw client through a real
// gorilla/websocket server connection into a Conn, and checks that it never
// panics or hangs, that binary payloads read back exactly and in order
// whatever the read sizes, that each way of ending (close, text frame,
// protocol violation, garbage) gives an error, and that the error stays.
func FuzzRead(f *testing.F) {
	seeds := [][]byte{
		{0, 5, 'h', 'e', 'l', 'l', 'o'},
		{1, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x11, 3, 'a', 'b', 'c'},
		{2, 2, 'p', 'i', 0, 1, 'x', 3, 0, 5, 0},
		{0, 2, 'o', 'k', 4, 2, 'h', 'i'},
		{0, 1, 'a', 6, 1, 'b'}, {0x0e, 1, 'b'}, {0x16, 1, 'c'}, {0x1e, 0}, {0x26, 1, 'd'}, {0x2e, 1, 'e'},
		{0, 1, 'a', 7, 4, 0x82, 0xff, 0, 0},
		{7, 3, 0x82, 0x7f, 0xff},
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wire, want, end := script(data)
		client, server := wsPipe(t)
		c := New(server)
		defer c.Close()

		// The client writes the script and reads whatever the server
		// sends back (pongs, the close reply), so no write blocks.
		go func() { _, _ = io.Copy(io.Discard, client) }()
		written := make(chan struct{})
		go func() {
			defer close(written)
			_, _ = client.Write(wire)
			if end == endGarbage {
				// Garbage may announce a frame longer than what
				// follows: hanging up ends the wait.
				_ = client.Close()
			}
		}()
		defer func() { _ = client.Close(); <-written }()

		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got []byte
		sizes := []int{1, 7, 64, 4096}
		var err error
		for i := 0; err == nil; i++ {
			var n int
			buf := make([]byte, sizes[i%len(sizes)])
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read hung: %d of %d bytes read, end %d", len(got), len(want), end)
		}
		if end == endGarbage {
			if !bytes.HasPrefix(got, want) {
				t.Fatalf("before the garbage read % x (%v), want % x", got, err, want)
			}
		} else if !bytes.Equal(got, want) {
			t.Fatalf("read % x (%v), want % x", got, err, want)
		}
		var ce *websocket.CloseError
		switch end {
		case endClose:
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				t.Fatalf("after a close frame: %v, want a normal CloseError", err)
			}
		case endText:
			if !errors.Is(err, ErrTextFrame) {
				t.Fatalf("after a text frame: %v, want ErrTextFrame", err)
			}
		case endBad:
			if errors.Is(err, ErrTextFrame) || errors.As(err, &ce) || errors.Is(err, io.EOF) {
				t.Fatalf("after a forbidden frame: %v, want a protocol error", err)
			}
		}
		for range 3 {
			if n, again := c.Read(make([]byte, 8)); n != 0 || again == nil || again.Error() != err.Error() {
				t.Fatalf("read after %v gave %d, %v; want the same error", err, n, again)
			}
		}
	})
}

// wsPipe returns both ends of a WebSocket over net.Pipe, handshake done:
// the client's raw net.Conn (frames are the test's to write) and the
// server's *websocket.Conn, upgraded by gorilla's Upgrader as the gate's
// listener does.
func wsPipe(t testing.TB) (net.Conn, *websocket.Conn) {
	t.Helper()
	cc, sc := net.Pipe()
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	br := bufio.NewReader(cc)
	go func() {
		req := "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
		if _, err := cc.Write([]byte(req)); err != nil {
			done <- result{err: err}
			return
		}
		resp, err := http.ReadResponse(br, nil)
		done <- result{resp, err}
	}()
	req, err := http.ReadRequest(bufio.NewReader(sc))
	if err != nil {
		t.Fatal(err)
	}
	req.URL = &url.URL{Path: "/mqtt"}
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}, CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(&hijacker{conn: socketWrites{sc}}, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	_ = r.resp.Body.Close()
	if r.resp.StatusCode != http.StatusSwitchingProtocols || br.Buffered() != 0 {
		t.Fatalf("handshake: %s, %d bytes buffered", r.resp.Status, br.Buffered())
	}
	return cc, ws
}

// socketWrites makes the server's writes to a hung-up pipe succeed, as
// they do on a socket (the kernel takes the bytes; the peer's reset comes
// later): net.Pipe fails them at once, and gorilla's ping handler would
// turn that into a read error before the payloads the peer sent ahead of
// its goodbye were read.
type socketWrites struct{ net.Conn }

func (c socketWrites) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if errors.Is(err, io.ErrClosedPipe) {
		return len(b), nil
	}
	return n, err
}

// hijacker is the least http.ResponseWriter Upgrade accepts: it hands over
// the connection.
type hijacker struct {
	conn net.Conn
	h    http.Header
}

func (h *hijacker) Header() http.Header {
	if h.h == nil {
		h.h = http.Header{}
	}
	return h.h
}
func (h *hijacker) Write(b []byte) (int, error) { return h.conn.Write(b) }
func (h *hijacker) WriteHeader(int)             {}
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}
