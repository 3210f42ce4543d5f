package packets

import (
	"fmt"
	"slices"
)

// Protocol names and levels the gate accepts in CONNECT.
const (
	ProtocolNameV311  = "MQTT"   // MQTT 3.1.1
	ProtocolLevelV311 = 4        // MQTT 3.1.1
	ProtocolNameV31   = "MQIsdp" // MQTT 3.1
	ProtocolLevelV31  = 3        // MQTT 3.1
)

// CONNACK return codes (spec 3.2.2.3).
const (
	Accepted                    byte = 0x00
	UnacceptableProtocolVersion byte = 0x01
	IdentifierRejected          byte = 0x02
	ServerUnavailable           byte = 0x03
	BadUsernameOrPassword       byte = 0x04
	NotAuthorized               byte = 0x05
)

// Connect flag bits (spec 3.1.2.3).
const (
	connReserved     = 0x01
	connCleanSession = 0x02
	connWill         = 0x04
	connWillQoS      = 0x18
	connWillRetain   = 0x20
	connPassword     = 0x40
	connUsername     = 0x80
)

// Connect is the CONNECT packet, the first one a client sends. A decoded
// Connect owns all its memory.
//
// For MQTT 3.1 (ProtocolNameV31) the decoder also accepts a password without
// a user name, which 3.1 allowed, and a password flag with nothing left for
// the password, which some 3.1 clients send; that decodes as PasswordFlag
// false.
type Connect struct {
	ProtocolName  string // ProtocolNameV311 or ProtocolNameV31
	ProtocolLevel byte   // ProtocolLevelV311 or ProtocolLevelV31
	CleanSession  bool
	KeepAlive     uint16 // seconds; 0 disables keep-alive
	ClientID      string // may be empty (the server assigns one) or longer than 23 bytes

	WillFlag    bool
	WillQoS     byte
	WillRetain  bool
	WillTopic   string
	WillMessage []byte

	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
}

// Type returns TypeConnect.
func (*Connect) Type() byte { return TypeConnect }

func (c *Connect) flags() byte {
	var f byte
	if c.CleanSession {
		f |= connCleanSession
	}
	if c.WillFlag {
		f |= connWill | c.WillQoS<<3&connWillQoS
		if c.WillRetain {
			f |= connWillRetain
		}
	}
	if c.UsernameFlag {
		f |= connUsername
	}
	if c.PasswordFlag {
		f |= connPassword
	}
	return f
}

