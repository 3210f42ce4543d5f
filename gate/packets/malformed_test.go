package packets

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestDecodeErrors covers every rule the decoder enforces. Each case is a
// valid packet with one thing wrong.
func TestDecodeErrors(t *testing.T) {
	connect := func(name string, level, flags int, payload ...any) []byte {
		return pk(0x10, append([]any{lp(name), level, flags, 0, 60}, payload...)...)
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		// Input ending early.
		{"empty input", nil, io.EOF},
		{"header without remaining length", bs(0x30), io.ErrUnexpectedEOF},
		{"remaining length cut short", bs(0x30, 0x80), io.ErrUnexpectedEOF},
		{"body cut short", bs(0x30, 7, lp("a/b")), io.ErrUnexpectedEOF},
		{"body missing", bs(0x40, 2), io.ErrUnexpectedEOF},

		// Fixed header (spec 2.2).
		{"reserved type 0", bs(0x00, 0), ErrMalformed},
		{"reserved type 15", bs(0xF0, 0), ErrMalformed},
		{"remaining length of 5 bytes", bs(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F), ErrMalformed},
		{"remaining length of 5 bytes, value 0", bs(0xC0, 0x80, 0x80, 0x80, 0x80, 0x00), ErrMalformed},
		{"CONNECT flags", bs(0x11, 12, lp("MQTT"), 4, 2, 0, 0, lp("")), ErrMalformed},
		{"CONNACK flags", bs(0x28, 2, 0, 0), ErrMalformed},
		{"PUBACK flags", bs(0x42, 2, 0, 1), ErrMalformed},
		{"PUBREC flags", bs(0x51, 2, 0, 1), ErrMalformed},
		{"PUBREL flags 0 [MQTT-3.6.1-1]", bs(0x60, 2, 0, 1), ErrMalformed},
		{"PUBREL flags with DUP", bs(0x6A, 2, 0, 1), ErrMalformed},
		{"PUBCOMP flags", bs(0x7F, 2, 0, 1), ErrMalformed},
		{"SUBSCRIBE flags 0 [MQTT-3.8.1-1]", pk(0x80, 0, 1, lp("a"), 0), ErrMalformed},
		{"SUBACK flags", bs(0x92, 3, 0, 1, 0), ErrMalformed},
		{"UNSUBSCRIBE flags 0 [MQTT-3.10.1-1]", pk(0xA0, 0, 1, lp("a")), ErrMalformed},
		{"UNSUBACK flags", bs(0xB2, 2, 0, 1), ErrMalformed},
		{"PINGREQ flags", bs(0xC1, 0), ErrMalformed},
		{"PINGRESP flags", bs(0xD8, 0), ErrMalformed},
		{"DISCONNECT flags [MQTT-3.14.1-1]", bs(0xE2, 0), ErrMalformed},

		// Exact lengths of fixed-size packets.
		{"CONNACK length 3", bs(0x20, 3, 0, 0, 0), ErrMalformed},
		{"PUBACK length 1", bs(0x40, 1, 1), ErrMalformed},
		{"PUBACK length 3", bs(0x40, 3, 0, 1, 0), ErrMalformed},
		{"PUBREC length 0", bs(0x50, 0), ErrMalformed},
		{"PUBREL length 4", bs(0x62, 4, 0, 1, 0, 0), ErrMalformed},
		{"PUBCOMP length 1", bs(0x70, 1, 1), ErrMalformed},
		{"UNSUBACK length 3", bs(0xB0, 3, 0, 1, 0), ErrMalformed},
		{"PINGREQ length 1", bs(0xC0, 1, 0), ErrMalformed},
		{"PINGRESP length 1", bs(0xD0, 1, 0), ErrMalformed},
		{"DISCONNECT length 2", bs(0xE0, 2, 0, 0), ErrMalformed},

		// Packet identifiers [MQTT-2.3.1-1], [MQTT-2.3.1-6], [MQTT-2.3.1-7].
		{"PUBACK id 0", bs(0x40, 2, 0, 0), ErrMalformed},
		{"PUBREC id 0", bs(0x50, 2, 0, 0), ErrMalformed},
		{"PUBREL id 0", bs(0x62, 2, 0, 0), ErrMalformed},
		{"PUBCOMP id 0", bs(0x70, 2, 0, 0), ErrMalformed},
		{"UNSUBACK id 0", bs(0xB0, 2, 0, 0), ErrMalformed},

		// PUBLISH.
		{"PUBLISH QoS 3 [MQTT-3.3.1-4]", pk(0x36, lp("a/b"), 0, 1), ErrMalformed},
		{"PUBLISH QoS 0 with DUP [MQTT-3.3.1-2]", pk(0x38, lp("a/b")), ErrMalformed},
		{"PUBLISH QoS 1 id 0", pk(0x32, lp("a/b"), 0, 0, "x"), ErrMalformed},
		{"PUBLISH QoS 2 id 0", pk(0x34, lp("a/b"), 0, 0), ErrMalformed},
		{"PUBLISH QoS 1 without id", pk(0x32, lp("a/b")), ErrMalformed},
		{"PUBLISH QoS 1 half an id", pk(0x32, lp("a/b"), 1), ErrMalformed},
		{"PUBLISH topic with + [MQTT-3.3.2-2]", pk(0x30, lp("a/+"), "x"), ErrMalformed},
		{"PUBLISH topic with #", pk(0x30, lp("a/#")), ErrMalformed},
		{"PUBLISH empty topic [MQTT-4.7.3-1]", pk(0x30, lp(""), "x"), ErrMalformed},
		{"PUBLISH topic not UTF-8 [MQTT-1.5.3-1]", pk(0x30, lp("a\xffb")), ErrMalformed},
		{"PUBLISH topic with surrogate", pk(0x30, lp("a\xed\xa0\x80")), ErrMalformed},
		{"PUBLISH topic with overlong NUL", pk(0x30, lp("a\xc0\x80")), ErrMalformed},
		{"PUBLISH topic with U+0000 [MQTT-1.5.3-2]", pk(0x30, lp("a\x00b")), ErrMalformed},
		{"PUBLISH topic overruns packet", pk(0x30, 0, 5, "a/"), ErrMalformed},
		{"PUBLISH without topic length", pk(0x30, 0), ErrMalformed},
		{"PUBLISH empty body", pk(0x30), ErrMalformed},

		// CONNECT.
		{"CONNECT MQTT level 3 [MQTT-3.1.2-2]", connect("MQTT", 3, 2, lp("c")), ErrUnsupportedProtocol},
		{"CONNECT MQTT level 5", connect("MQTT", 5, 2, lp("c")), ErrUnsupportedProtocol},
		{"CONNECT MQIsdp level 4", connect("MQIsdp", 4, 2, lp("c")), ErrUnsupportedProtocol},
		{"CONNECT unknown name [MQTT-3.1.2-1]", connect("HTTP", 4, 2, lp("c")), ErrUnsupportedProtocol},
		{"CONNECT lower-case name", connect("mqtt", 4, 2, lp("c")), ErrUnsupportedProtocol},
		{"CONNECT no protocol name", pk(0x10), ErrMalformed},
		{"CONNECT name cut short", pk(0x10, 0, 4, "MQ"), ErrMalformed},
		{"CONNECT no level", pk(0x10, lp("MQTT")), ErrMalformed},
		{"CONNECT no flags", pk(0x10, lp("MQTT"), 4), ErrMalformed},
		{"CONNECT no keep alive", pk(0x10, lp("MQTT"), 4, 2, 0), ErrMalformed},
		{"CONNECT no client id [MQTT-3.1.3-3]", pk(0x10, lp("MQTT"), 4, 2, 0, 60), ErrMalformed},
		{"CONNECT reserved flag [MQTT-3.1.2-3]", connect("MQTT", 4, 0x03, lp("c")), ErrMalformed},
		{"CONNECT 3.1 reserved flag", connect("MQIsdp", 3, 0x03, lp("c")), ErrMalformed},
		{"CONNECT Will QoS without Will [MQTT-3.1.2-13]", connect("MQTT", 4, 0x0A, lp("c")), ErrMalformed},
		{"CONNECT Will Retain without Will [MQTT-3.1.2-15]", connect("MQTT", 4, 0x22, lp("c")), ErrMalformed},
		{"CONNECT Will QoS 3 [MQTT-3.1.2-14]", connect("MQTT", 4, 0x1E, lp("c"), lp("w"), lp("m")), ErrMalformed},
		{"CONNECT password without user name [MQTT-3.1.2-22]", connect("MQTT", 4, 0x42, lp("c"), lp("pw")), ErrMalformed},
		{"CONNECT client id not UTF-8 [MQTT-3.1.3-4]", connect("MQTT", 4, 2, lp("c\xfe")), ErrMalformed},
		{"CONNECT client id with U+0000", connect("MQTT", 4, 2, lp("c\x00")), ErrMalformed},
		{"CONNECT Will flag without Will topic [MQTT-3.1.2-9]", connect("MQTT", 4, 0x06, lp("c")), ErrMalformed},
		{"CONNECT Will flag without Will message", connect("MQTT", 4, 0x06, lp("c"), lp("w")), ErrMalformed},
		{"CONNECT Will topic with wildcard", connect("MQTT", 4, 0x06, lp("c"), lp("w/#"), lp("m")), ErrMalformed},
		{"CONNECT empty Will topic", connect("MQTT", 4, 0x06, lp("c"), lp(""), lp("m")), ErrMalformed},
		{"CONNECT Will topic not UTF-8 [MQTT-3.1.3-10]", connect("MQTT", 4, 0x06, lp("c"), lp("\xff"), lp("m")), ErrMalformed},
		{"CONNECT user name flag without user name [MQTT-3.1.2-19]", connect("MQTT", 4, 0x82, lp("c")), ErrMalformed},
		{"CONNECT user name not UTF-8 [MQTT-3.1.3-11]", connect("MQTT", 4, 0x82, lp("c"), lp("\xc3")), ErrMalformed},
		{"CONNECT password flag without password [MQTT-3.1.2-21]", connect("MQTT", 4, 0xC2, lp("c"), lp("u")), ErrMalformed},
		{"CONNECT 3.1 password cut short", connect("MQIsdp", 3, 0xC2, lp("c"), lp("u"), 0), ErrMalformed},
		{"CONNECT user name without flag [MQTT-3.1.2-18]", connect("MQTT", 4, 0x02, lp("c"), lp("u")), ErrMalformed},
		{"CONNECT trailing byte", connect("MQTT", 4, 0x02, lp("c"), 0), ErrMalformed},
		{"CONNECT empty id without clean session [MQTT-3.1.3-8]", connect("MQTT", 4, 0x00, lp("")), ErrIdentifierRejected},
		{"CONNECT 3.1 empty id without clean session", connect("MQIsdp", 3, 0x00, lp("")), ErrIdentifierRejected},

		// CONNACK.
		{"CONNACK reserved flag", bs(0x20, 2, 2, 0), ErrMalformed},
		{"CONNACK reserved return code", bs(0x20, 2, 0, 6), ErrMalformed},
		{"CONNACK session present on refusal [MQTT-3.2.2-4]", bs(0x20, 2, 1, 1), ErrMalformed},

		// SUBSCRIBE, SUBACK, UNSUBSCRIBE.
		{"SUBSCRIBE without filters [MQTT-3.8.3-3]", pk(0x82, 0, 1), ErrProtocolViolation},
		{"SUBSCRIBE id 0", pk(0x82, 0, 0, lp("a"), 0), ErrMalformed},
		{"SUBSCRIBE without id", pk(0x82), ErrMalformed},
		{"SUBSCRIBE QoS 3 [MQTT-3.8.3-4]", pk(0x82, 0, 1, lp("a"), 3), ErrMalformed},
		{"SUBSCRIBE reserved QoS bits", pk(0x82, 0, 1, lp("a"), 0x04), ErrMalformed},
		{"SUBSCRIBE without QoS", pk(0x82, 0, 1, lp("a")), ErrMalformed},
		{"SUBSCRIBE second filter without QoS", pk(0x82, 0, 1, lp("a"), 0, lp("b")), ErrMalformed},
		{"SUBSCRIBE empty filter [MQTT-4.7.3-1]", pk(0x82, 0, 1, lp(""), 0), ErrMalformed},
		{"SUBSCRIBE filter not UTF-8 [MQTT-3.8.3-1]", pk(0x82, 0, 1, lp("\xff"), 0), ErrMalformed},
		{"SUBACK without return codes", pk(0x90, 0, 1), ErrMalformed},
		{"SUBACK reserved return code [MQTT-3.9.3-2]", pk(0x90, 0, 1, 0, 3), ErrMalformed},
		{"SUBACK id 0", pk(0x90, 0, 0, 0), ErrMalformed},
		{"UNSUBSCRIBE without filters [MQTT-3.10.3-2]", pk(0xA2, 0, 1), ErrProtocolViolation},
		{"UNSUBSCRIBE id 0", pk(0xA2, 0, 0, lp("a")), ErrMalformed},
		{"UNSUBSCRIBE empty filter", pk(0xA2, 0, 1, lp("")), ErrMalformed},
		{"UNSUBSCRIBE filter not UTF-8 [MQTT-3.10.3-1]", pk(0xA2, 0, 1, lp("a\x00")), ErrMalformed},
		{"UNSUBSCRIBE filter cut short", pk(0xA2, 0, 1, 0, 3, "a"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewReader(bytes.NewReader(tt.raw)).ReadPacket()
			if !errors.Is(err, tt.want) {
				t.Fatalf("decode % x: err = %v, want %v", tt.raw, err, tt.want)
			}
			if p != nil {
				t.Errorf("decode % x returned %#v with the error", tt.raw, p)
			}
		})
	}
}

func TestConnackCode(t *testing.T) {
	tests := []struct {
		raw    []byte
		code   byte
		answer bool
	}{
		{pk(0x10, lp("MQTT"), 5, 2, 0, 0, lp("c")), UnacceptableProtocolVersion, true},
		{pk(0x10, lp("MQTT"), 4, 0, 0, 0, lp("")), IdentifierRejected, true},
		{pk(0x10, lp("MQTT"), 4, 1, 0, 0, lp("c")), 0, false},
	}
	for _, tt := range tests {
		_, err := NewReader(bytes.NewReader(tt.raw)).ReadPacket()
		code, answer := ConnackCode(err)
		if code != tt.code || answer != tt.answer {
			t.Errorf("ConnackCode(%v) = %d, %v; want %d, %v", err, code, answer, tt.code, tt.answer)
		}
	}
}
