package loadgen

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Mode is what the connections do.
type Mode string

// The modes.
const (
	// ModeRR sends requests with msgids and waits for the reply on the same
	// topic, as the gate answers.
	ModeRR Mode = "rr"
	// ModeRT subscribes each connection to a topic of its own and publishes
	// to it: a broker round trip, which any MQTT broker serves.
	ModeRT Mode = "rt"
	// ModeIdle opens the connections and holds them.
	ModeIdle Mode = "idle"
	// ModeBroadcast puts the connections in one chat room; one more
	// connection says in it and the members' receipts are timed.
	ModeBroadcast Mode = "broadcast"
	// ModeChat is many small rooms: every connection logs in, joins a room
	// of RoomSize members and says in it at its share of Rate, and every
	// member's receipt of every say is timed. What a chat server lives
	// with, for soak runs.
	ModeChat Mode = "chat"
)

// Config is one run. Payload, Room and the login's user name may contain
// {conn} (the connection's index), {user} (its user name) and {room} (its
// room), expanded once per connection.
type Config struct {
	Mode Mode
	URL  string // tcp://host:port or ws://host:port/path
	// Conns is the number of connections (broadcast: room members, the
	// sender comes on top).
	Conns int

	// Topic: rr, the request topic Module/Handler_X (the msgid is appended
	// as the third level); rt, a topic prefix (each connection uses
	// prefix/<conn>/<msgid>). Payload is the request body.
	Topic   string
	Payload string

	// Login sends Login/Handler_Login with user name User (default
	// "bench-<run>-{conn}") before anything else.
	Login bool
	User  string
	// Room, when set, is joined with Chat/Handler_JoinChat after the login.
	// Broadcast mode always logs in and joins; its room defaults to
	// "bench-<run>". Chat: the rooms' name prefix (default "chat-<run>"),
	// room n being <prefix>-<n>.
	Room string
	// RoomSize is the members per room in chat mode (default 10).
	RoomSize int

	// Rate is the total requests per second over all connections
	// (broadcast: says per second); 0 sends as fast as Inflight allows.
	Rate float64
	// Inflight bounds the requests outstanding per connection. 0 means 1
	// without Rate, 32 with it.
	Inflight int

	Duration time.Duration // measured time
	Warmup   time.Duration // load before the measured time, not counted
	// Timeout is how long a request may go unanswered before it counts as
	// a timeout (default 5s).
	Timeout time.Duration
	// ConnectTimeout bounds the set-up of one connection: CONNECT,
	// SUBSCRIBE, login and join (default 10s).
	ConnectTimeout time.Duration
	// KeepAlive is sent in CONNECT; the tool pings at half of it (default
	// 60s; 0 disables keep-alive).
	KeepAlive time.Duration

	// Sources is the number of loopback source addresses (127.0.0.1,
	// 127.0.0.2, ...) to spread connections over; 0 picks enough for
	// Conns when the target is loopback.
	Sources int
	// Dialers is the number of connections set up at once (default 64).
	Dialers int
	// PID is the target process whose resident memory is reported (0: none).
	PID int

	// Progress receives one line per second; nil for none.
	Progress io.Writer
	// OnLoad, when set, is called once every connection is set up, as the
	// load (warm-up first) begins: a sampler tells set-up from load.
	OnLoad func()
	// OnWindow, when set, is called as the measured time begins (true) and
	// as it ends (false), on the run's goroutine while the load goes on: a
	// reader of a server's counters gets exactly the measured time. Keep it
	// quick: the load goes on while it runs, and the end is marked late
	// when the start's call outlasts the window. A run cancelled before its
	// window begins calls neither.
	OnWindow func(start bool)
}

// DefaultConfig returns the defaults of every field.
func DefaultConfig() Config {
	return Config{Mode: ModeRR, URL: "tcp://127.0.0.1:3563", Conns: 10, Duration: 10 * time.Second,
		Warmup: time.Second, Timeout: 5 * time.Second, ConnectTimeout: 10 * time.Second,
		KeepAlive: 60 * time.Second, Dialers: 64}
}

