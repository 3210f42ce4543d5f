package gate_test

import (
	"bufio"
	"context"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// benchPush pushes b.N messages to one client through the gate's Send (the
// method a module's push reaches) and waits until the client has read
// them all; a persistent client acknowledges each QoS 1 push. At most 256
// are outstanding, inside both the outbox's and the session queue's
// bounds, so nothing is dropped or closed.
func benchPush(b *testing.B, persistent bool) {
	d := demotest.Start(b, nil)
	c := mqtttest.Dial(b, d.TCPAddr)
	c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "bench-push", CleanSession: !persistent,
		UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("p")})
	if ack, ok := c.Next(5 * time.Second).(*packets.Connack); !ok || ack.ReturnCode != 0 {
		b.Fatalf("CONNECT: %#v", ack)
	}
	sessions := d.Gate.Sessions()
	if len(sessions) != 1 {
		b.Fatalf("%d sessions", len(sessions))
	}
	sid := sessions[0].SessionID
	body := []byte(`{"roomName":"lobby","say":"hello there","userName":"alice"}`)
	const window = 256
	slots := make(chan struct{}, window)
	failed := make(chan error, 1)
	n := b.N
	go func() {
		br := bufio.NewReader(c.Conn)
		w := bufio.NewWriter(c.Conn)
		rd := packets.NewReader(br)
		var ack packets.Puback
		buf := make([]byte, 0, 4)
		_ = c.Conn.SetDeadline(time.Now().Add(5 * time.Minute))
		for got := 0; got < n; {
			if br.Buffered() == 0 {
				_ = w.Flush()
			}
			p, err := rd.ReadPacket()
			if err != nil {
				failed <- err
				return
			}
			pub, ok := p.(*packets.Publish)
			if !ok {
				continue
			}
			if pub.QoS == 1 {
				ack.PacketID = pub.PacketID
				buf = ack.AppendTo(buf[:0])
				_, _ = w.Write(buf)
			}
			got++
			<-slots
		}
		_ = w.Flush()
		failed <- nil
	}()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range n {
		slots <- struct{}{}
		if err := d.Gate.Send(ctx, sid, "Chat/OnSay", body); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-failed; err != nil {
		b.Fatalf("client: %v", err)
	}
	b.StopTimer()
	if st := d.Gate.Stats(); st.SessionDropped != 0 || st.SlowClosed != 0 {
		b.Fatalf("dropped %d, closed %d", st.SessionDropped, st.SlowClosed)
	}
}

// BenchmarkPushClean is a push to a clean-session client: QoS 0, written
// and forgotten.
func BenchmarkPushClean(b *testing.B) { benchPush(b, false) }

// BenchmarkPushPersistent is a push to a persistent session: QoS 1 with a
// packet id, kept until the client's PUBACK.
func BenchmarkPushPersistent(b *testing.B) { benchPush(b, true) }
