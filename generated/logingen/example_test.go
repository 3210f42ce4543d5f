package logingen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/login"
	"github.com/mqantgen/mqantgen/demo/login/loginapi"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/generated/logingen"
)

// The generated LoginClient is how other modules call Login: one typed
// method per handler and //mqant:rpc method, in-process here (values are
// passed, not encoded) and over RabbitMQ when the config says so. A game
// client logs in over MQTT (Paho, on the gate's free loopback port); then
// the typed client looks the user up and logs the same session in again.
func ExampleLoginClient() {
	cfg, err := core.ParseConfig([]byte(`{"Module": {
		"Gate": [{"Id": "gate-1", "ProcessID": "dev", "Settings": {"TCPAddr": "127.0.0.1:0"}}],
		"Login": [{"Id": "login-1", "ProcessID": "dev"}]
	}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	app := core.NewApp(cfg, core.Options{ProcessID: "dev", Logger: slog.New(slog.DiscardHandler)})
	var g *gate.Gate
	newGate := gate.New()
	app.Register(gate.Gate_Type, func() core.Module { m := newGate(); g = m.(*gate.Gate); return m })
	login.Register(app)
	if err := app.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop("example done")
	ctx := context.Background()
	c := logingen.NewLoginClient(app)

	_, err = c.GetUser(ctx, "alice")
	fmt.Println("before:", err)

	got := make(chan mqtt.Message, 1)
	player := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + g.TCPAddr().String()).
		SetClientID("alice-phone").SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m }))
	if t := player.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		fmt.Println("connect:", t.Error())
		return
	}
	defer player.Disconnect(0)
	player.Publish("Login/Handler_Login/1", 0, false, `{"userName":"alice","passWord":"x"}`)
	select {
	case m := <-got:
		var reply struct{ Result string }
		_ = json.Unmarshal(m.Payload(), &reply)
		fmt.Println("client:", reply.Result)
	case <-time.After(10 * time.Second):
		fmt.Println("no reply within 10s")
		return
	}

	u, err := c.GetUser(ctx, "alice")
	fmt.Println("after:", u.Name, u.Gate, u.Logins, err)

	// A handler takes the caller's session: here the one alice logged in on.
	data, err := gate.Online(ctx, app, "alice")
	if err != nil || data == nil {
		fmt.Println("online:", data, err)
		return
	}
	msg, err := c.Login(ctx, gate.NewSession(app, data), &loginapi.LoginRequest{UserName: "alice", PassWord: "x"})
	fmt.Println("typed:", msg, err)
	u, _ = c.GetUser(ctx, "alice")
	fmt.Println("logins:", u.Logins)
	// Output:
	// before: Not Logined
	// client: login success alice
	// after: alice gate-1 1 <nil>
	// typed: login success alice <nil>
	// logins: 2
}
