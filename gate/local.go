package gate

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/mqantgen/mqantgen/core"
)

// A handler's session calls to a gate in its own process are direct calls,
// not RPC: no request, no goroutine hand-off to the gate's RPC server and
// back, no timer for the wait. That holds for pushes too (Send, Broadcast
// up to directFanout members): they are queued on the members' connections
// in the sender's goroutine before the call returns, so a client gets them
// before the reply of the call that sent them. A larger Broadcast is
// handed off (localFanout), and pushes sent while it runs queue behind it:
// a client gets one sender's pushes in the order it sent them. Gates
// register here while they run, keyed by their App (several Apps may share
// a test process) and instance id.

type localKey struct {
	app core.Invoker
	id  string
}

var localGates sync.Map // localKey -> *Gate

// lastLocal is the gate localGate found last: a process mostly runs one,
// and every session call of its handlers asks for it (two comparisons
// instead of hashing the key for the map).
var lastLocal atomic.Pointer[localEntry]

type localEntry struct {
	key localKey
	g   *Gate
}

func (g *Gate) registerLocal() { localGates.Store(localKey{g.App, g.Settings.ID}, g) }

func (g *Gate) unregisterLocal() {
	localGates.CompareAndDelete(localKey{g.App, g.Settings.ID}, g)
	if e := lastLocal.Load(); e != nil && e.g == g {
		lastLocal.CompareAndSwap(e, nil)
	}
}

// localGate returns gate instance id when it runs in the process of inv
// and is serving, or nil.
func localGate(inv core.Invoker, id string) *Gate {
	if e := lastLocal.Load(); e != nil && e.key.id == id && e.key.app == inv && !e.g.closing.Load() {
		return e.g
	}
	key := localKey{inv, id}
	if v, ok := localGates.Load(key); ok {
		g := v.(*Gate)
		if !g.closing.Load() {
			lastLocal.Store(&localEntry{key, g})
			return g
		}
	}
	return nil
}

// directFanout is the most members a Broadcast from a module of the gate's
// process reaches in the sender's goroutine (a game room); a larger one is
// handed to the gate's fan-out goroutine, so a thousand-member room does
// not hold up its sender (nor, under load, its sender's reply).
const directFanout = 64

// localFanout runs the pushes of this process's modules that were handed
// off, in order, on a goroutine that exists while there are some. While
// it has work, every push from a module of the process is queued behind
// it: a sender's pushes reach a client in the order it sent them, whether
// they were direct or handed off.
type localFanout struct {
	mu      sync.Mutex
	jobs    []pushJob
	running bool
}

type pushJob struct {
	ctx        context.Context
	sessionIDs []string // a Broadcast; nil: a Send to sessionID
	sessionID  string
	topic      string
	body       []byte
}

// sendLocal is Session.Send to this gate from a module of its process:
// queued on the connection in the caller's goroutine unless pushes handed
// off are still running. As SendNR, it reports no delivery failure to the
// sender (a session gone, a topic refused): the gate counts it, and logs
// it as the RPC server logs a failed no-reply call.
func (g *Gate) sendLocal(ctx context.Context, sessionID, topic string, body []byte) {
	job := pushJob{ctx: ctx, sessionID: sessionID, topic: topic, body: body}
	if g.handOff(job, false) {
		return
	}
	g.runPush(job)
}

// broadcastLocal is Broadcast to this gate from a module of its process,
// as BroadcastNR: direct up to directFanout members, handed off beyond.
func (g *Gate) broadcastLocal(ctx context.Context, sessionIDs []string, topic string, body []byte) {
	job := pushJob{ctx: ctx, sessionIDs: sessionIDs, topic: topic, body: body}
	if g.handOff(job, len(sessionIDs) > directFanout) {
		return
	}
	g.runPush(job)
}

// handOff queues job for the fan-out goroutine when force is set or the
// goroutine has work (then job must wait behind it), and reports whether
// it did. The caller runs an unqueued job itself.
func (g *Gate) handOff(job pushJob, force bool) bool {
	f := &g.fanout
	f.mu.Lock()
	if !force && !f.running {
		f.mu.Unlock()
		return false
	}
	// The sender does not wait, so its cancellation must not reach the push.
	job.ctx = context.WithoutCancel(job.ctx)
	f.jobs = append(f.jobs, job)
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if start {
		go g.runFanout()
	}
	return true
}

func (g *Gate) runFanout() {
	f := &g.fanout
	for {
		f.mu.Lock()
		if len(f.jobs) == 0 {
			f.jobs = nil
			f.running = false
			f.mu.Unlock()
			return
		}
		job := f.jobs[0]
		f.jobs[0] = pushJob{}
		f.jobs = f.jobs[1:]
		f.mu.Unlock()
		g.runPush(job)
	}
}

func (g *Gate) runPush(j pushJob) {
	if j.sessionIDs == nil {
		if err := g.Send(j.ctx, j.sessionID, j.topic, j.body); err != nil {
			g.noReplyFailed(j.ctx, Gate_Send_MethodName, err)
		}
		return
	}
	if _, err := g.Broadcast(j.ctx, j.sessionIDs, j.topic, j.body); err != nil {
		g.noReplyFailed(j.ctx, Gate_Broadcast_MethodName, err)
	}
}

func (g *Gate) noReplyFailed(ctx context.Context, fn string, err error) {
	g.log.Warn("rpc no-reply call failed", "id", g.Settings.ID, "fn", fn, "err", err,
		"trace_id", core.TraceFromContext(ctx).TraceIDString())
}

// expired is what a session call to the gate of the caller's process
// returns when the caller's ctx is already done, as the RPC path does: the
// call does not run, and the caller tells the error apart with
// errors.Is(err, core.ErrTimeout) (or the context's error). A handler the
// watchdog gave up on (its client told the request timed out) so binds no
// user late. nil while ctx is live.
func expired(ctx context.Context, fn string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	return &core.Error{Kind: core.ErrTimeout, Msg: "call " + Gate_Type + "." + fn + " expired before it ran", Cause: err}
}
