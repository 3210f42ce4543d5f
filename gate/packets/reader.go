package packets

import (
	"bufio"
	"fmt"
	"io"
)

// DefaultMaxSize is the Reader's default limit on a packet's remaining
// length: enough for any chat message, small enough that a client cannot
// make the server allocate much.
const DefaultMaxSize = 64 << 10

// maxRetained caps the body buffer a Reader keeps between packets, so that
// one large packet does not pin memory on an otherwise idle connection.
// Larger bodies get a buffer of their own.
const maxRetained = 16 << 10

// byteReader is what a Reader reads from: the varint is read byte by byte,
// the body with io.ReadFull.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// Reader decodes packets from a stream. It is not safe for concurrent use.
//
// The Reader reuses one body buffer and one Publish value between packets:
// a *Publish returned by ReadPacket, and its Payload, are valid only until
// the next call to ReadPacket. Other packets are freshly allocated.
type Reader struct {
	r   byteReader
	max int
	buf []byte
	pub Publish
	// rawTopic: PUBLISH topics only as Publish.RawTopic (RawTopics).
	rawTopic bool
}

// NewReader returns a Reader reading from r with DefaultMaxSize. When r does
// not implement io.ByteReader (a *bufio.Reader does), it is wrapped in a
// bufio.Reader, which may read ahead of the current packet.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{max: DefaultMaxSize}
	rd.Reset(r)
	return rd
}

// Reset makes the Reader read from r, keeping its maximum size and buffer,
// so that Readers can be pooled. A nil r leaves it for Parse alone, its
// stream and body buffer dropped.
func (r *Reader) Reset(rd io.Reader) {
	r.pub = Publish{}
	if rd == nil {
		r.r, r.buf = nil, nil
		return
	}
	br, ok := rd.(byteReader)
	if !ok {
		br = bufio.NewReader(rd)
	}
	r.r = br
}

// SetMaxSize sets the largest remaining length (the packet size without its
// 2-5 byte fixed header) ReadPacket accepts. n <= 0 restores DefaultMaxSize;
// n is capped at MaxRemainingLength. A server uses a small limit until
// CONNECT has been read and the full one after.
func (r *Reader) SetMaxSize(n int) {
	switch {
	case n <= 0:
		n = DefaultMaxSize
	case n > MaxRemainingLength:
		n = MaxRemainingLength
	}
	r.max = n
}

// RawTopics(true) makes ReadPacket give a PUBLISH's topic only as
// RawTopic, leaving Topic empty: a server that copies the topic into
// memory it allocates anyway (with the request) saves a string per
// PUBLISH. Kept by Reset.
func (r *Reader) RawTopics(on bool) { r.rawTopic = on }

// MaxSize returns the current limit set by SetMaxSize.
func (r *Reader) MaxSize() int { return r.max }

