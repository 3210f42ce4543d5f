package gate

import "sync/atomic"

// Stats are the gate's counters.
type Stats struct {
	Connections     int64            // registered (past CONNECT) now
	Users           int64            // sessions bound to a user id now (online users)
	ByListener      map[string]int64 // Connections by listener: tcp, ws, tls, wss
	InFlight        int64            // client calls queued or running now
	BytesIn         int64            // read from clients' sockets
	BytesOut        int64            // written to clients' sockets
	PacketsIn       int64            // MQTT packets read
	PacketsOut      int64            // MQTT packets written
	SocketReads     int64            // read system calls on clients' sockets: PacketsIn/SocketReads is the batching in
	SocketWrites    int64            // write system calls: PacketsOut/SocketWrites is how many packets a write carries
	Sockets         int64            // open sockets now, counted from accept
	Accepted        int64            // sockets accepted since start
	Refused         int64            // CONNECTs refused (auth, bad CONNECT, shutting down), and WebSocket upgrades for their origin
	RefusedBy       map[string]int64 // Refused by reason: see refusalNames
	OverLimit       int64            // sockets closed at accept: MaxConnections or MaxConnectionsPerIP
	OverLimitBy     map[string]int64 // OverLimit by limit: max_connections, max_connections_per_ip
	ConnectTimeouts int64            // sockets closed for sending no CONNECT in time
	Malformed       int64            // connections closed for a malformed or oversized packet
	SlowClosed      int64            // connections closed because their outgoing queue was full
	KeepAliveLost   int64            // connections closed for silence
	Dropped         int64            // messages dropped (bad topic, over the in-flight limit)
	RefusedRequests map[string]int64 // requests the gate answered with an error without calling: see requestRefusalNames
	RateLimited     int64            // requests refused over MaxRequestsPerSecond
	Abandoned       int64            // calls whose handler outlived its deadline
	Requests        int64            // PUBLISH packets received
	BroadcastCalls  int64            // Broadcast RPC calls received
	Sends           int64            // messages queued to clients: replies and pushes
	Replies         int64            // replies among Sends
	OutDropped      int64            // packets queued to a client and never written: its connection closed first, or its queue was full
	PushRefused     int64            // Send/Broadcast calls refused for an invalid topic
	PushUndelivered int64            // pushes whose session was gone or closed
	LogsSuppressed  int64            // per-connection warnings not logged (rate limit)
	CloseEventsSent int64            // session-closed events delivered to listeners
	CloseRetries    int64            // failed deliveries of session-closed events, retried
	CloseEventsLost int64            // session-closed events given up (queue full, or gate stopped)
	SessionsAway    int64            // persistent sessions kept with no connection now
	SessionsResumed int64            // CONNECTs that resumed a stored session (here or handed over)
	SessionsExpired int64            // persistent sessions ended by SessionExpiry
	SessionsEvicted int64            // away persistent sessions ended early: over MaxAwaySessions
	SessionsMoved   int64            // persistent sessions handed over to another gate
	SessionDropped  int64            // pushes to persistent sessions dropped (queue full or too old)
}

// listenerNames label the gate's connections by listener.
var listenerNames = [...]string{"tcp", "ws", "tls", "wss"}

func listenerIndex(network string, tls bool) int {
	i := 0
	if network == "ws" {
		i = 1
	}
	if tls {
		i += 2
	}
	return i
}

// Reasons a CONNECT (or a WebSocket upgrade) is refused; they label
// mqant_gate_connects_refused_total.
const (
	refusedAuth         = iota // the auth hook said no
	refusedClientID            // client id in use by another authenticated user, or its persistent session by other credentials
	refusedShuttingDown        // the gate is stopping
	refusedBadConnect          // a CONNECT the gate answers with a return code (protocol version, client id)
	refusedOrigin              // WebSocket origin not allowed
	numRefusals
)

var refusalNames = [numRefusals]string{"auth", "client_id_taken", "shutting_down", "bad_connect", "ws_origin"}

// Reasons the gate answers a request with an error without calling a
// module; they label mqant_gate_requests_refused_total.
const (
	reqNotHandler    = iota // method not Handler_...: not callable by clients
	reqUnknownModule        // no module of the topic's type in the config
	reqBadJSON              // the body is not JSON
	reqShuttingDown         // the gate is stopping
	numReqRefusals
)

