package gate

import (
	"strconv"

	"github.com/mqantgen/mqantgen/gate/packets"

	"github.com/mqantgen/mqantgen/runtime"
)

// The registry: the gate's connections by session id, by MQTT client id
// and by bound user id, all under Gate.mu.

// newSessionID returns an id unique to this gate and this run: the gate's
// id, a random prefix drawn at start (a restarted gate never reuses an id
// a module may still hold) and a counter.
func (g *Gate) newSessionID() string {
	return g.Settings.ID + "#" + g.idPrefix + strconv.FormatUint(g.nextID.Add(1), 36)
}

// register adds a connection after its CONNECT was accepted. A client id
// already connected here closes the older connection [MQTT-3.1.4-2],
// unless an auth hook vouched for the older one as another user: then
// the newcomer is refused, so knowing a player's client id is not enough
// to disconnect them. It returns 0, or the CONNACK code of the refusal.
func (g *Gate) register(c *conn) byte {
	g.mu.Lock()
	if g.closing.Load() {
		g.mu.Unlock()
		return packets.ServerUnavailable
	}
	old := g.byClientID[c.clientID]
	if old != nil && g.auth != nil && old.username != c.username {
		g.mu.Unlock()
		return packets.IdentifierRejected
	}
	delete(g.connecting, c)
	g.byID[c.sessionID] = c
	g.byClientID[c.clientID] = c
	g.mu.Unlock()
	g.stats.connections.Add(1)
	g.stats.byListener[c.listener].Add(1)
	if old != nil {
		g.log.Info("client id taken over by a new connection", "clientId", clip(c.clientID), "old", old.remote, "new", c.remote)
		old.close("client id taken over [MQTT-3.1.4-2]")
	}
	return packets.Accepted
}

// doneConnecting forgets a socket that never got past CONNECT.
func (g *Gate) doneConnecting(c *conn) {
	g.mu.Lock()
	delete(g.connecting, c)
	g.mu.Unlock()
}

// unregister removes a closed connection and tells the modules that asked.
func (g *Gate) unregister(c *conn) {
	g.mu.Lock()
	if g.byID[c.sessionID] != c {
		g.mu.Unlock()
		return
	}
	delete(g.byID, c.sessionID)
	if g.byClientID[c.clientID] == c {
		delete(g.byClientID, c.clientID)
	}
	sess := c.session()
	if sess.UserID != "" && g.byUID[sess.UserID] == c {
		delete(g.byUID, sess.UserID)
	}
	g.mu.Unlock()
	g.stats.connections.Add(-1)
	g.stats.byListener[c.listener].Add(-1)
	g.notifier.sessionClosed(sess)
}

// conn returns the connection of a session.
func (g *Gate) conn(sessionID string) (*conn, error) {
	g.mu.Lock()
	c := g.byID[sessionID]
	g.mu.Unlock()
	if c == nil {
		return nil, runtime.Errorf(runtime.ErrNotFound, "session %s not found on %s", sessionID, g.Settings.ID)
	}
	return c, nil
}

// connections returns every registered connection.
func (g *Gate) connections() []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*conn, 0, len(g.byID))
	for _, c := range g.byID {
		out = append(out, c)
	}
	return out
}
