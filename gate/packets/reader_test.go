package packets

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// TestRemainingLengthBoundaries checks the varint at every size boundary,
// both ways, and refuses a fifth byte (spec 2.2.3).
func TestRemainingLengthBoundaries(t *testing.T) {
	tests := []struct {
		n   int
		enc []byte
	}{
		{0, bs(0x00)},
		{127, bs(0x7F)},
		{128, bs(0x80, 0x01)},
		{16383, bs(0xFF, 0x7F)},
		{16384, bs(0x80, 0x80, 0x01)},
		{2097151, bs(0xFF, 0xFF, 0x7F)},
		{2097152, bs(0x80, 0x80, 0x80, 0x01)},
		{268435455, bs(0xFF, 0xFF, 0xFF, 0x7F)},
	}
	for _, tt := range tests {
		if got := appendRemainingLength(nil, tt.n); !bytes.Equal(got, tt.enc) {
			t.Errorf("encode %d = % x, want % x", tt.n, got, tt.enc)
		}
		if got := varintLen(tt.n); got != len(tt.enc) {
			t.Errorf("varintLen(%d) = %d, want %d", tt.n, got, len(tt.enc))
		}
		r := bytes.NewReader(tt.enc)
		got, err := readRemainingLength(r)
		if err != nil || got != tt.n || r.Len() != 0 {
			t.Errorf("decode % x = %d, %v with %d bytes left; want %d", tt.enc, got, err, r.Len(), tt.n)
		}
	}
	for _, enc := range [][]byte{bs(0xFF, 0xFF, 0xFF, 0xFF, 0x7F), bs(0x80, 0x80, 0x80, 0x80, 0x01)} {
		r := bytes.NewReader(enc)
		if _, err := readRemainingLength(r); !errors.Is(err, ErrMalformed) {
			t.Errorf("decode % x: err = %v, want ErrMalformed", enc, err)
		}
		if r.Len() != 1 {
			t.Errorf("decode % x read the fifth byte", enc)
		}
	}
	for _, n := range []int{-1, MaxRemainingLength + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("appendRemainingLength(%d) did not panic", n)
				}
			}()
			appendRemainingLength(nil, n)
		}()
	}
}

// TestRemainingLengthPackets round-trips whole packets whose remaining length
// sits on each boundary a test can afford.
func TestRemainingLengthPackets(t *testing.T) {
	for _, n := range []int{0, 127, 128, 16383, 16384, 2097151, 2097152} {
		var p Packet = &Pingreq{}
		if n > 0 {
			p = &Publish{Topic: "a/b", Payload: bytes.Repeat([]byte{'x'}, n-5)}
		}
		raw := p.AppendTo(nil)
		if got := len(raw); got != 1+varintLen(n)+n {
			t.Fatalf("n=%d: encoded %d bytes", n, got)
		}
		got, err := decodeOne(t, raw)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("n=%d: round trip changed the packet", n)
		}
	}
	// The largest value decodes, and is then refused by the size limit
	// before anything else happens.
	_, err := NewReader(bytes.NewReader(bs(0x30, 0xFF, 0xFF, 0xFF, 0x7F))).ReadPacket()
	if !errors.Is(err, ErrPacketTooLarge) || !strings.Contains(err.Error(), "268435455") {
		t.Fatalf("err = %v, want ErrPacketTooLarge for 268435455", err)
	}
}

// TestMaxSizeBeforeBody shows that an oversized packet is refused after its
// fixed header, without reading (or allocating) its body.
func TestMaxSizeBeforeBody(t *testing.T) {
	tests := []struct {
		name   string
		max    int // 0: default
		header []byte
	}{
		{"default limit + 1", 0, bs(0x30, 0x81, 0x80, 0x04)}, // 65537
		{"CONNECT over a 4 KiB pre-CONNECT limit", 4096, bs(0x10, 0x81, 0x20)},
		{"largest remaining length", 0, bs(0x30, 0xFF, 0xFF, 0xFF, 0x7F)},
		{"limit 1", 1, bs(0x40, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A body follows, but reading any of it fails the test.
			data := append(bytes.Clone(tt.header), make([]byte, 8192)...)
			rd := NewReader(&strictReader{tb: t, data: data, limit: len(tt.header)})
			if tt.max != 0 {
				rd.SetMaxSize(tt.max)
			}
			p, err := rd.ReadPacket()
			if !errors.Is(err, ErrPacketTooLarge) || p != nil {
				t.Fatalf("ReadPacket = %v, %v; want ErrPacketTooLarge", p, err)
			}
		})
	}
}

