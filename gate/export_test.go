package gate

// KeptPushes returns how many pushes the persistent session of clientID
// keeps (queued, or written and awaiting the client's PUBACK), and false
// when the gate has no persistent session for that client id. Tests wait
// for 0 before cutting a client, so that what it was sent last is not
// still unacknowledged and counted among the pushes kept or dropped.
func (g *Gate) KeptPushes(clientID string) (int, bool) {
	g.mu.Lock()
	c := g.byClientID[clientID]
	var ps *psession
	if c != nil {
		ps = c.ps
	}
	g.mu.Unlock()
	if ps == nil {
		return 0, false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.msgs), true
}
