package gate_test

import (
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// TestGroupAndSendToUser: a group keeps one member per user id, a newer
// session replacing the older; its broadcast reaches every member's
// connection; SendToUser finds a user by id on its gate.
func TestGroupAndSendToUser(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	login := func(id, user string) *mqtttest.Client {
		c := mqtttest.Connect(t, d.TCPAddr, id, 30)
		if got := c.Request("Login/Handler_Login/1", `{"userName":"`+user+`","passWord":"x"}`); got != `{"Error":"","Result":"login success `+user+`"}` {
			t.Fatalf("login %s: %s", user, got)
		}
		return c
	}
	ann, bob := login("ann-1", "ann"), login("bob-1", "bob")
	session := func(uid string) *gate.Session {
		t.Helper()
		data, err := gate.Online(t.Context(), d.App, uid)
		if err != nil || data == nil {
			t.Fatalf("Online(%s) = %v, %v", uid, data, err)
		}
		return gate.NewSession(d.App, data)
	}
	g := gate.NewGroup()
	if !g.Add(session("ann")) || !g.Add(session("bob")) || g.Add(session("ann")) {
		t.Fatal("Add: a user joins once per session")
	}
	if guest := gate.NewSession(d.App, &core.SessionData{SessionID: "x", ServerID: "y"}); g.Add(guest) {
		t.Fatal("a guest session joined a group")
	}
	if g.Len() != 2 || !g.Has(session("bob")) {
		t.Fatalf("Len %d, members %v", g.Len(), g.UserIDs())
	}
	if err := g.Broadcast(t.Context(), d.App, "Room/OnNews", []byte(`"hello"`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*mqtttest.Client{ann, bob} {
		if got := c.WaitPublish("Room/OnNews", 5*time.Second); string(got.Payload) != `"hello"` {
			t.Fatalf("broadcast: %s", got.Payload)
		}
	}
	// Ann logs in again elsewhere: the gate closes her first session and the
	// group takes the newer one in its place.
	ann2 := login("ann-2", "ann")
	if !ann.WaitClosed(5 * time.Second) {
		t.Fatal("ann's first connection still open")
	}
	if !g.Add(session("ann")) || g.Len() != 2 {
		t.Fatalf("the newer session did not replace the older: %v", g.UserIDs())
	}
	if err := gate.SendToUser(t.Context(), d.App, "ann", "Room/OnNews", []byte(`"just you"`)); err != nil {
		t.Fatal(err)
	}
	if got := ann2.WaitPublish("Room/OnNews", 5*time.Second); string(got.Payload) != `"just you"` {
		t.Fatalf("SendToUser: %s", got.Payload)
	}
	if err := gate.SendToUser(t.Context(), d.App, "nobody", "Room/OnNews", []byte(`1`)); err == nil {
		t.Fatal("SendToUser to a user who is not online succeeded")
	}
	if uids := g.RemoveSession(session("bob").GetSessionID()); len(uids) != 1 || uids[0] != "bob" || g.Len() != 1 {
		t.Fatalf("RemoveSession: %v, left %v", uids, g.UserIDs())
	}
}
