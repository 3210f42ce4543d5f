package packets

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// direction says which way a codec case is checked.
type direction int

const (
	both       direction = iota
	decodeOnly           // non-canonical input: decodes to pkt, pkt encodes differently
	encodeOnly           // pkt is normalised when encoded (QoS 0 id, DUP)
)

type codecCase struct {
	name string
	raw  []byte
	pkt  Packet
	dir  direction
}

const longID = "a-3.1-client-id-longer-than-23-bytes" // 36 bytes

// codecCases are valid packets of every type, as raw bytes and as structs.
func codecCases() []codecCase {
	return []codecCase{
		{"CONNECT 3.1.1 minimal", pk(0x10, lp("MQTT"), 4, 0x02, 0, 60, lp("")),
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 60}, both},
		{"CONNECT 3.1.1 all fields",
			pk(0x10, lp("MQTT"), 4, 0xEE, 0x01, 0x2C, lp("client-1"), lp("will/topic"), lp("bye"), lp("alice"), lp("secret")),
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 300, ClientID: "client-1",
				WillFlag: true, WillQoS: 1, WillRetain: true, WillTopic: "will/topic", WillMessage: []byte("bye"),
				UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("secret")}, both},
		{"CONNECT 3.1.1 Will QoS 2, no clean session",
			pk(0x10, lp("MQTT"), 4, 0x14, 0, 0, lp("id"), lp("w"), lp("")),
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "id", WillFlag: true, WillQoS: 2, WillTopic: "w"}, both},
		{"CONNECT 3.1.1 empty password",
			pk(0x10, lp("MQTT"), 4, 0xC2, 0, 10, lp("c"), lp("u"), lp("")),
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 10, ClientID: "c",
				UsernameFlag: true, Username: "u", PasswordFlag: true}, both},
		{"CONNECT 3.1.1 UTF-8 client id",
			pk(0x10, lp("MQTT"), 4, 0x02, 0, 0, lp("玩家-7")),
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, ClientID: "玩家-7"}, both},
		{"CONNECT 3.1 long client id",
			pk(0x10, lp("MQIsdp"), 3, 0x02, 0, 30, lp(longID)),
			&Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, KeepAlive: 30, ClientID: longID}, both},
		{"CONNECT 3.1 credentials and Will",
			pk(0x10, lp("MQIsdp"), 3, 0xCE, 0, 30, lp(longID), lp("w/t"), lp("bye"), lp("al"), lp("pw")),
			&Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, KeepAlive: 30, ClientID: longID,
				WillFlag: true, WillQoS: 1, WillTopic: "w/t", WillMessage: []byte("bye"),
				UsernameFlag: true, Username: "al", PasswordFlag: true, Password: []byte("pw")}, both},
		{"CONNECT 3.1 password without user name",
			pk(0x10, lp("MQIsdp"), 3, 0x42, 0, 0, lp("c"), lp("pw")),
			&Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, ClientID: "c",
				PasswordFlag: true, Password: []byte("pw")}, both},
		{"CONNECT 3.1 password flag with no password",
			pk(0x10, lp("MQIsdp"), 3, 0xC2, 0, 0, lp("c"), lp("u")),
			&Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, ClientID: "c",
				UsernameFlag: true, Username: "u"}, decodeOnly},

		{"CONNACK accepted", bs(0x20, 2, 0, 0), &Connack{}, both},
		{"CONNACK session present", bs(0x20, 2, 1, 0), &Connack{SessionPresent: true}, both},
		{"CONNACK unacceptable protocol", bs(0x20, 2, 0, 1), &Connack{ReturnCode: UnacceptableProtocolVersion}, both},
		{"CONNACK not authorized", bs(0x20, 2, 0, 5), &Connack{ReturnCode: NotAuthorized}, both},
		{"CONNACK session present dropped on refusal", bs(0x20, 2, 0, 4),
			&Connack{SessionPresent: true, ReturnCode: BadUsernameOrPassword}, encodeOnly},

		{"PUBLISH QoS 0", pk(0x30, lp("a/b"), "hi"), &Publish{Topic: "a/b", Payload: []byte("hi")}, both},
		{"PUBLISH QoS 0 empty payload", pk(0x30, lp("a/b")), &Publish{Topic: "a/b"}, both},
		{"PUBLISH QoS 0 retain", pk(0x31, lp("a"), "{}", 0), &Publish{Retain: true, Topic: "a", Payload: []byte("{}\x00")}, both},
		{"PUBLISH QoS 1 DUP retain", pk(0x3B, lp("a/b"), 0, 7, "hi"),
			&Publish{Dup: true, QoS: 1, Retain: true, Topic: "a/b", PacketID: 7, Payload: []byte("hi")}, both},
		{"PUBLISH QoS 2", pk(0x34, lp("Login/Handler_Login/1"), 0xAB, 0xCD, `{}`),
			&Publish{QoS: 2, Topic: "Login/Handler_Login/1", PacketID: 0xABCD, Payload: []byte("{}")}, both},
		{"PUBLISH UTF-8 topic", pk(0x30, lp("房间/说"), "x"), &Publish{Topic: "房间/说", Payload: []byte("x")}, both},
		{"PUBLISH QoS 0 drops packet id", pk(0x30, lp("a/b")), &Publish{Topic: "a/b", PacketID: 9}, encodeOnly},
		{"PUBLISH QoS 0 drops DUP", pk(0x30, lp("a/b")), &Publish{Dup: true, Topic: "a/b"}, encodeOnly},

		{"PUBACK", bs(0x40, 2, 0, 1), &Puback{PacketID: 1}, both},
		{"PUBREC", bs(0x50, 2, 0x12, 0x34), &Pubrec{PacketID: 0x1234}, both},
		{"PUBREL", bs(0x62, 2, 0, 7), &Pubrel{PacketID: 7}, both},
		{"PUBCOMP", bs(0x70, 2, 0xFF, 0xFF), &Pubcomp{PacketID: 0xFFFF}, both},

		{"SUBSCRIBE", pk(0x82, 0, 10, lp("a/b"), 0, lp("c/#"), 2),
			&Subscribe{PacketID: 10, Topics: []Subscription{{"a/b", 0}, {"c/#", 2}}}, both},
		{"SUBSCRIBE one wildcard filter", pk(0x82, 0, 1, lp("+"), 1),
			&Subscribe{PacketID: 1, Topics: []Subscription{{"+", 1}}}, both},
		{"SUBACK", pk(0x90, 0, 10, 0, 1, 0x80), &Suback{PacketID: 10, ReturnCodes: []byte{0, 1, SubackFailure}}, both},
		{"UNSUBSCRIBE", pk(0xA2, 0, 11, lp("a/b"), lp("c/#")),
			&Unsubscribe{PacketID: 11, Filters: []string{"a/b", "c/#"}}, both},
		{"UNSUBACK", bs(0xB0, 2, 0, 11), &Unsuback{PacketID: 11}, both},

		{"PINGREQ", bs(0xC0, 0), &Pingreq{}, both},
		{"PINGRESP", bs(0xD0, 0), &Pingresp{}, both},
		{"DISCONNECT", bs(0xE0, 0), &Disconnect{}, both},
		{"PINGREQ non-minimal remaining length", bs(0xC0, 0x80, 0x00), &Pingreq{}, decodeOnly},
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range codecCases() {
		if tc.dir == encodeOnly {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeOne(t, tc.raw)
			if err != nil {
				t.Fatalf("decode % x: %v", tc.raw, err)
			}
			if !reflect.DeepEqual(got, tc.pkt) {
				t.Errorf("decode % x\n got %#v\nwant %#v", tc.raw, got, tc.pkt)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	for _, tc := range codecCases() {
		if tc.dir == decodeOnly {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.pkt.AppendTo(nil); !bytes.Equal(got, tc.raw) {
				t.Errorf("encode %#v\n got % x\nwant % x", tc.pkt, got, tc.raw)
			}
			// Appending keeps what dst held.
			prefix := []byte("prefix")
			if got := tc.pkt.AppendTo(prefix); !bytes.Equal(got, append(prefix, tc.raw...)) {
				t.Errorf("AppendTo(prefix) = % x", got)
			}
			if got := tc.pkt.Type(); got != tc.raw[0]>>4 {
				t.Errorf("Type() = %d, want %d", got, tc.raw[0]>>4)
			}
		})
	}
}

// TestPingresp pins the exact bytes clients expect.
func TestPingresp(t *testing.T) {
	if got := (&Pingresp{}).AppendTo(nil); !bytes.Equal(got, []byte{0xD0, 0x00}) {
		t.Fatalf("PINGRESP = % x, want d0 00", got)
	}
}

func TestAppendPublish(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		payload string
		qos     byte
		id      uint16
		want    []byte
	}{
		{"QoS 0 has no packet id", "Chat/OnSay", "{}", 0, 42, pk(0x30, lp("Chat/OnSay"), "{}")},
		{"QoS 1", "a/b", "x", 1, 42, pk(0x32, lp("a/b"), 0, 42, "x")},
		{"QoS 2", "a/b", "", 2, 0x102, pk(0x34, lp("a/b"), 1, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendPublish(nil, tt.topic, []byte(tt.payload), tt.qos, tt.id)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got % x\nwant % x", got, tt.want)
			}
		})
	}
}

