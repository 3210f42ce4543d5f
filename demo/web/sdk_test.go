package web_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mqantgen/mqantgen/demo/demotest"
)

// sdkScript drives the demo with the generated JavaScript client alone, in
// the page (for its origin and the MQTT.js it loads): two connections log in,
// join a room and talk; a typed push arrives; the server's errors reject
// promises with their exact text. SERVER is replaced by the gate's address.
const sdkScript = `(async () => {
  const { LoginClient } = await import('/mqant/generated/js/login.js');
  const { ChatClient } = await import('/mqant/generated/js/chat.js');
  const { MqantClient, MqantError } = await import('/mqant/generated/js/mqant.js');
  const connect = (id) => new Promise((resolve, reject) => {
    const c = mqtt.connect(SERVER, { protocolVersion: 4, clientId: id, reconnectPeriod: 0 });
    c.on('connect', () => resolve(c));
    c.on('error', reject);
  });
  const failure = async (promise) => {
    try {
      await promise;
      return { resolved: true };
    } catch (e) {
      return { isMqantError: e instanceof MqantError, code: e.code, serverCode: e.serverCode, message: e.message, topic: e.topic };
    }
  };
  const until = async (cond) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  const a = await connect('sdk-alice-conn');
  const b = await connect('sdk-bob-conn');
  const aLogin = new LoginClient(a), aChat = new ChatClient(a, { timeout: 5000 });
  const bLogin = new LoginClient(b), bChat = new ChatClient(b);
  const out = {};
  out.notLogined = await failure(bChat.joinChat({ roomName: 'sdk' }));
  out.missing = await failure(aLogin.login({ userName: 'sdk-alice', passWord: '' }));
  out.login = await aLogin.login({ userName: 'sdk-alice', passWord: 'x' });
  await bLogin.login({ userName: 'sdk-bob', passWord: 'y' });
  const joins = [];
  aChat.onJoin((m) => joins.push(m));
  const heard = new Promise((resolve) => bChat.onSay(resolve));
  out.join = await aChat.joinChat({ roomName: 'sdk' });
  await bChat.joinChat({ roomName: 'sdk' });
  out.say = await aChat.say({ roomName: 'sdk', say: 'typed hello' });
  out.push = await heard;
  await until(() => joins.length >= 2);
  out.joins = joins;
  out.noRoom = await failure(aChat.say({ roomName: 'nowhere', say: 'x' }));
  out.noHandler = await failure(aChat.core.request('Chat/Handler_Nope', {}));
  out.sharedCore = aLogin.core === aChat.core && aChat.core instanceof MqantClient;
  out.pending = aChat.core.pending + bChat.core.pending;
  a.end(true);
  b.end(true);
  return out;
})()`

type sdkFailure struct {
	Resolved     bool   `json:"resolved"`
	IsMqantError bool   `json:"isMqantError"`
	Code         string `json:"code"`
	ServerCode   string `json:"serverCode"`
	Message      string `json:"message"`
	Topic        string `json:"topic"`
}

// TestGeneratedClientInBrowser runs the demo through the generated
// JavaScript client in headless Chromium: login, join, say, a typed push
// received, and server errors as rejected promises.
func TestGeneratedClientInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): install the chromium package (apt-get install -y chromium)", chromiumPath, err)
	}
	d := demotest.Start(t, nil)
	browser := startBrowser(t)
	p := browser.open(t, "sdk", d.WebURL)

	script := strings.Replace(sdkScript, "SERVER", `"ws://`+d.WSAddr+`/mqtt"`, 1)
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("SDK script: %v", err)
	}
	var got struct {
		NotLogined, Missing, NoRoom, NoHandler sdkFailure
		Login, Join, Say                       string
		Push                                   map[string]any
		Joins                                  []map[string]any
		SharedCore                             bool
		Pending                                int
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	t.Logf("SDK script result: %s", raw)

	for _, f := range []struct {
		name  string
		got   sdkFailure
		topic string
		text  string
		code  string // the server's
	}{
		{"join before login", got.NotLogined, "Chat/Handler_JoinChat/", "Not Logined", "error"},
		{"login without password", got.Missing, "Login/Handler_Login/", "userName or passWord cannot be nil", "error"},
		{"say in no room", got.NoRoom, "Chat/Handler_Say/", "No room", "error"},
		{"no such handler", got.NoHandler, "Chat/Handler_Nope/", "Remote function(Handler_Nope) not found", "not_found"},
	} {
		want := sdkFailure{IsMqantError: true, Code: "remote", ServerCode: f.code, Message: f.text}
		topic := f.got.Topic
		f.got.Topic = ""
		if f.got != want || !strings.HasPrefix(topic, f.topic) {
			t.Errorf("%s: rejected with %+v on %q, want %+v on %s<msgid>", f.name, f.got, topic, want, f.topic)
		}
	}
	if got.Login != "login success sdk-alice" || got.Join != "join success" || got.Say != "say success" {
		t.Errorf("replies: login %q, join %q, say %q", got.Login, got.Join, got.Say)
	}
	wantPush := map[string]any{"roomName": "sdk", "say": "typed hello", "userName": "sdk-alice"}
	if !mapsEqual(got.Push, wantPush) {
		t.Errorf("OnSay push = %v, want %v", got.Push, wantPush)
	}
	if len(got.Joins) != 2 || got.Joins[0]["userName"] != "sdk-alice" || got.Joins[1]["userName"] != "sdk-bob" {
		t.Errorf("OnJoin pushes = %v, want sdk-alice then sdk-bob", got.Joins)
	}
	if !got.SharedCore || got.Pending != 0 {
		t.Errorf("shared core %v, calls still pending %d", got.SharedCore, got.Pending)
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
