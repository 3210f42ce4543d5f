package gate

import (
	"context"
	"errors"
	"time"

	"github.com/mqantgen/mqantgen/core"
)

// Moving a persistent session between gates. A client that comes back with
// clean session 0 to a gate that has no session of its client id asks the
// other gates for it (TakeSession); the one that has it hands it over,
// state and queued pushes, and forgets it: one owner at a time. The old
// gate keeps a forwarding entry, so pushes modules still address to it (a
// chat room remembers where each member was) reach the new owner.

// Handoff is a persistent session on its way to another gate.
type Handoff struct {
	Session  core.SessionData
	Username string // of the CONNECT that created the session
	Cred     []byte // its credHash: what a taker must match, never the password
	Anon     bool   // that CONNECT had no username and no password
	Msgs     []HandoffMsg
	Dropped  int64 // pushes dropped that the client has not heard of yet
	NextPID  uint16
	QoS2     []uint16 // ids of QoS 2 PUBLISHes from the client awaiting PUBREL
}

// HandoffMsg is one kept push of a Handoff.
type HandoffMsg struct {
	Topic string
	Body  []byte
	Age   int64 // nanoseconds since it was queued (clocks of gates may differ)
	PID   uint16
	Dup   bool
}

// movedTTL is how long a gate forwards pushes for a session that moved
// away (or until the session id comes back here).
const movedTTL = 24 * time.Hour

type moved struct {
	to    string
	until time.Time
}

// errCredentials is the answer to a taker whose credentials are not those
// of the session.
var errCredentials = errors.New("the session of this client id belongs to other credentials")

// fetchSession asks the other gates for the persistent session of
// clientID, when this gate has none. It returns nil when nobody has it
// (or nobody answered in time: the client then starts a new session).
func (g *Gate) fetchSession(clientID, username string, cred [32]byte) (*Handoff, error) {
	others := g.otherGates()
	if len(others) == 0 {
		return nil, nil
	}
	g.mu.Lock()
	local := g.byClientID[clientID]
	g.mu.Unlock()
	if local != nil && local.ps != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(g.ctx, min(g.rpcTimeout, 3*time.Second))
	defer cancel()
	type answer struct {
		from string
		h    *Handoff
		err  error
	}
	answers := make(chan answer, len(others))
	client := NewGateClient(g.App)
	for _, id := range others {
		go func() {
			h, err := client.To(id).TakeSession(ctx, clientID, username, cred[:], g.Settings.ID)
			answers <- answer{id, h, err}
		}()
	}
	var got *Handoff
	var refused error
	for range others {
		a := <-answers
		switch {
		case a.err != nil && errors.Is(a.err, core.ErrBadRequest):
			refused = a.err
		case a.err != nil:
			g.log.Debug("asking a gate for a session failed", "gate", a.from, "clientId", clip(clientID), "err", a.err)
		case a.h != nil && got == nil:
			got = a.h
			g.log.Info("persistent session taken over from another gate", "gate", a.from, "clientId", clip(clientID),
				"session", a.h.Session.SessionID, "queued", len(a.h.Msgs))
		case a.h != nil:
			// Its old gate forgot it: end it, so modules hear of it.
			g.log.Error("two gates handed over a session of one client id; keeping the first, ending the other", "gate", a.from,
				"clientId", clip(clientID), "session", a.h.Session.SessionID)
			g.notifier.sessionClosed(a.h.Session.Clone())
		}
	}
	if got == nil && refused != nil {
		return nil, errCredentials
	}
	return got, nil
}

func (g *Gate) otherGates() []string {
	var out []string
	for _, id := range g.App.ServerIDs(Gate_Type) {
		if id != g.Settings.ID {
			out = append(out, id)
		}
	}
	return out
}

