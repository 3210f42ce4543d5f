package gate

import (
	"context"

	"github.com/mqantgen/mqantgen/core"
)

// Session is a handler's view of one client connection: a snapshot of the
// gate's session plus the calls that change it. Only the owning gate changes
// the authoritative session; Bind, UnBind and Push send the change there and
// refresh the snapshot from the answer.
type Session struct {
	inv   core.Invoker
	data  *core.SessionData
	owned bool // data is this Session's own copy, safe to change
}

// NewSession wraps session data received with a call. inv carries calls back
// to the owning gate. Generated dispatch calls it.
func NewSession(inv core.Invoker, data *core.SessionData) *Session {
	if data == nil {
		// A call without a session (between modules): session and empty
		// data in one allocation.
		both := &struct {
			s Session
			d core.SessionData
		}{}
		both.s = Session{inv: inv, data: &both.d}
		return &both.s
	}
	return &Session{inv: inv, data: data}
}

// LegacyMap renders session data the way mqant's legacy map handlers
// (PROTOCOL.md, handler(session, msg map) (string, string)) expect: keys
// Sessionid, Serverid, Userid, Settings, IP and Network; every key is
// present, empty for a nil session. Generated dispatch calls it.
func LegacyMap(data *core.SessionData) map[string]any {
	m := map[string]any{"Sessionid": "", "Serverid": "", "Userid": "", "Settings": map[string]any{}}
	if data == nil {
		return m
	}
	settings := make(map[string]any, len(data.Settings))
	for k, v := range data.Settings {
		settings[k] = v
	}
	m["Sessionid"] = data.SessionID
	m["Serverid"] = data.ServerID
	m["Userid"] = data.UserID
	m["Settings"] = settings
	m["IP"] = data.RemoteAddr
	m["Network"] = data.Network
	return m
}

// Data returns a copy of the session's plain data; nil for a nil session.
// It is a copy because in-process the snapshot is the gate's own: changing
// it would change the gate's session behind its back (and race it). Set
// and Push are the way to change settings.
func (s *Session) Data() *core.SessionData {
	if s == nil {
		return nil
	}
	return s.data.Clone()
}

// GetSessionID returns the id the gate gave the connection.
func (s *Session) GetSessionID() string { return s.data.SessionID }

// GetServerID returns the id of the gate instance that owns the connection.
func (s *Session) GetServerID() string { return s.data.ServerID }

// GetUserID returns the bound user id, or "".
func (s *Session) GetUserID() string { return s.data.UserID }

// GetNetwork returns "tcp" or "ws".
func (s *Session) GetNetwork() string { return s.data.Network }

// GetIP returns the client's remote address.
func (s *Session) GetIP() string { return s.data.RemoteAddr }

// IsGuest reports whether no user is bound.
func (s *Session) IsGuest() bool { return s.data.UserID == "" }

// Get returns a setting of the snapshot.
func (s *Session) Get(key string) string { return s.data.Settings[key] }

// Set changes a setting of the snapshot; Push sends the settings to the gate.
func (s *Session) Set(key, value string) {
	if !s.owned {
		// The snapshot may be shared with the gate (in-process): copy on write.
		s.data = s.data.Clone()
		s.owned = true
	}
	if s.data.Settings == nil {
		s.data.Settings = map[string]string{}
	}
	s.data.Settings[key] = value
}

func (s *Session) gate() *GateClient { return NewGateClient(s.inv).To(s.data.ServerID) }

func (s *Session) refresh(d *core.SessionData, err error) error {
	if err != nil {
		return err
	}
	if d != nil {
		s.data, s.owned = d, false
	}
	return nil
}

// Bind binds the session to a user id. A uid bound on another connection is
// unbound and that connection closed (one session per user).
func (s *Session) Bind(ctx context.Context, uid string) error {
	if g := localGate(s.inv, s.data.ServerID); g != nil {
		if err := expired(ctx, Gate_Bind_MethodName); err != nil {
			return err
		}
		return s.refresh(g.Bind(ctx, s.data.SessionID, uid))
	}
	return s.refresh(s.gate().Bind(ctx, s.data.SessionID, uid))
}

