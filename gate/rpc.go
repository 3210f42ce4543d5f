package gate

import (
	"context"
	"errors"
	"fmt"

	"github.com/mqantgen/mqantgen/core"
)

// The gate's RPC surface: what modules call, through Session and
// Broadcast, to change a session or reach a client. Clients can never call
// these (they are not Handler_ methods).

// Bind binds a session to a user id. With SingleSession (the default) an
// older session of the same user, on this gate or another, is unbound and
// closed. Only a live connection takes a user over: a connection that has
// closed (its last calls still finishing, such as a login sent just before
// DISCONNECT) may still bind a user nobody holds, but never unbinds or
// kicks a newer session.
//
//mqant:rpc
func (g *Gate) Bind(ctx context.Context, sessionID, uid string) (*core.SessionData, error) {
	if uid == "" {
		return nil, errors.New("bind: empty user id")
	}
	g.mu.Lock() // one lookup, under the lock that binds (a resumed session's is its new connection)
	c := g.byID[sessionID]
	if c == nil {
		g.mu.Unlock()
		return nil, core.Errorf(core.ErrNotFound, "session %s not found on %s", sessionID, g.Settings.ID)
	}
	live := !c.closed.Load()
	old := g.byUID[uid]
	if !live && old != nil && old != c {
		g.mu.Unlock()
		g.log.Info("late bind of a closed session refused: the user is on a live one", "session", sessionID,
			"uid", clip(uid), "live", old.sessionID)
		return nil, core.Errorf(core.ErrNotFound, "session %s on %s is closed", sessionID, g.Settings.ID)
	}
	prev := c.session().UserID
	if prev != "" && prev != uid && g.byUID[prev] == c {
		delete(g.byUID, prev)
	}
	g.byUID[uid] = c
	d := c.update(func(s *core.SessionData) { s.UserID = uid })
	g.mu.Unlock()
	if g.cfg.singleSession && live {
		if old != nil && old != c {
			// Closed with its user id still set, so the modules that hear
			// of the close (Chat's OnLeave) know who left.
			g.end(old, "user "+clip(uid)+" logged in on another connection")
		}
		g.kickElsewhere(ctx, uid, sessionID)
	}
	return d, nil
}

// kickElsewhere asks every other gate to drop uid's sessions.
func (g *Gate) kickElsewhere(ctx context.Context, uid, keep string) {
	// App.ServerIDs without its slice, and a client made only when there
	// is another gate: a Login on a single gate allocates neither.
	var client *GateClient
	for _, m := range g.App.Config().Modules {
		id := m.ID
		if m.Type != Gate_Type || id == g.Settings.ID {
			continue
		}
		if client == nil {
			client = NewGateClient(g.App)
		}
		if err := client.To(id).KickNR(ctx, uid, keep); err != nil {
			g.log.Debug("kick on other gate failed", "gate", id, "err", err)
		}
	}
}

// Kick closes this gate's session of uid unless it is keep.
//
//mqant:rpc
func (g *Gate) Kick(ctx context.Context, uid, keep string) error {
	g.mu.Lock()
	c := g.byUID[uid]
	if c != nil && c.sessionID != keep {
		delete(g.byUID, uid)
	} else {
		c = nil
	}
	g.mu.Unlock()
	if c != nil {
		g.end(c, "user "+clip(uid)+" logged in on another gate")
	}
	return nil
}

// UnBind removes the user id from a session.
//
//mqant:rpc
func (g *Gate) UnBind(ctx context.Context, sessionID string) (*core.SessionData, error) {
	g.mu.Lock()
	c := g.byID[sessionID]
	if c == nil {
		g.mu.Unlock()
		return nil, core.Errorf(core.ErrNotFound, "session %s not found on %s", sessionID, g.Settings.ID)
	}
	if uid := c.session().UserID; uid != "" && g.byUID[uid] == c {
		delete(g.byUID, uid)
	}
	d := c.update(func(s *core.SessionData) { s.UserID = "" })
	g.mu.Unlock()
	return d, nil
}

// Push replaces a session's settings.
//
//mqant:rpc
func (g *Gate) Push(ctx context.Context, sessionID string, settings map[string]string) (*core.SessionData, error) {
	c, err := g.conn(sessionID)
	if err != nil {
		return nil, err
	}
	for {
		d := c.update(func(s *core.SessionData) {
			s.Settings = make(map[string]string, len(settings))
			for k, v := range settings {
				s.Settings[k] = v
			}
		})
		// A resume (register, under g.mu) copies the session to its new
		// connection: one that copied before this update gets it too.
		g.mu.Lock()
		cur := g.byID[sessionID]
		g.mu.Unlock()
		if cur == nil || cur == c {
			return d, nil
		}
		c = cur
	}
}

// Send queues a message to one client. Sends and Broadcasts run on the
// gate's single goroutine, so a client receives pushes in the order the
// modules sent them. A topic no MQTT client could receive is refused
// (ErrInvalidTopic).
//
//mqant:rpc
//mqant:sync
func (g *Gate) Send(ctx context.Context, sessionID, topic string, body []byte) error {
	if err := checkPushTopic(topic); err != nil {
		g.stats.pushRefused.Add(1)
		g.log.Warn("push refused", "session", sessionID, "err", err)
		return core.Errorf(core.ErrBadRequest, "send: %v", err)
	}
	c, err := g.conn(sessionID)
	if err != nil {
		if to := g.movedTo(sessionID); to != "" {
			return NewGateClient(g.App).To(to).SendNR(ctx, sessionID, topic, body)
		}
		g.stats.pushUndelivered.Add(1)
		return err
	}
	if !c.publish(topic, body) {
		g.stats.pushUndelivered.Add(1)
		return fmt.Errorf("session %s: connection closed", sessionID)
	}
	return nil
}

// Broadcast queues one message to many of this gate's clients and returns
// how many it reached. Sessions gone meanwhile are skipped and counted.
//
//mqant:rpc
//mqant:sync
//mqant:noreply
func (g *Gate) Broadcast(ctx context.Context, sessionIDs []string, topic string, body []byte) (int, error) {
	g.stats.broadcastCalls.Add(1)
	if err := checkPushTopic(topic); err != nil {
		g.stats.pushRefused.Add(1)
		g.log.Warn("broadcast refused", "members", len(sessionIDs), "err", err)
		return 0, core.Errorf(core.ErrBadRequest, "broadcast: %v", err)
	}
	conns := make([]*conn, 0, len(sessionIDs))
	g.mu.Lock()
	for _, id := range sessionIDs {
		if c := g.byID[id]; c != nil {
			conns = append(conns, c)
		}
	}
	forward := len(conns) < len(sessionIDs) && len(g.moved) > 0
	g.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.publish(topic, body) {
			n++
		}
	}
	if forward {
		n += g.forwardBroadcast(ctx, sessionIDs, topic, body)
	}
	if missed := len(sessionIDs) - n; missed > 0 {
		g.stats.pushUndelivered.Add(int64(missed))
	}
	return n, nil
}

// Close closes a client's connection.
//
//mqant:rpc
func (g *Gate) Close(ctx context.Context, sessionID string) error {
	c, err := g.conn(sessionID)
	if err != nil {
		return err
	}
	g.end(c, "closed by a module")
	return nil
}

// Lookup returns the session uid is bound to on this gate, or nil.
//
//mqant:rpc
func (g *Gate) Lookup(ctx context.Context, uid string) (*core.SessionData, error) {
	g.mu.Lock()
	c := g.byUID[uid]
	g.mu.Unlock()
	if c == nil {
		return nil, nil
	}
	return c.session().Clone(), nil
}