// TakeSession hands this gate's persistent session of clientID to gate
// to, when cred (or, with an auth hook, username) matches the CONNECT
// that created it, and forgets it: its connection, if any, is closed and
// its pushes are forwarded to the new owner. It returns nil when this
// gate has no such session.
//
//mqant:rpc
func (g *Gate) TakeSession(ctx context.Context, clientID, username string, cred []byte, to string) (*Handoff, error) {
	var c32 [32]byte
	copy(c32[:], cred)
	g.mu.Lock()
	c := g.byClientID[clientID]
	if c == nil || c.ps == nil || c.ps.ended.Load() || ctx.Err() != nil {
		// (An asker that gave up would never get the session: keep it.)
		g.mu.Unlock()
		return nil, nil
	}
	if len(cred) != len(c32) || !c.ps.mayResume(username, c32, c.session().UserID) {
		g.mu.Unlock()
		g.log.Warn("session takeover by another gate refused: other credentials", "clientId", clip(clientID), "gate", to)
		return nil, core.Errorf(core.ErrBadRequest, "take session: %v", errCredentials)
	}
	g.forget(c)
	g.setMoved(c.sessionID, to)
	h := c.ps.handoff(c.session())
	g.mu.Unlock()
	g.stats.sessMovedAway.Add(1)
	c.close("session moved to gate " + to)
	return h, nil
}

// handoff empties the session into a Handoff; the session is dead here.
func (s *psession) handoff(d *core.SessionData) *Handoff {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	h := &Handoff{Session: *d.Clone(), Username: s.username, Cred: append([]byte(nil), s.cred[:]...), Anon: s.anon,
		Dropped: s.dropped, NextPID: s.nextPID, Msgs: make([]HandoffMsg, len(s.msgs))}
	for i, m := range s.msgs {
		h.Msgs[i] = HandoffMsg{Topic: m.topic, Body: m.body, Age: now - m.at, PID: m.pid, Dup: m.dup}
	}
	for id := range s.qos2 {
		h.QoS2 = append(h.QoS2, id)
	}
	s.msgs, s.bytes, s.sent, s.live = nil, 0, 0, nil
	s.ended.Store(true)
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	return h
}

// psession rebuilds the handed-over session on this gate.
func (h *Handoff) psession(g *Gate, clientID string) *psession {
	s := &psession{g: g, sessionID: h.Session.SessionID, clientID: clientID, username: h.Username, anon: h.Anon,
		nextPID: h.NextPID, dropped: h.Dropped, msgs: make([]pmsg, len(h.Msgs))}
	copy(s.cred[:], h.Cred)
	now := time.Now().UnixNano()
	for i, m := range h.Msgs {
		s.msgs[i] = pmsg{topic: m.Topic, body: m.Body, at: now - m.Age, pid: m.PID, dup: m.Dup}
		s.bytes += s.msgs[i].cost()
	}
	for _, id := range h.QoS2 {
		if s.qos2 == nil {
			s.qos2 = map[uint16]struct{}{}
		}
		s.qos2[id] = struct{}{}
	}
	return s
}

// setMoved records where a session went. Under g.mu.
func (g *Gate) setMoved(sessionID, to string) {
	now := time.Now()
	if g.moved == nil {
		g.moved = map[string]moved{}
	}
	g.moved[sessionID] = moved{to: to, until: now.Add(movedTTL)}
	if g.movedAdds++; g.movedAdds%1024 == 0 {
		for id, m := range g.moved {
			if now.After(m.until) {
				delete(g.moved, id)
			}
		}
	}
}

// movedTo returns the gate a session moved to, or "".
func (g *Gate) movedTo(sessionID string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.moved[sessionID]
	if !ok || time.Now().After(m.until) {
		return ""
	}
	return m.to
}

// forwardBroadcast sends the members of a broadcast that moved away on to
// their gates, one call per gate; it returns how many it forwarded.
func (g *Gate) forwardBroadcast(ctx context.Context, ids []string, topic string, body []byte) int {
	byGate := map[string][]string{}
	g.mu.Lock()
	now := time.Now()
	for _, id := range ids {
		if m, ok := g.moved[id]; ok && now.Before(m.until) {
			byGate[m.to] = append(byGate[m.to], id)
		}
	}
	g.mu.Unlock()
	n := 0
	client := NewGateClient(g.App)
	for to, members := range byGate {
		if err := client.To(to).BroadcastNR(ctx, members, topic, body); err != nil {
			g.log.Debug("forwarding a broadcast to a session's new gate failed", "gate", to, "err", err)
			continue
		}
		n += len(members)
	}
	return n
}