// UnBind removes the user id from the session.
func (s *Session) UnBind(ctx context.Context) error {
	if g := localGate(s.inv, s.data.ServerID); g != nil {
		if err := expired(ctx, Gate_UnBind_MethodName); err != nil {
			return err
		}
		return s.refresh(g.UnBind(ctx, s.data.SessionID))
	}
	return s.refresh(s.gate().UnBind(ctx, s.data.SessionID))
}

// Push sends the snapshot's settings to the gate, replacing the session's.
func (s *Session) Push(ctx context.Context) error {
	if g := localGate(s.inv, s.data.ServerID); g != nil {
		if err := expired(ctx, Gate_Push_MethodName); err != nil {
			return err
		}
		return s.refresh(g.Push(ctx, s.data.SessionID, s.data.Settings))
	}
	return s.refresh(s.gate().Push(ctx, s.data.SessionID, s.data.Settings))
}

// Send pushes a message to this client on topic. It does not wait for the
// gate to deliver, but fails when the call cannot be sent. A persistent
// session (clean session 0) whose client is away keeps the push, bounded,
// until the client is back (README, "Persistent sessions"). To a gate in
// the sender's process it is a direct call that queues the push on the
// connection before it returns (no RPC, no goroutine hand-off; behind a
// large Broadcast of this process still being fanned out); to another
// process the gate's RPC server queues pushes in the order they arrive.
// The client gets the pushes of one sender in the order it sent them.
func (s *Session) Send(ctx context.Context, topic string, body []byte) error {
	if g := localGate(s.inv, s.data.ServerID); g != nil {
		g.sendLocal(ctx, s.data.SessionID, topic, body)
		return nil
	}
	return s.gate().SendNR(ctx, s.data.SessionID, topic, body)
}

// Close closes the client's connection.
func (s *Session) Close(ctx context.Context) error {
	if g := localGate(s.inv, s.data.ServerID); g != nil {
		if err := expired(ctx, Gate_Close_MethodName); err != nil {
			return err
		}
		return g.Close(ctx, s.data.SessionID)
	}
	return s.gate().Close(ctx, s.data.SessionID)
}

// Member says where one client is connected: which gate, which session.
type Member struct {
	ServerID  string
	SessionID string
}

// Broadcast sends one message to many clients with one call per gate, not
// one per member. A gate in the sender's process is called directly: up
// to 64 members the message is queued on their connections in the
// sender's goroutine (no RPC, no hand-off); a larger group is handed to
// the gate's fan-out goroutine, so a thousand-member room does not hold up
// the sender, and the sender's later pushes wait behind it (a client gets
// one sender's pushes in order). Another gate gets one no-reply call and
// fans out on its own goroutine.
func Broadcast(ctx context.Context, inv core.Invoker, members []Member, topic string, body []byte) error {
	byGate := map[string][]string{}
	var order []string
	for _, m := range members {
		if _, ok := byGate[m.ServerID]; !ok {
			order = append(order, m.ServerID)
		}
		byGate[m.ServerID] = append(byGate[m.ServerID], m.SessionID)
	}
	var first error
	c := NewGateClient(inv)
	for _, g := range order {
		if lg := localGate(inv, g); lg != nil {
			lg.broadcastLocal(ctx, byGate[g], topic, body)
			continue
		}
		if err := c.To(g).BroadcastNR(ctx, byGate[g], topic, body); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Online reports whether uid is bound to a session on any gate, and where.
// It asks every configured gate instance. A persistent session whose
// client is away counts: it is there until it expires.
func Online(ctx context.Context, app *core.App, uid string) (*core.SessionData, error) {
	c := NewGateClient(app)
	var lastErr error
	for _, id := range app.ServerIDs(Gate_Type) {
		var d *core.SessionData
		var err error
		if g := localGate(app, id); g != nil {
			if err = expired(ctx, Gate_Lookup_MethodName); err == nil {
				d, err = g.Lookup(ctx, uid)
			}
		} else {
			d, err = c.To(id).Lookup(ctx, uid)
		}
		if err != nil {
			lastErr = err
			continue
		}
		if d != nil {
			return d, nil
		}
	}
	return nil, lastErr
}
