package gate_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// The auth hook of README.md ("Authenticating players"), verbatim: the
// game's login service hands a player a token (expiry and HMAC-SHA256 of
// user id and expiry under a secret only the servers know); the client
// connects with the user id as MQTT username and the token as password.

// signToken is what the login service runs.
func signToken(secret []byte, uid string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(uid + "." + exp))
	return exp + "." + hex.EncodeToString(mac.Sum(nil))
}

// tokenAuth is the gate's hook: gate.New(gate.WithAuth(tokenAuth(secret))).
func tokenAuth(secret []byte) gate.AuthFunc {
	return func(ctx context.Context, in gate.AuthInfo) byte {
		exp, sig, ok := strings.Cut(string(in.Password), ".")
		unix, err := strconv.ParseInt(exp, 10, 64)
		if !ok || err != nil || in.Username == "" {
			return packets.BadUsernameOrPassword
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(in.Username + "." + exp))
		if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(mac.Sum(nil)))) {
			return packets.BadUsernameOrPassword
		}
		if time.Now().Unix() > unix {
			return packets.NotAuthorized // expired: log in again
		}
		return packets.Accepted
	}
}

func TestTokenAuthHook(t *testing.T) {
	leakcheck.Check(t)
	secret := []byte("test-secret-never-logged")
	d := demotest.StartWith(t, demotest.Options{GateOpts: []gate.Option{gate.WithAuth(tokenAuth(secret))}})
	connect := func(user, password string) byte {
		c := mqtttest.Dial(t, d.TCPAddr)
		c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 30,
			ClientID: "c-" + user, UsernameFlag: true, Username: user, PasswordFlag: true, Password: []byte(password)})
		ack, ok := c.Next(5 * time.Second).(*packets.Connack)
		if !ok {
			t.Fatalf("%s: no CONNACK", user)
		}
		return ack.ReturnCode
	}
	good := signToken(secret, "alice", time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name, user, password string
		want                 byte
	}{
		{"valid token", "alice", good, packets.Accepted},
		{"token of another user", "mallory", good, packets.BadUsernameOrPassword},
		{"forged signature", "alice", strings.Split(good, ".")[0] + "." + strings.Repeat("0", 64), packets.BadUsernameOrPassword},
		{"other secret", "alice", signToken([]byte("other"), "alice", time.Now().Add(time.Hour)), packets.BadUsernameOrPassword},
		{"expired", "alice", signToken(secret, "alice", time.Now().Add(-time.Minute)), packets.NotAuthorized},
		{"no password", "alice", "", packets.BadUsernameOrPassword},
	} {
		if got := connect(tc.user, tc.password); got != tc.want {
			t.Errorf("%s: CONNACK %d, want %d", tc.name, got, tc.want)
		}
	}
	if s := d.Gate.Stats(); s.Refused != 5 {
		t.Errorf("Refused = %d, want 5", s.Refused)
	}
	// Neither the secret nor any token reaches the log.
	logs := d.Logs.String()
	if strings.Contains(logs, string(secret)) || strings.Contains(logs, strings.Split(good, ".")[1]) {
		t.Error("the log carries the secret or a token")
	}
}

// TestClientIDOfAnotherUserRefused: with an auth hook, a client id in use
// can be taken over by the same user (a reconnect) but not by another
// authenticated user, who gets CONNACK 2 instead of kicking the owner.
func TestClientIDOfAnotherUserRefused(t *testing.T) {
	leakcheck.Check(t)
	secret := []byte("s")
	d := demotest.StartWith(t, demotest.Options{GateOpts: []gate.Option{gate.WithAuth(tokenAuth(secret))}})
	connect := func(user string) (*mqtttest.Client, byte) {
		c := mqtttest.Dial(t, d.TCPAddr)
		c.Send(&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 30, ClientID: "phone-1",
			UsernameFlag: true, Username: user, PasswordFlag: true, Password: []byte(signToken(secret, user, time.Now().Add(time.Hour)))})
		ack, ok := c.Next(5 * time.Second).(*packets.Connack)
		if !ok {
			t.Fatalf("%s: no CONNACK", user)
		}
		return c, ack.ReturnCode
	}
	alice, code := connect("alice")
	if code != packets.Accepted {
		t.Fatalf("alice: CONNACK %d", code)
	}
	if _, code := connect("mallory"); code != packets.IdentifierRejected {
		t.Fatalf("mallory with alice's client id: CONNACK %d, want %d", code, packets.IdentifierRejected)
	}
	if got := alice.Request("Login/Handler_Login/1", `{"userName":"alice","passWord":"x"}`); !strings.Contains(got, "login success") {
		t.Fatalf("alice after mallory's attempt: %s", got)
	}
	if _, code := connect("alice"); code != packets.Accepted {
		t.Fatalf("alice reconnecting: CONNACK %d", code)
	}
	if !alice.WaitClosed(5 * time.Second) {
		t.Fatal("alice's older connection not closed by her own reconnect [MQTT-3.1.4-2]")
	}
}
