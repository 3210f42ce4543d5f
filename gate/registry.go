package gate

import (
	"strconv"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"

	"github.com/mqantgen/mqantgen/core"
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
// to disconnect them. A persistent session of the client id (connected or
// away) is resumed with clean session 0 and discarded with clean session
// 1, either only with the credentials that created it (psession.mayResume);
// h is a session handed over by another gate. It returns 0 and whether a
// session was resumed, or the CONNACK code of the refusal.
func (g *Gate) register(c *conn, clean bool, cred [32]byte, h *Handoff) (byte, bool) {
	usedH := false
	defer func() {
		if h != nil && !usedH {
			// Its old gate forgot it already: end it, so modules that
			// remember the session hear it is gone.
			g.log.Warn("session handed over by another gate not resumed: the client id has a session here; it ends",
				"clientId", clip(c.clientID), "session", h.Session.SessionID)
			g.notifier.sessionClosed(&h.Session)
		}
	}()
	g.mu.Lock()
	if g.closing.Load() {
		g.mu.Unlock()
		return packets.ServerUnavailable, false
	}
	old := g.byClientID[c.clientID]
	var discarded *conn // an away session clean session 1 ends
	resumed := false
	switch {
	case old != nil && old.ps != nil && !old.ps.ended.Load():
		// (An ended session, kicked or closed and not yet unregistered,
		// is not resumed: its client starts a new one.)
		bound := old.session().UserID
		if clean {
			// Discarding takes nothing over: a session created without
			// credentials may be ended by its client id, as a clean
			// session's connection may be taken over by it.
			bound = ""
		}
		if !old.ps.mayResume(c.username, cred, bound) {
			g.mu.Unlock()
			return packets.IdentifierRejected, false
		}
		if clean {
			old.ps.ended.Store(true)
			if old.detached {
				g.forget(old)
				discarded = old
			}
			break
		}
		c.sessionID = old.sessionID
		c.ps = old.ps
		d := old.session().Clone()
		d.ServerID, d.Network, d.RemoteAddr = g.Settings.ID, c.network, c.host
		c.sess.Store(d)
		if d.UserID != "" && g.byUID[d.UserID] == old {
			g.byUID[d.UserID] = c
		}
		if old.detached {
			old.detached = false
			g.stats.sessAway.Add(-1)
		}
		resumed = true
	case old != nil && g.auth != nil && old.username != c.username:
		g.mu.Unlock()
		return packets.IdentifierRejected, false
	case h != nil && !clean:
		usedH = true
		c.sessionID = h.Session.SessionID
		c.ps = h.psession(g, c.clientID)
		d := h.Session.Clone()
		d.ServerID, d.Network, d.RemoteAddr = g.Settings.ID, c.network, c.host
		c.sess.Store(d)
		if d.UserID != "" {
			if o := g.byUID[d.UserID]; o != nil && o != c {
				// Another connection here took the user meanwhile: it
				// keeps it, this session resumes unbound.
				d.UserID = ""
			} else {
				g.byUID[d.UserID] = c
			}
		}
		resumed = true
	}
	if !clean && c.ps == nil {
		c.ps = newPSession(g, c.sessionID, c.clientID, c.username, cred, c.anon)
	}
	delete(g.moved, c.sessionID)
	delete(g.connecting, c)
	g.byID[c.sessionID] = c
	g.byClientID[c.clientID] = c
	g.mu.Unlock()
	g.stats.connections.Add(1)
	g.stats.byListener[c.listener].Add(1)
	if resumed {
		g.stats.sessResumed.Add(1)
	}
	if discarded != nil {
		discarded.ps.stop()
		g.log.Info("stored session discarded by a clean-session CONNECT", "clientId", clip(c.clientID), "session", discarded.sessionID)
		g.notifier.sessionClosed(discarded.session())
	} else if old != nil {
		g.log.Info("client id taken over by a new connection", "clientId", clip(c.clientID), "old", old.remote, "new", c.remote,
			"resumed", resumed)
		old.close("client id taken over [MQTT-3.1.4-2]")
	}
	return packets.Accepted, resumed
}

// forget removes c from the maps it is in. Under g.mu.
func (g *Gate) forget(c *conn) {
	if g.byID[c.sessionID] == c {
		delete(g.byID, c.sessionID)
	}
	if g.byClientID[c.clientID] == c {
		delete(g.byClientID, c.clientID)
	}
	if uid := c.session().UserID; uid != "" && g.byUID[uid] == c {
		delete(g.byUID, uid)
	}
	if c.detached {
		c.detached = false
		g.stats.sessAway.Add(-1)
	}
}

// doneConnecting forgets a socket that never got past CONNECT.
func (g *Gate) doneConnecting(c *conn) {
	g.mu.Lock()
	delete(g.connecting, c)
	g.mu.Unlock()
}

// unregister handles the end of a registered connection. A persistent
// session stays registered, away, until it expires or its client is back;
// any other session is removed and the modules that asked are told.
func (g *Gate) unregister(c *conn) {
	g.stats.connections.Add(-1)
	g.stats.byListener[c.listener].Add(-1)
	g.mu.Lock()
	if g.byID[c.sessionID] != c { // taken over, resumed or handed over
		g.mu.Unlock()
		return
	}
	if c.ps != nil && !c.ps.ended.Load() && !g.closing.Load() {
		c.detached, c.awayAt = true, time.Now()
		over := g.stats.sessAway.Add(1) > int64(g.cfg.maxAway)
		c.ps.detach(c, func() { g.expire(c, false) })
		g.mu.Unlock()
		if over {
			g.evictOldestAway()
		}
		return
	}
	g.forget(c)
	g.mu.Unlock()
	if c.ps != nil {
		c.ps.stop()
	}
	g.notifier.sessionClosed(c.session())
}

// expire ends an away session whose client did not come back in time.
func (g *Gate) expire(c *conn, evicted bool) {
	g.mu.Lock()
	if g.byID[c.sessionID] != c || !c.detached {
		g.mu.Unlock()
		return
	}
	g.forget(c)
	g.mu.Unlock()
	c.ps.stop()
	why := "expired"
	if evicted {
		why = "evicted: over MaxAwaySessions"
		g.stats.sessEvicted.Add(1)
	} else {
		g.stats.sessExpired.Add(1)
	}
	g.log.Info("persistent session ended while away", "why", why, "clientId", clip(c.clientID), "session", c.sessionID,
		"expiry", g.cfg.sessExpiry)
	g.notifier.sessionClosed(c.session())
}

// evictOldestAway ends the session that has been away longest: the gate
// keeps at most MaxAwaySessions, whatever clients do (each holds up to
// SessionQueueBytes of pushes).
func (g *Gate) evictOldestAway() {
	var oldest *conn
	g.mu.Lock()
	for _, c := range g.byID {
		if c.detached && (oldest == nil || c.awayAt.Before(oldest.awayAt)) {
			oldest = c
		}
	}
	g.mu.Unlock()
	if oldest != nil {
		g.expire(oldest, true)
	}
}

// end closes c and ends its session for good, persistent or not (a user
// logged in elsewhere, a module closed it): an away session is removed
// now, a connected one when its connection is done.
func (g *Gate) end(c *conn, reason string) {
	if c.ps == nil {
		c.close(reason)
		return
	}
	c.ps.ended.Store(true) // before the lock: unregister, under it, then sees it
	c.close(reason)
	g.mu.Lock()
	away := g.byID[c.sessionID] == c && c.detached
	if away {
		g.forget(c)
	}
	g.mu.Unlock()
	if away {
		c.ps.stop()
		g.notifier.sessionClosed(c.session())
	}
}

// endAway ends every away session: at shutdown (sessions live in memory).
func (g *Gate) endAway() {
	var away []*conn
	g.mu.Lock()
	for _, c := range g.byID {
		if c.detached {
			away = append(away, c)
		}
	}
	for _, c := range away {
		g.forget(c)
	}
	g.mu.Unlock()
	for _, c := range away {
		c.ps.stop()
		g.notifier.sessionClosed(c.session())
	}
}

// conn returns the connection of a session.
func (g *Gate) conn(sessionID string) (*conn, error) {
	g.mu.Lock()
	c := g.byID[sessionID]
	g.mu.Unlock()
	if c == nil {
		return nil, core.Errorf(core.ErrNotFound, "session %s not found on %s", sessionID, g.Settings.ID)
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
