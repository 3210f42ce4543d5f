package gate_test

import (
	"context"
	"sync/atomic"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

type (
	pahoClient = mqtttest.Paho
	msg        = mqtttest.Msg
)

var (
	newPaho = mqtttest.NewPaho
	poll    = mqtttest.Poll
)

func loginJoin(p *pahoClient, user, room string) { p.LoginJoin(user, room) }

// slowModule is a module with a handler that blocks until released, to show
// the gate keeps reading and answering while a handler is slow. Its
// descriptor table is written out by hand.
type slowModule struct {
	core.BaseModule
	release    chan struct{}
	running    atomic.Int32
	maxRunning atomic.Int32
	order      chan string
}

func newSlow() *slowModule {
	return &slowModule{release: make(chan struct{}), order: make(chan string, 100)}
}

func (m *slowModule) GetType() string { return "Slow" }

func (m *slowModule) OnInit(app *core.App, s *core.ModuleSettings) error {
	m.Init(app, s)
	m.RPCServer().Register(&core.ModuleDesc{Type: "Slow", Methods: []core.MethodDesc{
		{Name: "Handler_Wait", Handler: func(_ any, ctx context.Context, _ core.Invoker, req *core.Request) (any, error) {
			n := m.running.Add(1)
			defer m.running.Add(-1)
			for {
				old := m.maxRunning.Load()
				if n <= old || m.maxRunning.CompareAndSwap(old, n) {
					break
				}
			}
			m.order <- string(req.Raw)
			select {
			case <-m.release:
			case <-ctx.Done():
			}
			return "waited " + string(req.Raw), nil
		}},
	}}, m)
	return nil
}

func slowExtra(m *slowModule) demotest.Extra {
	return demotest.Extra{Type: "Slow", New: func() core.Module { return m }}
}
