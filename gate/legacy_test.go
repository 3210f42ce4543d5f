package gate_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
)

// TestLegacyMapHandler: a handler of mqant's legacy shape,
// handler(session, msg map) (string, string), called by a real MQTT client
// through the gate, gets the session map PROTOCOL.md describes (Sessionid,
// Serverid, Userid, Settings, IP, Network), and its error text reaches the
// client.
func TestLegacyMapHandler(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.StartWith(t, demotest.Options{Extras: []demotest.Extra{
		{Type: rpctest.Probe_Type, New: rpctest.New},
	}})
	c := mqtttest.Connect(t, d.TCPAddr, "legacy", 0)
	if got := c.Request("Login/Handler_Login/1", `{"userName":"sam","passWord":"x"}`); got != `{"Error":"","Result":"login success sam"}` {
		t.Fatalf("login: %s", got)
	}
	var reply struct {
		Error  string
		Result string
	}
	raw := c.Request("Probe/Handler_Legacy/2", `{"text":"hi"}`)
	if err := json.Unmarshal([]byte(raw), &reply); err != nil || reply.Error != "" {
		t.Fatalf("legacy call: %s (%v)", raw, err)
	}
	var got struct {
		Session map[string]any
		Msg     map[string]any
	}
	if err := json.Unmarshal([]byte(reply.Result), &got); err != nil {
		t.Fatalf("legacy result %q: %v", reply.Result, err)
	}
	s := got.Session
	for _, k := range []string{"Sessionid", "Serverid", "Userid", "Settings", "IP", "Network"} {
		if _, ok := s[k]; !ok {
			t.Errorf("session map %v lacks %s", s, k)
		}
	}
	if id, _ := s["Sessionid"].(string); id == "" {
		t.Errorf("Sessionid %v: want the connection's session id", s["Sessionid"])
	}
	if s["Serverid"] != d.Gate.GetServerID() {
		t.Errorf("Serverid %v, want the gate's id %s", s["Serverid"], d.Gate.GetServerID())
	}
	if s["Userid"] != "sam" {
		t.Errorf("Userid %v, want sam (bound by Login)", s["Userid"])
	}
	if _, ok := s["Settings"].(map[string]any); !ok {
		t.Errorf("Settings %v: want an object", s["Settings"])
	}
	if s["Network"] != "tcp" {
		t.Errorf("Network %v, want tcp", s["Network"])
	}
	if !reflect.DeepEqual(got.Msg, map[string]any{"text": "hi"}) {
		t.Errorf("msg %v, want the request body", got.Msg)
	}

	raw = c.Request("Probe/Handler_Legacy/3", `{"fail":"no such room"}`)
	var failed struct{ Error string }
	if err := json.Unmarshal([]byte(raw), &failed); err != nil || failed.Error != "no such room" {
		t.Errorf("legacy error reply %s: want Error \"no such room\"", raw)
	}
}

// TestLegacyMapNil: every key of the legacy map is present for a call
// without a session, so legacy handlers can index it blindly.
func TestLegacyMapNil(t *testing.T) {
	m := gate.LegacyMap(nil)
	want := map[string]any{"Sessionid": "", "Serverid": "", "Userid": "", "Settings": map[string]any{}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("LegacyMap(nil) = %v, want %v", m, want)
	}
	d := &core.SessionData{SessionID: "s1", ServerID: "g1", UserID: "u1", Network: "ws", RemoteAddr: "1.2.3.4:5", Settings: map[string]string{"room": "a"}}
	m = gate.LegacyMap(d)
	want = map[string]any{"Sessionid": "s1", "Serverid": "g1", "Userid": "u1", "Settings": map[string]any{"room": "a"}, "IP": "1.2.3.4:5", "Network": "ws"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("LegacyMap = %v, want %v", m, want)
	}
	m["Settings"].(map[string]any)["room"] = "b"
	if d.Settings["room"] != "a" {
		t.Error("changing the map changed the session's settings")
	}
}
