package gate

import (
	"sync"

	"github.com/mqantgen/mqantgen/core"
)

// A handler's session calls to a gate in its own process are direct calls,
// not RPC: no request, no goroutine hand-off to the gate's RPC server and
// back, no timer for the wait. Gates register here while they run, keyed
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
