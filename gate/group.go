package gate

import (
	"context"
	"sort"
	"sync"

	"github.com/mqantgen/mqantgen/core"
)

// Group is a set of players by user id, each with the session it joined
// from: a room, a match, a guild channel. A module keeps its groups in
// memory; Broadcast reaches the members wherever they are connected, with
// one call per gate (across processes too), not one per member. A user id
// is in a group at most once: joining again from a newer session replaces
// the older one. Safe for concurrent use.
type Group struct {
	mu      sync.Mutex
	members map[string]Member // user id -> where that user is connected
}

// NewGroup returns an empty group.
func NewGroup() *Group { return &Group{members: map[string]Member{}} }

// Add puts the session's user in the group. It reports false, and changes
// nothing, when that user is already in it from this same session; a
// guest session (no user bound) is refused with ok false too.
func (g *Group) Add(s *Session) (ok bool) {
	uid := s.GetUserID()
	if uid == "" {
		return false
	}
	m := Member{ServerID: s.GetServerID(), SessionID: s.GetSessionID()}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, in := g.members[uid]; in && old == m {
		return false
	}
	g.members[uid] = m
	return true
}

// Has reports whether the session's user is in the group from this
// session.
func (g *Group) Has(s *Session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, in := g.members[s.GetUserID()]
	return in && m.SessionID == s.GetSessionID()
}

// Remove takes a user out of the group.
func (g *Group) Remove(uid string) {
	g.mu.Lock()
	delete(g.members, uid)
	g.mu.Unlock()
}

// RemoveSession takes out the members that joined from a session (found
// by session, not by the user now bound to it: the session may have logged
// in under other names since) and returns their user ids, sorted.
func (g *Group) RemoveSession(sessionID string) []string {
	g.mu.Lock()
	var out []string
	for u, m := range g.members {
		if m.SessionID == sessionID {
			delete(g.members, u)
			out = append(out, u)
		}
	}
	g.mu.Unlock()
	sort.Strings(out)
	return out
}

// Len returns the number of members.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// UserIDs returns the members' user ids, sorted.
func (g *Group) UserIDs() []string {
	g.mu.Lock()
	out := make([]string, 0, len(g.members))
	for u := range g.members {
		out = append(out, u)
	}
	g.mu.Unlock()
	sort.Strings(out)
	return out
}

// Members returns where the members are connected, for Broadcast and the
// generated Broadcast helpers of typed pushes.
func (g *Group) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	return out
}

// Broadcast sends body on topic to every member, one call per gate.
func (g *Group) Broadcast(ctx context.Context, inv core.Invoker, topic string, body []byte) error {
	return Broadcast(ctx, inv, g.Members(), topic, body)
}

// SendToUser pushes body on topic to the session uid is bound to, on
// whichever gate it is (a persistent session whose client is away queues
// it). It fails with core.ErrNotFound when uid is not online.
func SendToUser(ctx context.Context, app *core.App, uid, topic string, body []byte) error {
	d, err := Online(ctx, app, uid)
	if err != nil {
		return err
	}
	if d == nil {
		return core.Errorf(core.ErrNotFound, "user %s is not online", uid)
	}
	return NewSession(app, d).Send(ctx, topic, body)
}
