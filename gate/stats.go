package gate

import "sync/atomic"

// Stats are the gate's counters.
type Stats struct {
	Connections     int64 // registered (past CONNECT) now
	InFlight        int64 // client calls queued or running now
	Sockets         int64 // open sockets now, counted from accept
	Accepted        int64 // sockets accepted since start
	Refused         int64 // CONNECTs refused (auth, bad CONNECT, shutting down)
	OverLimit       int64 // sockets closed at accept: MaxConnections or MaxConnectionsPerIP
	ConnectTimeouts int64 // sockets closed for sending no CONNECT in time
	Malformed       int64 // connections closed for a malformed or oversized packet
	SlowClosed      int64 // connections closed because their outgoing queue was full
	KeepAliveLost   int64 // connections closed for silence
	Dropped         int64 // messages dropped (bad topic, over the in-flight limit)
	RateLimited     int64 // requests refused over MaxRequestsPerSecond
	Abandoned       int64 // calls whose handler outlived its deadline
	Requests        int64 // PUBLISH packets received
	BroadcastCalls  int64 // Broadcast RPC calls received
	Sends           int64 // messages queued to clients
	PushRefused     int64 // Send/Broadcast calls refused for an invalid topic
	PushUndelivered int64 // pushes whose session was gone or closed
	LogsSuppressed  int64 // per-connection warnings not logged (rate limit)
	CloseEventsSent int64 // session-closed events delivered to listeners
	CloseRetries    int64 // failed deliveries of session-closed events, retried
	CloseEventsLost int64 // session-closed events given up (queue full, or gate stopped)
}

type gateStats struct {
	connections, accepted, refused, overLimit, connectTimeouts, malformed, slowClosed,
	keepAliveLost, dropped, rateLimited, abandoned, requests, broadcastCalls, sends,
	pushRefused, pushUndelivered, logsSuppressed, closeEventsSent, closeEventRetries,
	closeEventsLost atomic.Int64
}

// Stats returns the gate's counters.
func (g *Gate) Stats() Stats {
	s := &g.stats
	st := Stats{Connections: s.connections.Load(), InFlight: g.inflight.Load(), Accepted: s.accepted.Load(), Refused: s.refused.Load(),
		OverLimit: s.overLimit.Load(), ConnectTimeouts: s.connectTimeouts.Load(),
		Malformed: s.malformed.Load(), SlowClosed: s.slowClosed.Load(), KeepAliveLost: s.keepAliveLost.Load(),
		Dropped: s.dropped.Load(), RateLimited: s.rateLimited.Load(), Abandoned: s.abandoned.Load(),
		Requests: s.requests.Load(), BroadcastCalls: s.broadcastCalls.Load(), Sends: s.sends.Load(),
		PushRefused: s.pushRefused.Load(), PushUndelivered: s.pushUndelivered.Load(),
		LogsSuppressed: s.logsSuppressed.Load(), CloseEventsSent: s.closeEventsSent.Load(),
		CloseRetries: s.closeEventRetries.Load(), CloseEventsLost: s.closeEventsLost.Load()}
	if g.sockets != nil {
		st.Sockets = g.sockets.open()
	}
	return st
}