// AppendTo appends the encoded packet to dst. The Will and credential fields
// are written only when their flag is set.
func (c *Connect) AppendTo(dst []byte) []byte {
	n := 2 + len(c.ProtocolName) + 1 + 1 + 2 + 2 + len(c.ClientID)
	if c.WillFlag {
		n += 2 + len(c.WillTopic) + 2 + len(c.WillMessage)
	}
	if c.UsernameFlag {
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		n += 2 + len(c.Password)
	}
	dst = slices.Grow(dst, packetLen(n))
	dst = appendFixedHeader(dst, TypeConnect, 0, n)
	dst = appendString(dst, c.ProtocolName)
	dst = append(dst, c.ProtocolLevel, c.flags())
	dst = appendU16(dst, c.KeepAlive)
	dst = appendString(dst, c.ClientID)
	if c.WillFlag {
		dst = appendString(dst, c.WillTopic)
		dst = appendBytes(dst, c.WillMessage)
	}
	if c.UsernameFlag {
		dst = appendString(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBytes(dst, c.Password)
	}
	return dst
}

// decodeConnect decodes a CONNECT body. It checks the protocol first, so
// that a client speaking another version gets ErrUnsupportedProtocol even if
// the rest of its packet follows other rules.
func decodeConnect(body []byte) (*Connect, error) {
	d := decoder{b: body}
	name, err := d.binary("protocol name")
	if err != nil {
		return nil, err
	}
	level, err := d.u8("protocol level")
	if err != nil {
		return nil, err
	}
	c := new(Connect)
	switch {
	case string(name) == ProtocolNameV311 && level == ProtocolLevelV311:
		c.ProtocolName = ProtocolNameV311
	case string(name) == ProtocolNameV31 && level == ProtocolLevelV31:
		c.ProtocolName = ProtocolNameV31
	default:
		// [MQTT-3.1.2-1] (name), [MQTT-3.1.2-2] (level).
		return nil, fmt.Errorf("%w: %q level %d", ErrUnsupportedProtocol, name, level)
	}
	c.ProtocolLevel = level
	v31 := level == ProtocolLevelV31

	flags, err := d.u8("connect flags")
	if err != nil {
		return nil, err
	}
	if flags&connReserved != 0 { // [MQTT-3.1.2-3]
		return nil, fmt.Errorf("%w: CONNECT reserved flag set", ErrMalformed)
	}
	c.CleanSession = flags&connCleanSession != 0
	c.WillFlag = flags&connWill != 0
	c.WillQoS = flags & connWillQoS >> 3
	c.WillRetain = flags&connWillRetain != 0
	c.UsernameFlag = flags&connUsername != 0
	c.PasswordFlag = flags&connPassword != 0
	if !c.WillFlag && c.WillQoS != 0 { // [MQTT-3.1.2-11], [MQTT-3.1.2-13]
		return nil, fmt.Errorf("%w: CONNECT Will QoS %d without Will flag", ErrMalformed, c.WillQoS)
	}
	if !c.WillFlag && c.WillRetain { // [MQTT-3.1.2-11], [MQTT-3.1.2-15]
		return nil, fmt.Errorf("%w: CONNECT Will Retain without Will flag", ErrMalformed)
	}
	if c.WillQoS == 3 { // [MQTT-3.1.2-14]
		return nil, fmt.Errorf("%w: CONNECT Will QoS 3", ErrMalformed)
	}
	// 3.1 allowed a password without a user name; 3.1.1 does not.
	if !v31 && c.PasswordFlag && !c.UsernameFlag { // [MQTT-3.1.2-22]
		return nil, fmt.Errorf("%w: CONNECT password flag without user name flag", ErrMalformed)
	}
	if c.KeepAlive, err = d.u16("keep alive"); err != nil {
		return nil, err
	}

	// Any length is accepted: 3.1 capped ids at 23 bytes, but 3.1 clients
	// send longer ones in practice, and 3.1.1 lets servers allow them
	// [MQTT-3.1.3-5].
	id, err := d.str("client identifier") // [MQTT-3.1.3-3], [MQTT-3.1.3-4]
	if err != nil {
		return nil, err
	}
	c.ClientID = string(id)
	if c.WillFlag { // [MQTT-3.1.2-9]
		topic, err := d.str("Will topic") // [MQTT-3.1.3-10]
		if err != nil {
			return nil, err
		}
		if err := checkTopicName(topic, "Will topic"); err != nil {
			return nil, err
		}
		c.WillTopic = string(topic)
		msg, err := d.binary("Will message")
		if err != nil {
			return nil, err
		}
		c.WillMessage = clone(msg)
	}
	if c.UsernameFlag { // [MQTT-3.1.2-19]
		user, err := d.str("user name") // [MQTT-3.1.3-11]
		if err != nil {
			return nil, err
		}
		c.Username = string(user)
	}
	if c.PasswordFlag { // [MQTT-3.1.2-21]
		if v31 && len(d.b) == 0 {
			// Some 3.1 clients set the flag and send no password; like
			// mosquitto, treat that as no password.
			c.PasswordFlag = false
		} else {
			pass, err := d.binary("password")
			if err != nil {
				return nil, err
			}
			c.Password = clone(pass)
		}
	}
	if err := d.empty("CONNECT"); err != nil {
		return nil, err
	}
	// Checked last: a malformed packet is refused without a CONNACK.
	if c.ClientID == "" && !c.CleanSession { // [MQTT-3.1.3-8]
		return nil, fmt.Errorf("%w: empty client identifier without clean session", ErrIdentifierRejected)
	}
	return c, nil
}

// Connack is the CONNACK packet, the server's answer to CONNECT.
type Connack struct {
	SessionPresent bool
	ReturnCode     byte // Accepted, UnacceptableProtocolVersion, ...
}

// Type returns TypeConnack.
func (*Connack) Type() byte { return TypeConnack }

// AppendTo appends the encoded packet to dst. Session Present is sent only
// with return code Accepted [MQTT-3.2.2-4].
func (c *Connack) AppendTo(dst []byte) []byte {
	var flags byte
	if c.SessionPresent && c.ReturnCode == Accepted {
		flags = 1
	}
	return append(dst, TypeConnack<<4, 2, flags, c.ReturnCode)
}

func decodeConnack(body []byte) (*Connack, error) {
	// The fixed header check guarantees len(body) == 2.
	flags, code := body[0], body[1]
	if flags&^1 != 0 { // spec 3.2.2.1: bits 7-1 are reserved
		return nil, fmt.Errorf("%w: CONNACK reserved flags %08b", ErrMalformed, flags)
	}
	if code > NotAuthorized { // spec 3.2.2.3: 6-255 are reserved
		return nil, fmt.Errorf("%w: CONNACK reserved return code %d", ErrMalformed, code)
	}
	if flags != 0 && code != Accepted { // [MQTT-3.2.2-4]
		return nil, fmt.Errorf("%w: CONNACK session present with return code %d", ErrMalformed, code)
	}
	return &Connack{SessionPresent: flags != 0, ReturnCode: code}, nil
}