var requestRefusalNames = [numReqRefusals]string{"not_handler", "unknown_module", "bad_json", "shutting_down"}

// The limits a socket is refused over at accept; they label
// mqant_gate_sockets_over_limit_total.
const (
	overMax   = iota // MaxConnections
	overPerIP        // MaxConnectionsPerIP
	numLimits
)

var (
	overLimitNames    = [numLimits]string{"max_connections", "max_connections_per_ip"}
	overLimitSettings = [numLimits]string{"MaxConnections", "MaxConnectionsPerIP"}
)

type gateStats struct {
	refused                                  [numRefusals]atomic.Int64
	overLimit                                [numLimits]atomic.Int64
	requestsRefused                          [numReqRefusals]atomic.Int64
	socketReads, socketWrites                atomic.Int64                     // system calls: packets per call are the batching
	byListener                               [len(listenerNames)]atomic.Int64 // connections now
	bytesIn, bytesOut, packetsIn, packetsOut atomic.Int64
	connections, accepted, connectTimeouts, malformed, slowClosed,
	keepAliveLost, dropped, rateLimited, abandoned, requests, broadcastCalls, sends, replies, outDropped,
	pushRefused, pushUndelivered, logsSuppressed, closeEventsSent, closeEventRetries,
	closeEventsLost atomic.Int64
	sessAway, sessResumed, sessExpired, sessEvicted, sessMovedAway, sessDropped atomic.Int64
}

// Stats returns the gate's counters.
func (g *Gate) Stats() Stats {
	s := &g.stats
	st := Stats{Connections: s.connections.Load(), InFlight: g.inflight.Load(), Accepted: s.accepted.Load(),
		ConnectTimeouts: s.connectTimeouts.Load(), Malformed: s.malformed.Load(), SlowClosed: s.slowClosed.Load(), KeepAliveLost: s.keepAliveLost.Load(),
		Dropped: s.dropped.Load(), RateLimited: s.rateLimited.Load(), Abandoned: s.abandoned.Load(),
		Requests: s.requests.Load(), BroadcastCalls: s.broadcastCalls.Load(), OutDropped: s.outDropped.Load(),
		PushRefused: s.pushRefused.Load(), PushUndelivered: s.pushUndelivered.Load(),
		LogsSuppressed: s.logsSuppressed.Load(), CloseEventsSent: s.closeEventsSent.Load(),
		CloseRetries: s.closeEventRetries.Load(), CloseEventsLost: s.closeEventsLost.Load()}
	st.SessionsAway, st.SessionsResumed = s.sessAway.Load(), s.sessResumed.Load()
	st.SessionsExpired, st.SessionsMoved, st.SessionDropped = s.sessExpired.Load(), s.sessMovedAway.Load(), s.sessDropped.Load()
	st.SessionsEvicted = s.sessEvicted.Load()
	st.BytesIn, st.BytesOut = s.bytesIn.Load(), s.bytesOut.Load()
	st.PacketsIn, st.PacketsOut = s.packetsIn.Load(), s.packetsOut.Load()
	// Replies are counted apart from pushes, not twice: one add per reply.
	st.Replies = s.replies.Load()
	st.Sends = s.sends.Load() + st.Replies
	st.RefusedBy = make(map[string]int64, numRefusals)
	for i, name := range refusalNames {
		n := s.refused[i].Load()
		st.RefusedBy[name] = n
		st.Refused += n
	}
	st.RefusedRequests = make(map[string]int64, numReqRefusals)
	for i, name := range requestRefusalNames {
		st.RefusedRequests[name] = s.requestsRefused[i].Load()
	}
	st.OverLimitBy = make(map[string]int64, numLimits)
	for i, name := range overLimitNames {
		n := s.overLimit[i].Load()
		st.OverLimitBy[name] = n
		st.OverLimit += n
	}
	st.SocketReads, st.SocketWrites = s.socketReads.Load(), s.socketWrites.Load()
	st.ByListener = map[string]int64{}
	for i, name := range listenerNames {
		st.ByListener[name] = s.byListener[i].Load()
	}
	if g.sockets != nil {
		st.Sockets = g.sockets.open()
	}
	g.mu.Lock()
	st.Users = int64(len(g.byUID))
	g.mu.Unlock()
	return st
}
