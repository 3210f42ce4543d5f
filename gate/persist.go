package gate

import (
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// MissedTopic is the reserved topic of the first push a resumed client
// gets when pushes meant for it were dropped (queue full or too old) while
// it was away. The body is {"dropped":N}: how many it missed since it last
// heard on this topic. It goes out at QoS 1 like the pushes it stands for.
const MissedTopic = "$mqant/missed"

// msgOverhead is what a queued push costs beyond its topic and body (the
// pmsg itself and its slice slot), counted against SessionQueueBytes so a
// flood of empty pushes is bounded by bytes too.
const msgOverhead = 64

// pmsg is one push kept for a persistent session until the client
// acknowledges it.
type pmsg struct {
	topic string
	body  []byte // owned by the queue: pushes hand their body over
	at    int64  // when it was queued, Unix nanoseconds
	pid   uint16
	dup   bool // written to a connection before: sent again with DUP
}

func (m *pmsg) cost() int { return msgOverhead + len(m.topic) + len(m.body) }

// psession is the part of a clean-session-0 session that outlives its
// connections: the pushes not yet acknowledged and the credentials that
// may resume it. The conn that owns it now (registered under its session
// id) changes on every resume; all of them share the one psession.
//
// Pushes are QoS 1: msgs holds them in the order sent; msgs[:sent] were
// written on the live connection and await PUBACK, at most window of them.
// While the client is away (live nil) every push only queues, bounded by
// count, bytes and age, dropping the oldest: a returning client wants the
// latest state more than the start of a backlog it can no longer have in
// full, and it learns how many it missed (MissedTopic).
type psession struct {
	g         *Gate
	sessionID string
	clientID  string
	username  string   // as the CONNECT that created it gave it
	cred      [32]byte // credHash of that CONNECT
	anon      bool     // that CONNECT had no username and no password

	ended atomic.Bool // ended for good (kicked, closed by a module, clean takeover): no detaching

	mu         sync.Mutex
	msgs       []pmsg
	bytes      int
	sent       int
	live       *conn // nil while away
	nextPID    uint16
	dropped    int64 // since the client last heard of drops
	overflowed bool  // the drop of this absence was logged
	timer      *time.Timer
	qos2       map[uint16]struct{} // ids of QoS 2 PUBLISHes received, awaiting PUBREL
}

func newPSession(g *Gate, sessionID, clientID, username string, cred [32]byte, anon bool) *psession {
	return &psession{g: g, sessionID: sessionID, clientID: clientID, username: username, cred: cred, anon: anon}
}

// credHash is what a session remembers of the CONNECT that created it:
// a SHA-256 of client id, username and password, never the password. It
// also travels between gates when a session moves, in place of the
// password.
func credHash(clientID, username string, password []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("mqant-session\x00"))
	h.Write([]byte(clientID))
	h.Write([]byte{0})
	h.Write([]byte(username))
	h.Write([]byte{0})
	h.Write(password)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// mayResume says whether a CONNECT with these credentials may resume the
// session. With an auth hook, the hook has vouched for the username: the
// same username suffices (tokens may change between connections). Without
// one, nothing vouched for anything: username and password must be those
// of the CONNECT that created the session. Either way, a session created
// with neither, once a handler bound a user to it, cannot be resumed at
// all: a client id alone never takes a logged-in player over.
func (s *psession) mayResume(username string, cred [32]byte, boundUID string) bool {
	if s.anon && boundUID != "" {
		// Also with an auth hook: one that lets CONNECTs without
		// credentials in vouched for nobody.
		return false
	}
	if s.g.auth != nil {
		return subtle.ConstantTimeCompare([]byte(username), []byte(s.username)) == 1
	}
	return subtle.ConstantTimeCompare(cred[:], s.cred[:]) == 1
}

// push queues a push and writes it when the client is there and the
// in-flight window allows.
func (s *psession) push(topic string, body []byte) {
	now := time.Now().UnixNano()
	s.mu.Lock()
	s.expireOld(now)
	m := pmsg{topic: topic, body: body, at: now}
	cfg := &s.g.cfg
	if m.cost() > cfg.sessQueueBytes {
		s.drop(1)
		s.mu.Unlock()
		return
	}
	for len(s.msgs) > 0 && (len(s.msgs) >= cfg.sessQueueMax || s.bytes+m.cost() > cfg.sessQueueBytes) {
		s.dropOldest()
	}
	m.pid = s.newPID()
	s.msgs = append(s.msgs, m)
	s.bytes += m.cost()
	full := s.sendMore()
	s.mu.Unlock()
	if full != nil {
		full.queueFull()
	}
}

// newPID returns the next packet id. Ids go up by one and the queue holds
// fewer than 65535 pushes (SessionQueueMax), so the next id is never one
// still waiting for its PUBACK.
func (s *psession) newPID() uint16 {
	s.nextPID++
	if s.nextPID == 0 {
		s.nextPID = 1
	}
	return s.nextPID
}

// sendMore writes queued pushes to the live connection up to the window.
// It returns the connection when its outbox is full (the caller closes it,
// outside s.mu).
func (s *psession) sendMore() *conn {
	c := s.live
	if c == nil {
		return nil
	}
	for s.sent < len(s.msgs) && s.sent < s.g.cfg.sessInflight {
		m := &s.msgs[s.sent]
		p := packets.Publish{Topic: m.topic, Payload: m.body, QoS: 1, PacketID: m.pid, Dup: m.dup}
		switch c.out.queue(p.AppendTo, true) {
		case queued:
		case queueFull:
			return c
		default:
			return nil
		}
		m.dup = true
		s.sent++
		s.g.stats.sends.Add(1)
	}
	return nil
}

// ack removes the push the client acknowledged on c and sends the next.
func (s *psession) ack(c *conn, pid uint16) {
	s.mu.Lock()
	if s.live != c {
		s.mu.Unlock()
		return
	}
	for i := 0; i < s.sent; i++ {
		if s.msgs[i].pid == pid {
			s.bytes -= s.msgs[i].cost()
			copy(s.msgs[i:], s.msgs[i+1:])
			s.msgs[len(s.msgs)-1] = pmsg{}
			s.msgs = s.msgs[:len(s.msgs)-1]
			s.sent--
			break
		}
	}
	full := s.sendMore()
	s.mu.Unlock()
	if full != nil {
		full.queueFull()
	}
}

func (s *psession) dropOldest() {
	s.bytes -= s.msgs[0].cost()
	s.msgs[0] = pmsg{}
	s.msgs = s.msgs[1:]
	if s.sent > 0 {
		s.sent--
	}
	s.drop(1)
}

// drop counts n pushes lost, logging the first loss of each absence.
func (s *psession) drop(n int64) {
	s.dropped += n
	s.g.stats.sessDropped.Add(n)
	if s.overflowed {
		return
	}
	s.overflowed = true
	if k, ok := s.g.sessWarns.allow(time.Now()); ok {
		s.g.log.Warn("persistent session dropping pushes (queue full or too old); the client will be told how many",
			"clientId", clip(s.clientID), "session", s.sessionID, "queued", len(s.msgs), "bytes", s.bytes,
			"suppressed", k)
	} else {
		s.g.stats.logsSuppressed.Add(1)
	}
}

// expireOld drops the pushes older than SessionQueueAge.
func (s *psession) expireOld(now int64) {
	limit := now - int64(s.g.cfg.sessQueueAge)
	for len(s.msgs) > 0 && s.msgs[0].at < limit {
		s.dropOldest()
	}
}

// attach makes c the live connection: the client first hears of what it
// missed, then gets every push kept, in order (those written before again,
// with DUP), then live pushes. c's CONNACK is written already.
func (s *psession) attach(c *conn) {
	s.mu.Lock()
	s.live = c
	s.sent = 0
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.expireOld(time.Now().UnixNano())
	if s.dropped > 0 {
		m := pmsg{topic: MissedTopic, body: []byte(`{"dropped":` + strconv.FormatInt(s.dropped, 10) + `}`),
			at: time.Now().UnixNano(), pid: s.newPID()}
		s.msgs = append(s.msgs, pmsg{})
		copy(s.msgs[1:], s.msgs)
		s.msgs[0] = m
		s.bytes += m.cost()
		s.dropped = 0
	}
	s.overflowed = false
	full := s.sendMore()
	s.mu.Unlock()
	if full != nil {
		full.queueFull()
	}
}

// detach forgets c as the live connection, if it still is, and arms the
// expiry: expire runs after SessionExpiry unless the client is back.
func (s *psession) detach(c *conn, expire func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == c {
		s.live = nil
		s.sent = 0
	}
	if expire != nil && s.timer == nil {
		s.timer = time.AfterFunc(s.g.cfg.sessExpiry, expire)
	}
}

// stop disarms the expiry and forgets the live connection.
func (s *psession) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = nil
	s.sent = 0
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

func (s *psession) firstQoS2(id uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.qos2[id]; seen {
		return false
	}
	if s.qos2 == nil {
		s.qos2 = map[uint16]struct{}{}
	}
	s.qos2[id] = struct{}{}
	return true
}

func (s *psession) releaseQoS2(id uint16) {
	s.mu.Lock()
	delete(s.qos2, id)
	s.mu.Unlock()
}
