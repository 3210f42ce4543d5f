package packets

import (
	"fmt"
	"slices"
)

// PUBLISH fixed-header flag bits (spec 3.3.1).
const (
	flagRetain = 0x01
	flagQoS    = 0x06
	flagDup    = 0x08
)

// Publish is the PUBLISH packet.
//
// A *Publish returned by Reader.ReadPacket belongs to the Reader and its
// Payload and RawTopic alias the Reader's buffer: all change on the next
// ReadPacket. Use Clone to keep one.
type Publish struct {
	Dup      bool
	QoS      byte // 0, 1 or 2
	Retain   bool
	Topic    string
	PacketID uint16 // only with QoS 1 and 2 [MQTT-2.3.1-5]
	Payload  []byte
	// RawTopic is the topic name as read (set by Reader.ReadPacket only).
	// A Reader told RawTopics(true) leaves Topic empty: a reader that
	// copies the topic into memory of its own saves the string.
	RawTopic []byte
}

// Type returns TypePublish.
func (*Publish) Type() byte { return TypePublish }

// Clone returns a deep copy of p that does not alias any Reader.
func (p *Publish) Clone() *Publish {
	c := *p
	c.Payload = clone(p.Payload)
	if c.Topic == "" && len(p.RawTopic) > 0 {
		c.Topic = string(p.RawTopic)
	}
	c.RawTopic = nil
	return &c
}

// AppendTo appends the encoded packet to dst. With QoS 0 the packet id is
// left out [MQTT-2.3.1-5] and DUP is cleared [MQTT-3.3.1-2].
func (p *Publish) AppendTo(dst []byte) []byte {
	flags := p.QoS << 1 & flagQoS
	if p.QoS != 0 && p.Dup {
		flags |= flagDup
	}
	if p.Retain {
		flags |= flagRetain
	}
	return appendPublish(dst, flags, p.Topic, p.Payload, p.QoS, p.PacketID)
}

// AppendPublish appends a PUBLISH of payload on topic, without DUP or RETAIN,
// to dst: the gate's outbound message. id is written only when qos > 0
// [MQTT-2.3.1-5]. It allocates nothing when dst has enough capacity.
func AppendPublish(dst []byte, topic string, payload []byte, qos byte, id uint16) []byte {
	return appendPublish(dst, qos<<1&flagQoS, topic, payload, qos, id)
}

// AppendPublishHeader appends the start of a QoS 0 PUBLISH on topic whose
// payload, payloadLen bytes, the caller appends right after: for payloads
// written in pieces, without assembling them first.
func AppendPublishHeader(dst []byte, topic string, payloadLen int) []byte {
	n := 2 + len(topic) + payloadLen
	dst = slices.Grow(dst, packetLen(n))
	dst = appendFixedHeader(dst, TypePublish, 0, n)
	return appendString(dst, topic)
}

func appendPublish(dst []byte, flags byte, topic string, payload []byte, qos byte, id uint16) []byte {
	n := 2 + len(topic) + len(payload)
	if qos != 0 {
		n += 2
	}
	dst = slices.Grow(dst, packetLen(n))
	dst = appendFixedHeader(dst, TypePublish, flags, n)
	dst = appendString(dst, topic)
	if qos != 0 {
		dst = appendU16(dst, id)
	}
	return append(dst, payload...)
}

// decodePublish decodes a PUBLISH body into p. The fixed header check has
// already refused QoS 3 and DUP with QoS 0. Payload aliases body. When the
// topic equals p.Topic, p keeps its string, so a Reader that sees the same
// topic again allocates nothing.
func decodePublish(flags byte, body []byte, p *Publish, rawTopic bool) error {
	d := decoder{b: body}
	topic, err := d.str("topic name") // [MQTT-3.3.2-1]
	if err != nil {
		return err
	}
	if err := checkTopicName(topic, "topic name"); err != nil {
		return err
	}
	p.Dup = flags&flagDup != 0
	p.QoS = flags & flagQoS >> 1
	p.Retain = flags&flagRetain != 0
	p.RawTopic = topic
	switch {
	case rawTopic:
		p.Topic = ""
	case p.Topic != string(topic): // a repeated topic keeps its string
		p.Topic = string(topic)
	}
	p.PacketID = 0
	if p.QoS > 0 {
		if p.PacketID, err = d.packetID("PUBLISH"); err != nil { // [MQTT-2.3.1-1]
			return err
		}
	}
	p.Payload = nil
	if len(d.b) > 0 {
		p.Payload = d.b
	}
	return nil
}

// checkTopicName enforces the rules for topic names, which unlike filters
// have at least one character [MQTT-4.7.3-1] and no wildcards [MQTT-3.3.2-2],
// [MQTT-4.7.1-1]. UTF-8 was checked when the string was read.
func checkTopicName(topic []byte, what string) error {
	if len(topic) == 0 {
		return fmt.Errorf("%w: empty %s", ErrMalformed, what)
	}
	for _, c := range topic {
		if c == '+' || c == '#' {
			return fmt.Errorf("%w: %s %q contains a wildcard", ErrMalformed, what, topic)
		}
	}
	return nil
}

// Puback is the PUBACK packet, the answer to a QoS 1 PUBLISH.
type Puback struct{ PacketID uint16 }

// Pubrec is the PUBREC packet, the first answer to a QoS 2 PUBLISH.
type Pubrec struct{ PacketID uint16 }

// Pubrel is the PUBREL packet, the answer to PUBREC.
type Pubrel struct{ PacketID uint16 }

// Pubcomp is the PUBCOMP packet, the answer to PUBREL.
type Pubcomp struct{ PacketID uint16 }

// Type returns TypePuback.
func (*Puback) Type() byte { return TypePuback }

// Type returns TypePubrec.
func (*Pubrec) Type() byte { return TypePubrec }

// Type returns TypePubrel.
func (*Pubrel) Type() byte { return TypePubrel }

// Type returns TypePubcomp.
func (*Pubcomp) Type() byte { return TypePubcomp }

// AppendTo appends the encoded packet to dst.
func (p *Puback) AppendTo(dst []byte) []byte { return appendIDPacket(dst, TypePuback, 0, p.PacketID) }

// AppendTo appends the encoded packet to dst.
func (p *Pubrec) AppendTo(dst []byte) []byte { return appendIDPacket(dst, TypePubrec, 0, p.PacketID) }

// AppendTo appends the encoded packet to dst, with the flags 0b0010 PUBREL
// requires [MQTT-3.6.1-1].
func (p *Pubrel) AppendTo(dst []byte) []byte {
	return appendIDPacket(dst, TypePubrel, 0b0010, p.PacketID)
}

// AppendTo appends the encoded packet to dst.
func (p *Pubcomp) AppendTo(dst []byte) []byte {
	return appendIDPacket(dst, TypePubcomp, 0, p.PacketID)
}

// appendIDPacket appends a packet whose body is just a packet id.
func appendIDPacket(dst []byte, typ, flags byte, id uint16) []byte {
	return append(dst, typ<<4|flags, 2, byte(id>>8), byte(id))
}
