package core_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

type respondFunc func(core.Reply)

func (f respondFunc) Respond(r core.Reply) { f(r) }

// A transport's delivery loop hands calls over with ServeNoWait. A backlog
// of a Sync method far past its queue's 1,024 never makes it wait, so a
// call of the module's concurrent methods behind the backlog runs at once
// (RegisterGO's promise), and the Sync calls all run, in arrival order.
// Over RabbitMQ one delivery carries up to 128 calls: the broker's
// prefetch no longer keeps a consumer within the Sync queue.
func TestServeNoWaitSyncBacklog(t *testing.T) {
	leakcheck.Check(t)
	release := make(chan struct{})
	srv := core.NewServer("T", "t1", nil, nil)
	srv.Register(&core.ModuleDesc{Type: "T", Methods: []core.MethodDesc{
		{Name: "Slow", Sync: true, Handler: func(_ any, _ context.Context, _ core.Invoker, req *core.Request) (any, error) {
			<-release
			return string(req.Raw), nil
		}},
		{Name: "Quick", Handler: func(any, context.Context, core.Invoker, *core.Request) (any, error) {
			return "quick", nil
		}},
	}}, nil)
	defer srv.Close(10 * time.Second)
	const n = 3000
	got := make(chan string, n)
	queued := make(chan struct{})
	go func() {
		defer close(queued)
		for i := 0; i < n; i++ {
			srv.ServeNoWait(context.Background(), &core.Request{Fn: "Slow", Raw: []byte(strconv.Itoa(i))},
				respondFunc(func(r core.Reply) {
					if s, ok := r.Result.(string); ok && r.Err == nil {
						got <- s
					} else {
						got <- "error " + core.ClientCode(r.Err)
					}
				}))
		}
	}()
	select {
	case <-queued:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("ServeNoWait waited for room in the Sync queue")
	}
	quick := make(chan core.Reply, 1)
	srv.ServeNoWait(context.Background(), &core.Request{Fn: "Quick"}, respondFunc(func(r core.Reply) { quick <- r }))
	select {
	case r := <-quick:
		if r.Err != nil || r.Result != "quick" {
			t.Errorf("the concurrent call: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Error("a concurrent method's call waited behind the Sync backlog")
	}
	close(release)
	for i := 0; i < n; i++ {
		select {
		case s := <-got:
			if s != strconv.Itoa(i) {
				t.Fatalf("Sync call %d ran as number %s: the order changed", i, s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d Sync calls ran", i, n)
		}
	}
}
