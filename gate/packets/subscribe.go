package packets

import (
	"fmt"
	"slices"
)

// SubackFailure is the SUBACK return code for a refused subscription
// (spec 3.9.3).
const SubackFailure byte = 0x80

// Subscription is one topic filter of a SUBSCRIBE and the QoS requested for
// it.
type Subscription struct {
	Filter string
	QoS    byte
}

// Subscribe is the SUBSCRIBE packet. A decoded Subscribe owns its memory and
// has at least one subscription.
type Subscribe struct {
	PacketID uint16
	Topics   []Subscription
}

// Type returns TypeSubscribe.
func (*Subscribe) Type() byte { return TypeSubscribe }

// AppendTo appends the encoded packet to dst, with the flags 0b0010
// SUBSCRIBE requires [MQTT-3.8.1-1].
func (s *Subscribe) AppendTo(dst []byte) []byte {
	n := 2
	for _, t := range s.Topics {
		n += 2 + len(t.Filter) + 1
	}
	dst = slices.Grow(dst, packetLen(n))
	dst = appendFixedHeader(dst, TypeSubscribe, 0b0010, n)
	dst = appendU16(dst, s.PacketID)
	for _, t := range s.Topics {
		dst = append(appendString(dst, t.Filter), t.QoS)
	}
	return dst
}

func decodeSubscribe(body []byte) (*Subscribe, error) {
	d := decoder{b: body}
	id, err := d.packetID("SUBSCRIBE") // [MQTT-2.3.1-1]
	if err != nil {
		return nil, err
	}
	s := &Subscribe{PacketID: id}
	for len(d.b) > 0 {
		filter, err := d.str("topic filter") // [MQTT-3.8.3-1]
		if err != nil {
			return nil, err
		}
		if len(filter) == 0 { // [MQTT-4.7.3-1]
			return nil, fmt.Errorf("%w: empty topic filter", ErrMalformed)
		}
		qos, err := d.u8("requested QoS")
		if err != nil {
			return nil, err
		}
		if qos > 2 { // [MQTT-3.8.3-4]: reserved bits set, or QoS 3
			return nil, fmt.Errorf("%w: requested QoS byte %#02x", ErrMalformed, qos)
		}
		s.Topics = append(s.Topics, Subscription{Filter: string(filter), QoS: qos})
	}
	if len(s.Topics) == 0 { // [MQTT-3.8.3-3]
		return nil, fmt.Errorf("%w: SUBSCRIBE without topic filters", ErrProtocolViolation)
	}
	return s, nil
}

// Suback is the SUBACK packet, with one return code per filter of the
// SUBSCRIBE it answers, in order: the granted QoS or SubackFailure.
type Suback struct {
	PacketID    uint16
	ReturnCodes []byte
}

// Type returns TypeSuback.
func (*Suback) Type() byte { return TypeSuback }

// AppendTo appends the encoded packet to dst.
func (s *Suback) AppendTo(dst []byte) []byte {
	n := 2 + len(s.ReturnCodes)
	dst = slices.Grow(dst, packetLen(n))
	dst = appendFixedHeader(dst, TypeSuback, 0, n)
	dst = appendU16(dst, s.PacketID)
	return append(dst, s.ReturnCodes...)
}

func decodeSuback(body []byte) (*Suback, error) {
	d := decoder{b: body}
	id, err := d.packetID("SUBACK") // [MQTT-2.3.1-7]
	if err != nil {
		return nil, err
	}
	if len(d.b) == 0 { // spec 3.9.3: one code per filter, and there is one
		return nil, fmt.Errorf("%w: SUBACK without return codes", ErrMalformed)
	}
	for _, c := range d.b {
		if c > 2 && c != SubackFailure { // [MQTT-3.9.3-2]
			return nil, fmt.Errorf("%w: SUBACK reserved return code %#02x", ErrMalformed, c)
		}
	}
	return &Suback{PacketID: id, ReturnCodes: clone(d.b)}, nil
}

// Unsubscribe is the UNSUBSCRIBE packet. A decoded Unsubscribe owns its
// memory and has at least one filter.
type Unsubscribe struct {
	PacketID uint16
	Filters  []string
}

// Type returns TypeUnsubscribe.
func (*Unsubscribe) Type() byte { return TypeUnsubscribe }

// AppendTo appends the encoded packet to dst, with the flags 0b0010
// UNSUBSCRIBE requires [MQTT-3.10.1-1].
func (u *Unsubscribe) AppendTo(dst []byte) []byte {
	n := 2
	for _, f := range u.Filters {
		n += 2 + len(f)
	}
	dst = slices.Grow(dst, packetLen(n))
	dst = appendFixedHeader(dst, TypeUnsubscribe, 0b0010, n)
	dst = appendU16(dst, u.PacketID)
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst
}

func decodeUnsubscribe(body []byte) (*Unsubscribe, error) {
	d := decoder{b: body}
	id, err := d.packetID("UNSUBSCRIBE") // [MQTT-2.3.1-1]
	if err != nil {
		return nil, err
	}
	u := &Unsubscribe{PacketID: id}
	for len(d.b) > 0 {
		filter, err := d.str("topic filter") // [MQTT-3.10.3-1]
		if err != nil {
			return nil, err
		}
		if len(filter) == 0 { // [MQTT-4.7.3-1]
			return nil, fmt.Errorf("%w: empty topic filter", ErrMalformed)
		}
		u.Filters = append(u.Filters, string(filter))
	}
	if len(u.Filters) == 0 { // [MQTT-3.10.3-2]
		return nil, fmt.Errorf("%w: UNSUBSCRIBE without topic filters", ErrProtocolViolation)
	}
	return u, nil
}

// Unsuback is the UNSUBACK packet, the answer to UNSUBSCRIBE.
type Unsuback struct{ PacketID uint16 }

// Type returns TypeUnsuback.
func (*Unsuback) Type() byte { return TypeUnsuback }

// AppendTo appends the encoded packet to dst.
func (u *Unsuback) AppendTo(dst []byte) []byte {
	return appendIDPacket(dst, TypeUnsuback, 0, u.PacketID)
}
