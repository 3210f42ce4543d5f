package chaos

import (
	"sort"
	"sync"
	"time"
)

// Call is one request a client made and what came of it. Its fields are
// written by the client that made it while the run goes on; read them once
// every client has stopped ([Client.Close]).
type Call struct {
	ID      string // chaosId, unique in the run
	Client  string
	Gate    string
	Route   string // "Login/Handler_Login"
	Sent    time.Time
	Replied time.Time // first reply, even a late one; zero when none came
	Err     string    // the first reply's Error; "" for success
	Replies int       // replies received; more than one is a duplicate
	// Ended is when the client stopped waiting: the first reply, the
	// call timeout or the connection's loss.
	Ended time.Time
	// GaveUp: no reply within the client's call timeout.
	GaveUp bool
	// ConnLost: the connection closed before a reply came.
	ConnLost bool
}

// Latency is the time from sending to the first reply; 0 without one.
func (c *Call) Latency() time.Duration {
	if c.Replied.IsZero() {
		return 0
	}
	return c.Replied.Sub(c.Sent)
}

// OK reports a success reply within the call timeout.
func (c *Call) OK() bool { return !c.Replied.IsZero() && !c.GaveUp && c.Err == "" }

// Conn is one connection of a client.
type Conn struct {
	Client string
	Gate   string
	Up     time.Time // CONNACK received
	Down   time.Time // zero while open
	Err    string    // why it closed, when the client did not close it
	Closed bool      // the client closed it (end of the run)
}

// Lost reports a connection that the server or the network closed.
func (c *Conn) Lost() bool { return !c.Down.IsZero() && !c.Closed }

// Join is a chat member's membership of its room over one connection,
// from the join reply until the connection closed or the member had to
// join again.
type Join struct {
	Member string
	Gate   string
	From   time.Time
	To     time.Time // zero: until the end of the run
}

// Receipt counts the broadcasts of one say a member received.
type Receipt struct {
	First time.Time
	N     int
}

// Recorder keeps every call, connection, membership and broadcast receipt
// of a run.
type Recorder struct {
	mu       sync.Mutex
	calls    []*Call
	conns    []*Conn
	joins    []*Join
	receipts map[string]map[string]*Receipt // member -> say id -> receipt
	lastOK   map[string]okInfo              // client -> its latest success
}

type okInfo struct {
	gate, route string
	at          time.Time
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{receipts: map[string]map[string]*Receipt{}, lastOK: map[string]okInfo{}}
}

func (r *Recorder) addCall(c *Call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *Recorder) addConn(c *Conn) {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
}

func (r *Recorder) addJoin(j *Join) {
	r.mu.Lock()
	r.joins = append(r.joins, j)
	r.mu.Unlock()
}

func (r *Recorder) ok(client, gate, route string, at time.Time) {
	r.mu.Lock()
	r.lastOK[client] = okInfo{gate, route, at}
	r.mu.Unlock()
}

func (r *Recorder) received(member, say string, at time.Time) {
	r.mu.Lock()
	m := r.receipts[member]
	if m == nil {
		m = map[string]*Receipt{}
		r.receipts[member] = m
	}
	if rc := m[say]; rc != nil {
		rc.N++
	} else {
		m[say] = &Receipt{First: at, N: 1}
	}
	r.mu.Unlock()
}

// ClientsOKAfter counts the clients whose latest success came after t on a
// route and gate that match (nil matches all), while the run goes on.
func (r *Recorder) ClientsOKAfter(t time.Time, match func(gate, route string) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.lastOK {
		if o.at.After(t) && (match == nil || match(o.gate, o.route)) {
			n++
		}
	}
	return n
}

// ClientOKAfter reports whether client's latest success came after t,
// while the run goes on.
func (r *Recorder) ClientOKAfter(client string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastOK[client].at.After(t)
}

// Calls returns every call, in the order they were made. Read the calls
// only once the clients have stopped.
func (r *Recorder) Calls() []*Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]*Call(nil), r.calls...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Sent.Before(out[j].Sent) })
	return out
}

// Conns returns every connection.
func (r *Recorder) Conns() []*Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Conn(nil), r.conns...)
}

// Joins returns every membership.
func (r *Recorder) Joins() []*Join {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Join(nil), r.joins...)
}

// Receipts returns how often member received the broadcast of say.
func (r *Recorder) Receipts(member, say string) Receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rc := r.receipts[member][say]; rc != nil {
		return *rc
	}
	return Receipt{}
}
