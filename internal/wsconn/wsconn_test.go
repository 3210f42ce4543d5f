package wsconn

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/gorilla/websocket"
)

// A reader that meets an error keeps getting it: gorilla/websocket panics
// on the 1000th read of a failed connection, and a stream consumer (the
// gate's packet reader, a retry loop) may well call Read again.
func TestReadErrorIsSticky(t *testing.T) {
	client, server := wsPipe(t)
	c := New(server)
	defer c.Close()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	defer client.Close()
	go func() {
		_, _ = client.Write(appendFrame(nil, true, 0, opClose, false, binary.BigEndian.AppendUint16(nil, websocket.CloseGoingAway)))
	}()
	_, first := c.Read(make([]byte, 8))
	var ce *websocket.CloseError
	if !errors.As(first, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("first read: %v, want CloseError 1001", first)
	}
	for i := range 1500 {
		if _, err := c.Read(make([]byte, 8)); err != first {
			t.Fatalf("read %d after the close: %v, want %v", i, err, first)
		}
	}
}
