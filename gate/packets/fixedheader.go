package packets

import (
	"fmt"
	"io"
)

// Packet is an MQTT control packet: one of *Connect, *Connack, *Publish,
// *Puback, *Pubrec, *Pubrel, *Pubcomp, *Subscribe, *Suback, *Unsubscribe,
// *Unsuback, *Pingreq, *Pingresp or *Disconnect.
type Packet interface {
	// Type returns the packet type, one of the Type constants.
	Type() byte
	// AppendTo appends the packet's wire encoding to dst and returns the
	// extended slice. It allocates only when dst lacks capacity.
	AppendTo(dst []byte) []byte
}

// Packet types: the high nibble of a packet's first byte (spec 2.2.1).
const (
	TypeConnect     byte = 1
	TypeConnack     byte = 2
	TypePublish     byte = 3
	TypePuback      byte = 4
	TypePubrec      byte = 5
	TypePubrel      byte = 6
	TypePubcomp     byte = 7
	TypeSubscribe   byte = 8
	TypeSuback      byte = 9
	TypeUnsubscribe byte = 10
	TypeUnsuback    byte = 11
	TypePingreq     byte = 12
	TypePingresp    byte = 13
	TypeDisconnect  byte = 14
)

// MaxRemainingLength is the largest remaining length a four-byte varint can
// carry (spec 2.2.3).
const MaxRemainingLength = 268435455

// maxVarintLen is the longest remaining-length encoding (spec 2.2.3).
const maxVarintLen = 4

var typeNames = [16]string{
	"RESERVED0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "RESERVED15",
}

// TypeName returns the spec's name for packet type t, for logs.
func TypeName(t byte) string {
	if t > 15 {
		return fmt.Sprintf("TYPE(%d)", t)
	}
	return typeNames[t]
}

// fixedHeader is the decoded first byte and remaining length of a packet.
type fixedHeader struct {
	typ       byte
	flags     byte
	remaining int
}

// check applies the rules that need only the fixed header, so that a bad
// packet is refused before its body is allocated or read.
func (h fixedHeader) check() error {
	want := byte(0)
	switch h.typ {
	case 0, 15:
		return fmt.Errorf("%w: reserved packet type %d", ErrMalformed, h.typ)
	case TypePublish:
		qos := h.flags >> 1 & 3
		if qos == 3 { // [MQTT-3.3.1-4]
			return fmt.Errorf("%w: PUBLISH with QoS 3", ErrMalformed)
		}
		if qos == 0 && h.flags&flagDup != 0 { // [MQTT-3.3.1-2]
			return fmt.Errorf("%w: PUBLISH with QoS 0 and DUP set", ErrMalformed)
		}
		return nil
	case TypePubrel, TypeSubscribe, TypeUnsubscribe:
		// [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]
		want = 0b0010
	}
	if h.flags != want { // [MQTT-2.2.2-1], [MQTT-2.2.2-2]
		return fmt.Errorf("%w: %s with flags %04b, want %04b", ErrMalformed, TypeName(h.typ), h.flags, want)
	}
	if n, ok := fixedLength(h.typ); ok && h.remaining != n {
		return fmt.Errorf("%w: %s with remaining length %d, want %d", ErrMalformed, TypeName(h.typ), h.remaining, n)
	}
	return nil
}

// fixedLength returns the exact remaining length of the fixed-size packet
// types (spec 3.2, 3.4-3.7, 3.11-3.14).
func fixedLength(typ byte) (int, bool) {
	switch typ {
	case TypeConnack, TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeUnsuback:
		return 2, true
	case TypePingreq, TypePingresp, TypeDisconnect:
		return 0, true
	}
	return 0, false
}

// readRemainingLength reads the remaining-length varint one byte at a time,
// refusing a fifth byte (spec 2.2.3). Non-minimal encodings are accepted, as
// 3.1.1 does not forbid them.
func readRemainingLength(r io.ByteReader) (int, error) {
	n, shift := 0, 0
	for i := 0; i < maxVarintLen; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
		shift += 7
	}
	return 0, fmt.Errorf("%w: remaining length longer than %d bytes", ErrMalformed, maxVarintLen)
}

// varintLen returns the number of bytes appendRemainingLength uses for n.
func varintLen(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16384:
		return 2
	case n < 2097152:
		return 3
	}
	return 4
}

// appendRemainingLength appends n as a minimal varint. A length the wire
// cannot carry is a bug in the caller, and writing it would desynchronise the
// stream, so it panics.
func appendRemainingLength(dst []byte, n int) []byte {
	if n < 0 || n > MaxRemainingLength {
		panic(fmt.Sprintf("packets: remaining length %d out of range", n))
	}
	for n >= 128 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// appendFixedHeader appends the first byte and the remaining length.
func appendFixedHeader(dst []byte, typ, flags byte, remaining int) []byte {
	return appendRemainingLength(append(dst, typ<<4|flags), remaining)
}

// packetLen returns the full size of a packet with the given remaining length.
func packetLen(remaining int) int {
	return 1 + varintLen(remaining) + remaining
}
