package packets

import (
	"bytes"
	"testing"
)

// chatPublish is a typical inbound request: QoS 0, a 64-byte JSON payload.
var chatPublish = AppendPublish(nil, "Chat/Handler_Say/3",
	[]byte(`{"roomName":"abc","say":"hello, this is sixty-four bytes long!"}`), 0, 0)

func TestChatPublishPayloadSize(t *testing.T) {
	p, err := decodeOne(t, chatPublish)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.(*Publish).Payload); n != 64 {
		t.Fatalf("payload is %d bytes, want 64", n)
	}
}

// TestReadPublishAllocs guards the hot path: reading a QoS 0 PUBLISH
// allocates at most the topic string, nothing when the topic repeats, and
// nothing when the reader is told RawTopics.
func TestReadPublishAllocs(t *testing.T) {
	other := AppendPublish(nil, "Chat/Handler_JoinChat/2", []byte(`{"roomName":"abc"}`), 0, 0)
	tests := []struct {
		name   string
		stream []byte
		raw    bool
		max    float64
	}{
		{"same topic", chatPublish, false, 0},
		{"alternating topics", append(bytes.Clone(chatPublish), other...), false, 1},
		{"alternating topics, RawTopics", append(bytes.Clone(chatPublish), other...), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := NewReader(&repeatReader{data: tt.stream})
			rd.RawTopics(tt.raw)
			rd.ReadPacket() // size the buffer
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := rd.ReadPacket(); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > tt.max {
				t.Errorf("ReadPacket allocated %.1f objects per QoS 0 PUBLISH, want <= %.0f", allocs, tt.max)
			}
		})
	}
}

// TestAppendAllocs guards the write path: encoding into a buffer with room
// allocates nothing.
func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	payload := []byte(`{"Error":"","Result":"say success"}`)
	allocs := testing.AllocsPerRun(200, func() {
		buf = AppendPublish(buf[:0], "Chat/Handler_Say/3", payload, 0, 0)
	})
	if allocs != 0 {
		t.Errorf("AppendPublish allocated %.1f objects, want 0", allocs)
	}
	for _, tc := range codecCases() {
		allocs := testing.AllocsPerRun(20, func() {
			buf = tc.pkt.AppendTo(buf[:0])
		})
		if allocs != 0 {
			t.Errorf("%s: AppendTo allocated %.1f objects, want 0", tc.name, allocs)
		}
	}
}

func BenchmarkReadPublish(b *testing.B) {
	rd := NewReader(&repeatReader{data: chatPublish})
	b.ReportAllocs()
	b.SetBytes(int64(len(chatPublish)))
	for b.Loop() {
		if _, err := rd.ReadPacket(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadPublishNewTopic pays for the topic string on every packet.
func BenchmarkReadPublishNewTopic(b *testing.B) {
	other := AppendPublish(nil, "Chat/Handler_Say/4",
		[]byte(`{"roomName":"abc","say":"hello, this is sixty-four bytes long!"}`), 0, 0)
	rd := NewReader(&repeatReader{data: append(bytes.Clone(chatPublish), other...)})
	b.ReportAllocs()
	b.SetBytes(int64(len(chatPublish)))
	for b.Loop() {
		if _, err := rd.ReadPacket(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	payload := make([]byte, 64)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(chatPublish)))
	for b.Loop() {
		buf = AppendPublish(buf[:0], "Chat/Handler_Say/3", payload, 0, 0)
	}
}

func BenchmarkPublishAppendTo(b *testing.B) {
	p := &Publish{QoS: 1, PacketID: 1, Topic: "Chat/Handler_Say/3", Payload: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(chatPublish)))
	for b.Loop() {
		buf = p.AppendTo(buf[:0])
	}
}
