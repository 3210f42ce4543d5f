package gate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/gate"
)

// Room remembers where each client that joined is connected, to push to
// them all. (A module is normally generated from //mqant:module; this one
// spells its descriptor table out.)
type Room struct {
	core.BaseModule
	mu      sync.Mutex
	members []gate.Member
}

func (r *Room) GetType() string { return "Room" }

func (r *Room) OnInit(app *core.App, s *core.ModuleSettings) error {
	r.Init(app, s)
	r.RPCServer().Register(&core.ModuleDesc{Type: "Room", Methods: []core.MethodDesc{
		{Name: "Handler_Join", Handler: func(srv any, ctx context.Context, inv core.Invoker, req *core.Request) (any, error) {
			return srv.(*Room).Handler_Join(ctx, gate.NewSession(inv, req.Session))
		}},
	}}, r)
	return nil
}

// Handler_Join is what clients call on Room/Handler_Join/<msgid>.
func (r *Room) Handler_Join(ctx context.Context, s *gate.Session) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members = append(r.members, gate.Member{ServerID: s.GetServerID(), SessionID: s.GetSessionID()})
	return fmt.Sprintf("joined, %d here", len(r.members)), nil
}

func (r *Room) Members() []gate.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gate.Member(nil), r.members...)
}

// Broadcast pushes one message to many clients with one call per gate. Here
// a gate listens on a free loopback port, a Paho MQTT client joins a room
// as a game client would, and the room broadcasts to its members.
func ExampleBroadcast() {
	cfg, err := core.ParseConfig([]byte(`{"Module": {
		"Gate": [{"Id": "gate-1", "ProcessID": "dev", "Settings": {"TCPAddr": "127.0.0.1:0"}}],
		"Room": [{"Id": "room-1", "ProcessID": "dev"}]
	}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	app := core.NewApp(cfg, core.Options{ProcessID: "dev", Logger: slog.New(slog.DiscardHandler)})
	var g *gate.Gate
	newGate := gate.New()
	app.Register(gate.Gate_Type, func() core.Module { m := newGate(); g = m.(*gate.Gate); return m })
	room := &Room{}
	app.Register("Room", func() core.Module { return room })
	if err := app.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop("example done")

	// The client: replies and pushes arrive without subscribing.
	got := make(chan mqtt.Message, 8)
	client := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + g.TCPAddr().String()).
		SetClientID("alice").SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m }))
	if t := client.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		fmt.Println("connect:", t.Error())
		return
	}
	defer client.Disconnect(0)
	client.Publish("Room/Handler_Join/1", 0, false, "{}")
	m := next(got)
	var reply struct{ Result string }
	_ = json.Unmarshal(m.Payload(), &reply)
	fmt.Println(m.Topic(), reply.Result)

	err = gate.Broadcast(context.Background(), app, room.Members(), "Room/OnNews", []byte(`{"text":"welcome"}`))
	fmt.Println("broadcast:", err)
	m = next(got)
	fmt.Println(m.Topic(), string(m.Payload()))
	// Output:
	// Room/Handler_Join/1 joined, 1 here
	// broadcast: <nil>
	// Room/OnNews {"text":"welcome"}
}

// next waits for the client's next message, up to a deadline.
func next(got chan mqtt.Message) mqtt.Message {
	select {
	case m := <-got:
		return m
	case <-time.After(10 * time.Second):
		panic("no message within 10s")
	}
}