// Default requests of each mode, used when Topic or Payload is empty. rr's
// default logs the connection's own user in again and again: a handler of
// the chat demo that answers without any set-up.
const (
	defaultRRTopic   = "Login/Handler_Login"
	defaultRRPayload = `{"userName":"{user}","passWord":"x"}`
	defaultRTTopic   = "mqantbench"
	defaultRTPayload = `{"roomName":"lobby","say":"hello, this is a 64-byte message......."}`
)

// Topics and message shapes of the chat demo (PROTOCOL.md).
const (
	loginTopic = "Login/Handler_Login"
	joinTopic  = "Chat/Handler_JoinChat"
	sayTopic   = "Chat/Handler_Say"
	onSayTopic = "Chat/OnSay"
)

// normalise fills in defaults and checks the config.
func (c *Config) normalise(run string) error {
	var errs []error
	switch c.Mode {
	case ModeRR, ModeRT, ModeIdle, ModeBroadcast, ModeChat:
	case "":
		c.Mode = ModeRR
	default:
		errs = append(errs, fmt.Errorf("-mode %q: want rr, rt, idle, broadcast or chat", c.Mode))
	}
	if c.Conns <= 0 {
		errs = append(errs, fmt.Errorf("-conns %d: want at least 1", c.Conns))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration %v: want more than 0", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("-warmup %v: want 0 or more", c.Warmup))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("-rate %v: want 0 (as fast as -inflight allows) or more", c.Rate))
	}
	if c.Inflight < 0 || c.Inflight > 1<<16 {
		errs = append(errs, fmt.Errorf("-inflight %d: want 0 to 65536", c.Inflight))
	}
	if c.Sources < 0 {
		errs = append(errs, fmt.Errorf("-sources %d: want 0 (automatic) or more", c.Sources))
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second {
		errs = append(errs, fmt.Errorf("-keepalive %v: want 0 to 65535s", c.KeepAlive))
	}
	if c.Dialers <= 0 {
		c.Dialers = 64
	}
	if c.Inflight == 0 {
		c.Inflight = 1
		if c.Rate > 0 {
			c.Inflight = 32
		}
	}
	if c.User == "" {
		c.User = "bench-" + run + "-{conn}"
	}
	switch c.Mode {
	case ModeRR:
		if c.Topic == "" {
			c.Topic = defaultRRTopic
		}
		if c.Payload == "" {
			c.Payload = defaultRRPayload
		}
		if n := strings.Count(c.Topic, "/"); n != 1 || strings.ContainsAny(c.Topic, "+#") {
			errs = append(errs, fmt.Errorf("-topic %q: want Module/Handler_X (the msgid is added as the third level)", c.Topic))
		}
	case ModeRT:
		if c.Topic == "" {
			c.Topic = defaultRTTopic
		}
		if c.Payload == "" {
			c.Payload = defaultRTPayload
		}
		if strings.ContainsAny(c.Topic, "+#") || strings.HasSuffix(c.Topic, "/") {
			errs = append(errs, fmt.Errorf("-topic %q: want a topic prefix without wildcards or a trailing /", c.Topic))
		}
	case ModeBroadcast:
		c.Login = true
		if c.Room == "" {
			c.Room = "bench-" + run
		}
		if strings.Contains(c.Room, "{") {
			errs = append(errs, fmt.Errorf("-room %q: broadcast puts every member in one room, so no placeholders", c.Room))
		}
	case ModeChat:
		c.Login = true
		if c.Room == "" {
			c.Room = "chat-" + run
		}
		if strings.Contains(c.Room, "{") {
			errs = append(errs, fmt.Errorf("-room %q: chat numbers the rooms itself, so no placeholders", c.Room))
		}
		if c.RoomSize == 0 {
			c.RoomSize = 10
		}
		if c.RoomSize < 0 {
			errs = append(errs, fmt.Errorf("-room-size %d: want at least 1", c.RoomSize))
		}
	}
	return errors.Join(errs...)
}

// expand replaces {conn}, {user} and {room} in s.
func expand(s string, conn int, user, room string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return strings.NewReplacer("{conn}", strconv.Itoa(conn), "{user}", user, "{room}", room).Replace(s)
}