// TestMaxSizeBoundary accepts a packet of exactly the limit, refuses one
// byte more, and shows SetMaxSize taking effect between packets.
func TestMaxSizeBoundary(t *testing.T) {
	small := (&Publish{Topic: "t", Payload: make([]byte, 4096-3)}).AppendTo(nil) // remaining 4096
	big := (&Publish{Topic: "t", Payload: make([]byte, 4096-2)}).AppendTo(nil)   // remaining 4097
	rd := NewReader(bytes.NewReader(append(append(bytes.Clone(small), big...), big...)))
	rd.SetMaxSize(4096)
	if _, err := rd.ReadPacket(); err != nil {
		t.Fatalf("packet at the limit: %v", err)
	}
	rd.SetMaxSize(0)
	if got := rd.MaxSize(); got != DefaultMaxSize {
		t.Fatalf("SetMaxSize(0) gave %d, want DefaultMaxSize", got)
	}
	if _, err := rd.ReadPacket(); err != nil {
		t.Fatalf("packet after raising the limit: %v", err)
	}
	rd.SetMaxSize(4096)
	if _, err := rd.ReadPacket(); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("packet over the limit: err = %v", err)
	}
	rd.SetMaxSize(MaxRemainingLength + 1)
	if got := rd.MaxSize(); got != MaxRemainingLength {
		t.Fatalf("SetMaxSize above the wire limit gave %d", got)
	}
}

// TestStream reads every valid packet from one stream, through readers that
// split it differently, and ends with io.EOF.
func TestStream(t *testing.T) {
	var stream []byte
	var want []Packet
	for _, tc := range codecCases() {
		if tc.dir == encodeOnly {
			continue
		}
		stream = append(stream, tc.raw...)
		want = append(want, tc.pkt)
	}
	readers := map[string]func() io.Reader{
		"bytes.Reader":   func() io.Reader { return bytes.NewReader(stream) },
		"one byte":       func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"two halves":     func() io.Reader { return halves(stream) },
		"small bufio":    func() io.Reader { return bufio.NewReaderSize(halves(stream), 16) },
		"data with EOF":  func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
		"half of a read": func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			got, err := readAll(r(), DefaultMaxSize)
			if err != io.EOF {
				t.Fatalf("stream ended with %v after %d packets", err, len(got))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %d packets, want %d, or they differ", len(got), len(want))
			}
		})
	}
}

// TestPublishReuse documents the ownership rule: the Reader returns its own
// *Publish with a payload in its buffer, overwritten by the next read.
func TestPublishReuse(t *testing.T) {
	stream := append(AppendPublish(nil, "a/b", []byte("first"), 0, 0),
		AppendPublish(nil, "c/d", []byte("other"), 1, 5)...)
	rd := NewReader(bytes.NewReader(stream))
	p1, err := rd.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	first := p1.(*Publish)
	kept := first.Clone()
	p2, err := rd.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	second := p2.(*Publish)
	if first != second {
		t.Error("the Reader allocated a new Publish")
	}
	if string(first.Payload) != "other" || first.Topic != "c/d" {
		t.Errorf("the reused Publish holds %q %q", first.Topic, first.Payload)
	}
	want := &Publish{Topic: "a/b", Payload: []byte("first")}
	if !reflect.DeepEqual(kept, want) {
		t.Errorf("Clone = %#v, want %#v", kept, want)
	}
}

// TestRawTopics: a Reader told RawTopics gives the topic only as
// RawTopic, and Clone still makes a Publish with its Topic.
func TestRawTopics(t *testing.T) {
	stream := append(AppendPublish(nil, "a/b/1", []byte("x"), 0, 0), AppendPublish(nil, "a/b/2", []byte("y"), 0, 0)...)
	rd := NewReader(bytes.NewReader(stream))
	rd.RawTopics(true)
	for _, want := range []string{"a/b/1", "a/b/2"} {
		pk, err := rd.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		p := pk.(*Publish)
		if p.Topic != "" || string(p.RawTopic) != want {
			t.Errorf("Topic %q RawTopic %q, want \"\" and %q", p.Topic, p.RawTopic, want)
		}
		if c := p.Clone(); c.Topic != want || c.RawTopic != nil {
			t.Errorf("Clone: Topic %q RawTopic %q, want %q and nil", c.Topic, c.RawTopic, want)
		}
	}
	rd.RawTopics(false)
	rd.Reset(bytes.NewReader(stream))
	pk, err := rd.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if p := pk.(*Publish); p.Topic != "a/b/1" || string(p.RawTopic) != "a/b/1" {
		t.Errorf("without RawTopics: Topic %q RawTopic %q", p.Topic, p.RawTopic)
	}
}

// TestReset reuses a Reader on a new stream.
func TestReset(t *testing.T) {
	rd := NewReader(bytes.NewReader(bs(0xC0, 0)))
	rd.SetMaxSize(100)
	if _, err := rd.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	rd.Reset(strings.NewReader("\xe0\x00"))
	p, err := rd.ReadPacket()
	if _, ok := p.(*Disconnect); !ok || err != nil {
		t.Fatalf("after Reset: %#v, %v", p, err)
	}
	if rd.MaxSize() != 100 {
		t.Errorf("Reset changed the maximum size to %d", rd.MaxSize())
	}
}

// TestReadErrorPassedThrough keeps the transport's error (a deadline, a
// reset) visible to the caller.
func TestReadErrorPassedThrough(t *testing.T) {
	boom := errors.New("boom")
	for name, r := range map[string]io.Reader{
		"first byte": iotest.ErrReader(boom),
		"body":       io.MultiReader(bytes.NewReader(bs(0x40, 2, 0)), iotest.ErrReader(boom)),
	} {
		if _, err := NewReader(r).ReadPacket(); !errors.Is(err, boom) {
			t.Errorf("%s: err = %v, want boom", name, err)
		}
	}
}
