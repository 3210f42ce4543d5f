package packets

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// bs builds raw packet bytes from ints (one byte each), strings (their
// bytes, unprefixed) and byte slices.
func bs(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			if v < 0 || v > 255 {
				panic(fmt.Sprintf("bs: %d is not a byte", v))
			}
			out = append(out, byte(v))
		case string:
			out = append(out, v...)
		case []byte:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("bs: unexpected %T", p))
		}
	}
	return out
}

// pk builds a packet from its first byte and body parts (as bs), prefixing
// the body's length, which must fit one varint byte.
func pk(first int, parts ...any) []byte {
	body := bs(parts...)
	if len(body) > 127 {
		panic("pk: body too long for a one-byte remaining length")
	}
	return bs(first, len(body), body)
}

// lp returns s with its two-byte length prefix.
func lp(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

// readAll decodes packets from r until an error, cloning each Publish so that
// the result outlives the Reader's buffer. The final error is io.EOF when the
// input ended cleanly.
func readAll(r io.Reader, maxSize int) ([]Packet, error) {
	rd := NewReader(r)
	rd.SetMaxSize(maxSize)
	var out []Packet
	for {
		p, err := rd.ReadPacket()
		if err != nil {
			return out, err
		}
		if pub, ok := p.(*Publish); ok {
			p = pub.Clone()
		}
		out = append(out, p)
	}
}

// parseAll decodes data with Parse, the way a server that reads its socket
// itself does: chunk bytes arrive at a time, each complete packet is taken
// from the bytes held, and an incomplete one waits for more. At the end of
// data it fails as ReadPacket does: io.EOF between packets,
// io.ErrUnexpectedEOF inside one.
func parseAll(data []byte, maxSize, chunk int) ([]Packet, error) {
	rd := NewReader(nil)
	rd.SetMaxSize(maxSize)
	var out []Packet
	var held []byte
	for off := 0; ; {
		for len(held) > 0 {
			need, needErr := rd.Need(held)
			p, n, err := rd.Parse(held)
			if err != nil {
				return out, err
			}
			// Need sizes the packet Parse takes, or the one it waits for.
			if needErr != nil || (n > 0 && need != n) || (n == 0 && need > 0 && need <= len(held)) {
				return out, fmt.Errorf("Need says %d (%v) of %d bytes held, Parse took %d", need, needErr, len(held), n)
			}
			if n == 0 {
				break
			}
			if pub, ok := p.(*Publish); ok {
				p = pub.Clone()
			}
			out = append(out, p)
			held = held[n:]
		}
		if off == len(data) {
			if len(held) > 0 {
				return out, io.ErrUnexpectedEOF
			}
			return out, io.EOF
		}
		end := min(off+max(chunk, 1), len(data))
		held = append(bytes.Clone(held), data[off:end]...)
		off = end
	}
}

// decodeOne decodes raw, which must hold exactly one packet or fail.
func decodeOne(tb testing.TB, raw []byte) (Packet, error) {
	tb.Helper()
	pkts, err := readAll(bytes.NewReader(raw), MaxRemainingLength)
	if err != io.EOF {
		if len(pkts) != 0 {
			tb.Fatalf("decoded %d packets before error %v", len(pkts), err)
		}
		return nil, err
	}
	if len(pkts) != 1 {
		tb.Fatalf("decoded %d packets, want 1", len(pkts))
	}
	return pkts[0], nil
}

// chunkReader returns its data in the given chunks, one per Read, and is
// deliberately not an io.ByteReader.
type chunkReader struct {
	chunks [][]byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// halves returns a reader that delivers data in two Reads.
func halves(data []byte) *chunkReader {
	h := len(data) / 2
	return &chunkReader{chunks: [][]byte{bytes.Clone(data[:h]), bytes.Clone(data[h:])}}
}

// strictReader fails the test when more than limit bytes are consumed: it
// shows that a Reader stops after the fixed header.
type strictReader struct {
	tb    testing.TB
	data  []byte
	off   int
	limit int
}

func (s *strictReader) take(n int) {
	s.tb.Helper()
	if s.off+n > s.limit {
		s.tb.Fatalf("read past byte %d: the body of a refused packet was read", s.limit)
	}
}

func (s *strictReader) ReadByte() (byte, error) {
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	s.take(1)
	s.off++
	return s.data[s.off-1], nil
}

func (s *strictReader) Read(p []byte) (int, error) {
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	n := min(len(p), len(s.data)-s.off)
	s.take(n)
	copy(p, s.data[s.off:s.off+n])
	s.off += n
	return n, nil
}

// repeatReader returns the same bytes forever, without allocating.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) ReadByte() (byte, error) {
	b := r.data[r.off]
	r.off = (r.off + 1) % len(r.data)
	return b, nil
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}