// ReadPacket reads and decodes the next packet.
//
// It returns io.EOF when the stream ends cleanly between packets, and
// io.ErrUnexpectedEOF when it ends inside one. The fixed header is checked
// (type, flags, exact lengths, maximum size) before the body is allocated or
// read. Any error other than io.EOF leaves the connection to be closed,
// possibly after a CONNACK (see ConnackCode).
//
// A returned *Publish is the Reader's own value and its Payload aliases the
// Reader's buffer; both are overwritten by the next call. Use Publish.Clone
// to keep one.
func (r *Reader) ReadPacket() (Packet, error) {
	b0, err := r.r.ReadByte()
	if err != nil {
		return nil, err
	}
	n, err := readRemainingLength(r.r)
	if err != nil {
		return nil, err
	}
	h := fixedHeader{typ: b0 >> 4, flags: b0 & 0x0f, remaining: n}
	if err := h.check(); err != nil {
		return nil, err
	}
	if n > r.max {
		return nil, fmt.Errorf("%w: %s with remaining length %d, limit %d",
			ErrPacketTooLarge, TypeName(h.typ), n, r.max)
	}
	body := r.body(n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return r.decode(h, body)
}

// body returns a buffer of n bytes, reusing the Reader's when it fits.
func (r *Reader) body(n int) []byte {
	if n <= cap(r.buf) {
		return r.buf[:n]
	}
	if n > maxRetained {
		return make([]byte, n)
	}
	// Grow geometrically so that slowly growing packets do not reallocate
	// each time.
	c := max(n, 2*cap(r.buf), 256)
	r.buf = make([]byte, min(c, maxRetained))
	return r.buf[:n]
}

func (r *Reader) decode(h fixedHeader, body []byte) (Packet, error) {
	switch h.typ {
	case TypePublish:
		if err := decodePublish(h.flags, body, &r.pub, r.rawTopic); err != nil {
			return nil, err
		}
		return &r.pub, nil
	case TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeUnsuback:
		// h.check fixed the body at 2 bytes. The id echoes one the sender
		// chose, which is never 0 [MQTT-2.3.1-6], [MQTT-2.3.1-7].
		id := uint16(body[0])<<8 | uint16(body[1])
		if id == 0 {
			return nil, fmt.Errorf("%w: %s with packet identifier 0", ErrMalformed, TypeName(h.typ))
		}
		switch h.typ {
		case TypePuback:
			return &Puback{PacketID: id}, nil
		case TypePubrec:
			return &Pubrec{PacketID: id}, nil
		case TypePubrel:
			return &Pubrel{PacketID: id}, nil
		case TypePubcomp:
			return &Pubcomp{PacketID: id}, nil
		}
		return &Unsuback{PacketID: id}, nil
	case TypePingreq:
		return &Pingreq{}, nil
	case TypePingresp:
		return &Pingresp{}, nil
	case TypeDisconnect:
		return &Disconnect{}, nil
	case TypeConnect:
		return packet(decodeConnect(body))
	case TypeConnack:
		return packet(decodeConnack(body))
	case TypeSubscribe:
		return packet(decodeSubscribe(body))
	case TypeSuback:
		return packet(decodeSuback(body))
	case TypeUnsubscribe:
		return packet(decodeUnsubscribe(body))
	}
	// h.check refused types 0 and 15.
	panic("packets: unreachable packet type")
}

// packet converts a decoder's result to a Packet, keeping a nil pointer from
// becoming a non-nil interface.
func packet[P Packet](p P, err error) (Packet, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Parse decodes the packet at the start of b, a stream's bytes held in
// memory (a server that reads its socket itself), with ReadPacket's checks
// and limits. It returns the packet and the bytes it took; n == 0 with a
// nil error says b holds only the start of a packet: read more, keep b.
// The fixed header is checked as soon as b holds it, so a packet over the
// size limit is refused before its body arrives.
//
// A returned *Publish is the Reader's own value and its Payload and
// RawTopic alias b: both are valid until the next call and until b's
// bytes change.
func (r *Reader) Parse(b []byte) (p Packet, n int, err error) {
	h, hdr, err := r.header(b)
	if err != nil || hdr == 0 {
		return nil, 0, err
	}
	end := hdr + h.remaining
	if len(b) < end {
		return nil, 0, nil
	}
	p, err = r.decode(h, b[hdr:end])
	if err != nil {
		return nil, 0, err
	}
	return p, end, nil
}

// Need returns how many bytes the packet starting at b takes in all, once
// b holds its fixed header (0 before that), after checking the header as
// Parse does.
func (r *Reader) Need(b []byte) (int, error) {
	h, hdr, err := r.header(b)
	if err != nil || hdr == 0 {
		return 0, err
	}
	return hdr + h.remaining, nil
}

// header decodes and checks the fixed header at the start of b; hdr is its
// length, 0 when b does not hold all of it yet.
func (r *Reader) header(b []byte) (h fixedHeader, hdr int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	n, shift := 0, 0
	for i := 1; ; i++ {
		if i > maxVarintLen {
			return h, 0, fmt.Errorf("%w: remaining length longer than %d bytes", ErrMalformed, maxVarintLen)
		}
		if i >= len(b) {
			return h, 0, nil
		}
		n |= int(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			hdr = i + 1
			break
		}
		shift += 7
	}
	h = fixedHeader{typ: b[0] >> 4, flags: b[0] & 0x0f, remaining: n}
	if err := h.check(); err != nil {
		return h, 0, err
	}
	if n > r.max {
		return h, 0, fmt.Errorf("%w: %s with remaining length %d, limit %d",
			ErrPacketTooLarge, TypeName(h.typ), n, r.max)
	}
	return h, hdr, nil
}