// TestLongClientID accepts the longest client id a CONNECT can carry.
func TestLongClientID(t *testing.T) {
	id := strings.Repeat("x", 65535)
	c := &Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, ClientID: id}
	raw := c.AppendTo(nil)
	got, err := decodeOne(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("client id of %d bytes did not survive", len(id))
	}
}

// TestEncodePanicsOnUnencodable shows that lengths the wire cannot carry are
// refused loudly rather than written with a wrong prefix.
func TestEncodePanicsOnUnencodable(t *testing.T) {
	tests := []struct {
		name string
		pkt  Packet
	}{
		{"topic over 65535 bytes", &Publish{Topic: strings.Repeat("t", 65536)}},
		{"client id over 65535 bytes", &Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: strings.Repeat("c", 65536)}},
		{"password over 65535 bytes", &Connect{ProtocolName: "MQTT", ProtocolLevel: 4, PasswordFlag: true, Password: make([]byte, 65536)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("AppendTo did not panic")
				}
			}()
			tt.pkt.AppendTo(nil)
		})
	}
}

func TestTypeName(t *testing.T) {
	for typ, want := range map[byte]string{TypeConnect: "CONNECT", TypePingresp: "PINGRESP", 0: "RESERVED0", 16: "TYPE(16)"} {
		if got := TypeName(typ); got != want {
			t.Errorf("TypeName(%d) = %q, want %q", typ, got, want)
		}
	}
}
