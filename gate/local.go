package gate

import (
	"context"
	"sync"

	"github.com/mqantgen/mqantgen/core"
)

// A handler's session calls to a gate in its own process are direct calls,
// not RPC: no request, no goroutine hand-off to the gate's RPC server and
// back, no timer for the wait. That holds for pushes too (Send, Broadcast):
// they are queued on the members' connections in the sender's goroutine
// before the call returns, so a client gets one sender's pushes in the
// order it sent them (and before the reply of the call that sent them). Gates register here while they run, keyed
// by their App (several Apps may share a test process) and instance id.

type localKey struct {
	app core.Invoker
	id  string
}

var localGates sync.Map // localKey -> *Gate

func (g *Gate) registerLocal()   { localGates.Store(localKey{g.App, g.Settings.ID}, g) }
func (g *Gate) unregisterLocal() { localGates.CompareAndDelete(localKey{g.App, g.Settings.ID}, g) }

// localGate returns gate instance id when it runs in the process of inv
// and is serving, or nil.
func localGate(inv core.Invoker, id string) *Gate {
	if v, ok := localGates.Load(localKey{inv, id}); ok {
		g := v.(*Gate)
		if !g.closing.Load() {
			return g
		}
	}
	return nil
}

// sendLocal is Session.Send to this gate from a module of its process. As
// SendNR, it reports no delivery failure to the sender (a session gone, a
// topic refused): the gate counts it, and logs it as the RPC server logs a
// failed no-reply call.
func (g *Gate) sendLocal(ctx context.Context, sessionID, topic string, body []byte) {
	if err := g.Send(ctx, sessionID, topic, body); err != nil {
		g.noReplyFailed(ctx, Gate_Send_MethodName, err)
	}
}

// broadcastLocal is Broadcast to this gate from a module of its process,
// as BroadcastNR.
func (g *Gate) broadcastLocal(ctx context.Context, sessionIDs []string, topic string, body []byte) {
	if _, err := g.Broadcast(ctx, sessionIDs, topic, body); err != nil {
		g.noReplyFailed(ctx, Gate_Broadcast_MethodName, err)
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
