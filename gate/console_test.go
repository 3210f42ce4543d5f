package gate_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// TestConsoleShowsTheClientsErrorIDs: the ids a client gets, for a panic
// ("internal error (id ...)") and for a failure further on ("service
// unavailable (id ...)"), are among the console's recent errors, with the
// module and handler the client called; the gate's online users too.
func TestConsoleShowsTheClientsErrorIDs(t *testing.T) {
	leakcheck.Check(t)
	p := newProbe()
	d := demotest.StartWith(t, demotest.Options{Admin: &core.AdminConfig{Addr: "127.0.0.1:0"}, Extras: []demotest.Extra{probeExtra(p)}})
	c := mqtttest.Connect(t, d.TCPAddr, "console", 30)
	idOf := func(topic, prefix string) string {
		t.Helper()
		c.Send(&packets.Publish{Topic: topic, Payload: []byte(`{}`)})
		var reply struct{ Error string }
		if err := json.Unmarshal(c.WaitPublish(topic, 5*time.Second).Payload, &reply); err != nil {
			t.Fatal(err)
		}
		id, ok := strings.CutPrefix(reply.Error, prefix+" (id ")
		if !ok {
			t.Fatalf("%s answered %q, want %s (id ...)", topic, reply.Error, prefix)
		}
		return strings.TrimSuffix(id, ")")
	}
	panicID := idOf("Probe/Handler_Panic/1", "internal error")
	nestedID := idOf("Probe/Handler_Nested/2", "service unavailable")
	c.Send(&packets.Publish{Topic: "Login/Handler_Login/3", Payload: []byte(`{"userName":"ann","passWord":"x"}`)})
	c.WaitPublish("Login/Handler_Login/3", 5*time.Second)

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var st core.ConsoleState
	found := func(id, kind, handler string) bool {
		for _, e := range st.Processes[0].Errors {
			if e.ID == id && e.Kind == kind && e.Module == "Probe" && e.Handler == handler {
				return true
			}
		}
		return false
	}
	poll(t, "the console lists both ids and one online user", func() bool {
		resp, err := hc.Get("http://" + d.App.AdminAddr().String() + "/console/api/state")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		gates := st.Processes[0].Gates
		return found(panicID, "panic", "Handler_Panic") && found(nestedID, "internal", "Handler_Nested") &&
			len(gates) == 1 && gates[0].Users == 1 && gates[0].Connections == 1
	})
	for _, e := range st.Processes[0].Errors {
		if e.ID == nestedID && !strings.Contains(e.Msg, "SecretBackend") {
			t.Errorf("the operator's console should show what failed further on: %+v", e)
		}
	}
}
