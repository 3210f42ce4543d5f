// Command minecho is the benchmark's ceiling: the least code that speaks
// enough MQTT 3.1.1 over TCP to be measured like the gate. It answers
// CONNECT with CONNACK, PINGREQ with PINGRESP and each QoS 0 PUBLISH with a
// PUBLISH of the same payload on the same topic; it closes the connection
// on DISCONNECT and ignores everything else. One goroutine per connection
// reads packets and writes the replies into a bufio.Writer that it flushes
// when no more input is buffered, so replies to requests that arrived
// together leave in one write. It shares no code with the gate (DESIGN.md
// "Tests and benchmarks": the minimal echo server is the ceiling,
// bench/echoserver a second reference).
//
//	minecho -tcp 127.0.0.1:3563
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := flag.String("tcp", ":3563", "MQTT over TCP address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "minecho:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "minecho: listening on", ln.Addr())
	// Scripts start it in the background, where SIGINT is ignored unless
	// asked for: SIGINT and SIGTERM close the listener and end the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = ln.Close()
	}()
	if err := serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "minecho:", err)
		os.Exit(1)
	}
}

// serve accepts connections until ln is closed.
func serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			_ = handle(c)
			_ = c.Close()
		}()
	}
}

// MQTT 3.1.1 control packet types (the high nibble of the first byte).
const (
	typeConnect    = 1
	typePublish    = 3
	typePingreq    = 12
	typeDisconnect = 14
)

// handle serves one connection until it ends or sends something invalid.
func handle(c net.Conn) error {
	r := bufio.NewReaderSize(c, 4096)
	w := bufio.NewWriterSize(c, 4096)
	var body []byte
	for {
		first, err := r.ReadByte()
		if err != nil {
			return err
		}
		n, err := remainingLength(r)
		if err != nil {
			return err
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		switch first >> 4 {
		case typeConnect:
			_, _ = w.Write([]byte{0x20, 2, 0, 0}) // CONNACK, accepted
		case typePingreq:
			_, _ = w.Write([]byte{0xd0, 0}) // PINGRESP
		case typeDisconnect:
			return w.Flush()
		case typePublish:
			if first&0x06 != 0 {
				return errors.New("only QoS 0 PUBLISH is served")
			}
			// Topic length and topic, then the payload: the reply is the
			// same body under a QoS 0 fixed header.
			if n < 2 || 2+(int(body[0])<<8|int(body[1])) > n {
				return errors.New("malformed PUBLISH")
			}
			_ = w.WriteByte(typePublish << 4)
			writeRemainingLength(w, n)
			_, _ = w.Write(body)
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// remainingLength reads the variable-length remaining length.
func remainingLength(r *bufio.Reader) (int, error) {
	n, shift := 0, 0
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
		shift += 7
	}
	return 0, errors.New("malformed remaining length")
}

func writeRemainingLength(w *bufio.Writer, n int) {
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			b |= 0x80
		}
		_ = w.WriteByte(b)
		if n == 0 {
			return
		}
	}
}
