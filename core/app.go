package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Version is the framework version printed at start-up.
const Version = "0.1.0"

// Options tune an App.
type Options struct {
	// ProcessID selects the instances whose ProcessID matches. Empty: the
	// instances whose Host is an address of this machine.
	ProcessID string
	Logger    *slog.Logger
	// DrainTimeout bounds how long shutdown waits for running calls. Default 5s.
	DrainTimeout time.Duration
	// Remote carries calls to instances outside this process (RabbitMQ).
	// Nil: in-process only.
	Remote Transport
	// LocalAddrs replaces this machine's addresses for host matching (tests).
	LocalAddrs []string
	// NoMetrics turns the per-call metrics off: handlers are neither timed
	// nor counted, calls made are not counted. What is read at scrape time
	// stays (the gate's and the broker's counters, Go and process). It is
	// there to measure what metrics cost (make bench); keep them on.
	NoMetrics bool
	// TracerProvider receives the spans of every request (gate receive,
	// RPC call, handler); otel.GetTracerProvider() for the global one.
	// Nil: no spans, and no cost beyond the trace ids that log lines carry.
	TracerProvider trace.TracerProvider
}

// App runs the modules of one process.
type App struct {
	cfg     *Config
	opts    Options
	log     *slog.Logger
	local   *InProc // the in-process transport
	timeout time.Duration

	factories map[string]func() Module
	order     []string

	tracer trace.Tracer // nil: tracing off

	registry *prometheus.Registry
	rpc      *rpcMetrics  // nil with NoMetrics
	recent   *errorRing   // the console's recent failures
	calls    *callMetrics // nil with NoMetrics
	admin    *adminServer
	console  *console

	mu      sync.Mutex
	running []*instance
	stopped bool
	gcFloor func() // releases this App's hold on the heap floor

	// taken gets the first report of the remote transport that another
	// process took over an instance id this one serves: Run stops.
	taken chan error
}

type instance struct {
	mod       Module
	settings  *ModuleSettings
	closeSig  chan bool
	runDone   chan struct{}
	listeners []io.Closer
	server    *Server
	started   bool // Run was started; guarded by App.mu
}

// NewApp returns an app for cfg.
func NewApp(cfg *Config, opts Options) *App {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	timeout := cfg.RPC.Timeout
	if timeout <= 0 {
		timeout = DefaultRPCTimeout
	}
	reg := newRegistry()
	a := &App{cfg: cfg, opts: opts, log: opts.Logger, local: NewInProc(), timeout: timeout,
		factories: map[string]func() Module{}, registry: reg, taken: make(chan error, 1)}
	a.recent = &errorRing{}
	if !opts.NoMetrics {
		a.rpc, a.calls = newRPCMetrics(reg), newCallMetrics(reg, cfg)
		a.recent = a.rpc.recent
	}
	if opts.TracerProvider != nil {
		a.tracer = opts.TracerProvider.Tracer(tracerName, trace.WithInstrumentationVersion(Version))
	}
	a.drainToRemote()
	return a
}

// Register declares a module type and how to make an instance of it.
// Modules start in registration order and stop in reverse.
func (a *App) Register(typ string, factory func() Module) {
	if _, dup := a.factories[typ]; !dup {
		a.order = append(a.order, typ)
	}
	a.factories[typ] = factory
}

// Logger returns the app's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// Config returns the app's configuration.
func (a *App) Config() *Config { return a.cfg }

// RPCTimeout is the deadline of a call whose context has none.
func (a *App) RPCTimeout() time.Duration { return a.timeout }

// ServerIDs returns the ids of every configured instance of typ.
func (a *App) ServerIDs(typ string) []string {
	var ids []string
	for _, m := range a.cfg.Modules {
		if m.Type == typ {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// SetRemote sets the transport for instances outside this process. Call it
// before Start.
func (a *App) SetRemote(t Transport) {
	a.opts.Remote = t
	a.drainToRemote()
	if c, ok := t.(prometheus.Collector); ok { // the broker connection's metrics
		a.MustRegister(c)
	}
}

// drainToRemote passes Options.DrainTimeout to a remote transport that
// bounds its own graceful stops (the RabbitMQ transport does), and asks it
// to report an instance id another process took over: Run then stops the
// App and returns the error (a duplicate found at start fails Start).
func (a *App) drainToRemote() {
	if d, ok := a.opts.Remote.(interface{ SetDrainTimeout(time.Duration) }); ok {
		d.SetDrainTimeout(a.opts.DrainTimeout)
	}
	if r, ok := a.opts.Remote.(interface {
		SetOnInstanceTaken(func(id string, err error))
	}); ok {
		r.SetOnInstanceTaken(func(id string, err error) {
			a.log.Error("module instance served by another process: this process no longer serves it; stopping", "id", id, "err", err)
			select {
			case a.taken <- fmt.Errorf("module %s: %w", id, err):
			default:
			}
		})
	}
}

// RunsEverything reports whether this process runs every configured
// instance, in which case in-process RPC is all it needs.
func (a *App) RunsEverything() (bool, error) {
	sel, err := a.selectModules()
	return len(sel) == len(a.cfg.Modules), err
}

// Run starts the modules, waits for SIGINT/SIGTERM or ctx to end, then
// shuts down in reverse order. When the remote transport reports that
// another process took over an instance id this one serves, Run stops too
// and returns that error.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(); err != nil {
		return err
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	var reason string
	var err error
	select {
	case s := <-sigc:
		reason = "signal: " + s.String()
	case <-ctx.Done():
		reason = "context: " + ctx.Err().Error()
	case err = <-a.taken:
		reason = "instance taken over: " + err.Error()
	}
	a.Stop(reason)
	return err
}

// Start initialises the selected modules in order, makes their RPC servers
// reachable and starts each Run. On any error, what was started is stopped
// again and nothing is left running.
func (a *App) Start() error {
	a.log.Info("mqantgen starting up", "version", Version, "process", a.opts.ProcessID)
	selected, err := a.selectModules()
	if err != nil {
		return err
	}
	a.gcFloor = holdHeapFloor(a.cfg.GC.heapFloorMB(), a.log)
	a.console = newConsole(a, a.cfg.Admin.Addr != "")
	if a.cfg.Admin.Addr != "" {
		if a.admin, err = startAdmin(a.cfg.Admin, a.registry, a.console.agg, a.log); err != nil {
			return fmt.Errorf("$.Admin.Addr: %w", err)
		}
	}
	for _, ms := range selected {
		mod := a.factories[ms.Type]()
		if mod.GetType() != ms.Type {
			a.Stop("start-up failed")
			return fmt.Errorf("module %s: factory for %q made a module of type %q", ms.ID, ms.Type, mod.GetType())
		}
		if err := initModule(a, mod, ms); err != nil {
			if rm, ok := mod.(RPCModule); ok && rm.RPCServer() != nil {
				rm.RPCServer().Close(0)
			}
			a.Stop("start-up failed")
			return err
		}
		inst := &instance{mod: mod, settings: ms, closeSig: make(chan bool), runDone: make(chan struct{})}
		a.mu.Lock()
		a.running = append(a.running, inst)
		a.mu.Unlock()
		a.log.Info("module initialised", "type", ms.Type, "id", ms.ID)
		if rm, ok := mod.(RPCModule); ok && rm.RPCServer() != nil {
			inst.server = rm.RPCServer()
			for _, t := range a.transports() {
				c, err := t.Listen(ms.Type, ms.ID, inst.server)
				if err != nil {
					a.Stop("start-up failed")
					return fmt.Errorf("module %s: RPC listen: %w", ms.ID, err)
				}
				inst.listeners = append(inst.listeners, c)
			}
			a.log.Debug("RPCServer listening", "type", ms.Type, "id", ms.ID)
		}
	}
	for _, inst := range a.running {
		if c, ok := inst.mod.(StartChecker); ok {
			if err := c.CheckStart(a); err != nil {
				a.Stop("start-up failed")
				return err
			}
		}
	}
	if err := a.console.start(); err != nil {
		a.Stop("start-up failed")
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, inst := range a.running {
		inst.started = true
		go func(inst *instance) {
			defer close(inst.runDone)
			inst.mod.Run(inst.closeSig)
		}(inst)
	}
	return nil
}

func (a *App) transports() []Transport {
	if a.opts.Remote != nil {
		return []Transport{a.local, a.opts.Remote}
	}
	return []Transport{a.local}
}

// Stop shuts the running modules down, frontends (the gate) first, then
// the others in reverse order of start: Run returns,
// OnDestroy, RPC endpoints closed, running calls drained up to the drain
// timeout. It is safe to call more than once.
func (a *App) Stop(reason string) {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.stopped = true
	running := a.running
	started := make([]bool, len(running))
	for i, inst := range running {
		started[i] = inst.started
	}
	a.mu.Unlock()
	for _, i := range stopOrder(running) {
		inst := running[i]
		close(inst.closeSig)
		if started[i] {
			select {
			case <-inst.runDone:
			case <-time.After(a.opts.DrainTimeout):
				a.log.Warn("module Run did not return after closeSig", "id", inst.settings.ID)
			}
		}
		inst.mod.OnDestroy()
		for _, c := range inst.listeners {
			_ = c.Close()
		}
		if inst.server != nil {
			inst.server.Close(a.opts.DrainTimeout)
			a.log.Debug("RPCServer closed", "id", inst.settings.ID)
		}
		a.log.Info("module stopped", "type", inst.settings.Type, "id", inst.settings.ID)
	}
	if a.console != nil {
		a.console.close()
	}
	for _, t := range a.transports() {
		_ = t.Close()
	}
	if a.admin != nil {
		a.admin.close()
	}
	if a.gcFloor != nil {
		a.gcFloor()
	}
	a.log.Info("mqantgen closing down", "reason", reason)
}

// stopOrder is the order Stop takes the instances in: frontends first, then
// the others, each group in reverse order of start.
func stopOrder(running []*instance) []int {
	order := make([]int, 0, len(running))
	for _, front := range []bool{true, false} {
		for i := len(running) - 1; i >= 0; i-- {
			if _, ok := running[i].mod.(Frontend); ok == front {
				order = append(order, i)
			}
		}
	}
	return order
}

// selectModules validates the registry against the config and picks this
// process's instances, in registration order.
func (a *App) selectModules() ([]*ModuleSettings, error) {
	var errs []error
	for _, m := range a.cfg.Modules {
		if _, ok := a.factories[m.Type]; !ok {
			known := append([]string(nil), a.order...)
			sort.Strings(known)
			errs = append(errs, fmt.Errorf("$.Module.%s: unknown module type %q (registered: %s)", m.Type, m.Type, strings.Join(known, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, typ := range a.order {
		if len(a.ServerIDs(typ)) == 0 {
			errs = append(errs, fmt.Errorf("$.Module: module type %q is registered but the config has no instance of it, so every call to it would fail; add \"%s\": [{\"Id\": \"...\"}] under Module, or drop the registration", typ, typ))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	local := a.localAddrs()
	var out []*ModuleSettings
	for _, typ := range a.order {
		for _, m := range a.cfg.Modules {
			if m.Type != typ {
				continue
			}
			if a.opts.ProcessID != "" {
				if m.ProcessID == a.opts.ProcessID {
					out = append(out, m)
				}
			} else if local[m.Host] {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		if a.opts.ProcessID != "" {
			return nil, fmt.Errorf("no module instance has ProcessID %q", a.opts.ProcessID)
		}
		return nil, errors.New("no module instance has a Host of this machine; use -pid to choose a process")
	}
	return out, nil
}

// initModule runs a module's OnInit and checks what a forgotten step would
// otherwise leave to fail per call at run time: a BaseModule without Init
// (no RPC server), a server without registered methods.
func isDescribed(typ string) bool {
	_, ok := Described(typ)
	return ok
}

func initModule(a *App, mod Module, ms *ModuleSettings) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("module %s: OnInit panicked: %v", ms.ID, p)
		}
	}()
	if err := mod.OnInit(a, ms); err != nil {
		return fmt.Errorf("module %s: OnInit: %w", ms.ID, err)
	}
	rm, ok := mod.(RPCModule)
	if !ok {
		return nil
	}
	switch srv := rm.RPCServer(); {
	case srv == nil:
		return fmt.Errorf("module %s: OnInit did not call Init(app, settings) of its embedded core.BaseModule, so the module has no RPC server", ms.ID)
	case srv.methodCount() == 0 && isDescribed(ms.Type):
		return fmt.Errorf("module %s: OnInit registered no methods, so every call to %s would fail; call the generated Register%sServer(m.RPCServer(), m) after Init", ms.ID, ms.Type, ms.Type)
	}
	return nil
}

// Serves reports whether a module instance of type typ runs in this
// process and, if so, whether it has method fn.
func (a *App) Serves(typ, fn string) (local, has bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, inst := range a.running {
		if inst.settings.Type == typ && inst.server != nil {
			local = true
			if inst.server.Has(fn) {
				return true, true
			}
		}
	}
	return local, false
}

func (a *App) localAddrs() map[string]bool {
	m := map[string]bool{"": true, "127.0.0.1": true, "localhost": true, "::1": true}
	if a.opts.LocalAddrs != nil {
		for _, s := range a.opts.LocalAddrs {
			m[s] = true
		}
		return m
	}
	if h, err := os.Hostname(); err == nil {
		m[h] = true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok {
			m[ipn.IP.String()] = true
		}
	}
	return m
}

// Invoke sends a call to the target, in-process when the target lives here,
// through the remote transport otherwise. A context without a deadline gets
// the configured RPC timeout. The call continues the trace of req.Trace, or
// else of ctx (a handler's calls continue its request's trace), or starts
// a new one.
func (a *App) Invoke(ctx context.Context, to Target, req *Request) (Reply, error) {
	a.calls.begin()
	rep, err := a.invoke(ctx, to, req)
	a.calls.end(to.Type, err)
	return rep, err
}

func (a *App) invoke(ctx context.Context, to Target, req *Request) (rep Reply, err error) {
	if a.tracer != nil {
		var span trace.Span
		ctx, span = a.startCall(ctx, to, req)
		defer func() { EndSpan(span, to.Type, req.Fn, err) }()
	} else {
		stampTrace(ctx, req)
	}
	ep := a.local.lookup(to) // once: a second lookup would advance a type's rotation again
	local := ep != nil
	if !req.NoReply {
		d, ok := ctx.Deadline()
		switch {
		case ok:
		case !local && a.opts.Remote != nil:
			// The remote transport waits for the deadline with a timer of
			// its own (DeadlineWait): no context timer per call.
			lc := withLazyDeadline(ctx, time.Now().Add(a.timeout))
			defer lc.release()
			ctx, d = lc, lc.d
		default:
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, a.timeout)
			defer cancel()
			d, _ = ctx.Deadline()
		}
		req.Deadline = d
	}
	if local {
		return a.local.invokeAt(ctx, ep, to, req)
	}
	if a.opts.Remote != nil {
		return a.opts.Remote.Invoke(ctx, to, req)
	}
	return Reply{}, NotFoundError(to)
}

// InvokeInline is Invoke for a caller that runs on a goroutine of its own
// (the gate's per-connection dispatcher): an in-process concurrent handler
// runs right in the caller's goroutine instead of on a worker, and a
// context without a deadline gets the RPC timeout without a timer unless
// the handler waits on it.
func (a *App) InvokeInline(ctx context.Context, to Target, req *Request) (Reply, error) {
	a.calls.begin()
	rep, err := a.invokeInline(ctx, to, req, nil)
	a.calls.end(to.Type, err)
	return rep, err
}

// InlineCall is a request together with the room its call's context needs,
// for a caller that makes a call per client request (the gate): with
// InvokeCall that is one allocation per call where InvokeInline makes two.
// The caller fills Req and passes the InlineCall once: the handler's ctx
// lives in it, and a handler may keep its ctx after it returns (a
// goroutine it started), so an InlineCall is never reused or pooled.
type InlineCall struct {
	Req Request
	ctx lazyDeadline
}

// InvokeCall is InvokeInline of c.Req, with c's room for the context.
func (a *App) InvokeCall(ctx context.Context, to Target, c *InlineCall) (Reply, error) {
	a.calls.begin()
	rep, err := a.invokeInline(ctx, to, &c.Req, &c.ctx)
	a.calls.end(to.Type, err)
	return rep, err
}

// invokeInline is InvokeInline; lc, when not nil, is the unused room for
// the lazy context.
func (a *App) invokeInline(ctx context.Context, to Target, req *Request, lc *lazyDeadline) (rep Reply, err error) {
	if req.NoReply {
		return a.invoke(ctx, to, req)
	}
	ep := a.local.lookup(to) // once: the call below is made to it
	if ep == nil {
		return a.invoke(ctx, to, req)
	}
	if a.tracer != nil {
		var span trace.Span
		ctx, span = a.startCall(ctx, to, req)
		defer func() { EndSpan(span, to.Type, req.Fn, err) }()
	} else {
		stampTrace(ctx, req)
	}
	d, ok := ctx.Deadline()
	if !ok {
		// The lazy context also carries the trace to the handler: its
		// calls continue it at no extra allocation.
		if req.Start.IsZero() {
			req.Start = time.Now()
		}
		if lc == nil {
			lc = withLazyDeadline(ctx, req.Start.Add(a.timeout))
		} else {
			lc.Context, lc.d = ctx, req.Start.Add(a.timeout)
		}
		lc.trace = req.Trace
		defer lc.release()
		ctx, d = lc, lc.d
	}
	req.Deadline = d
	return a.local.invokeInlineAt(ctx, ep, to, req)
}

// stampTrace gives req its trace when its caller set none: ctx's, else a
// new one.
func stampTrace(ctx context.Context, req *Request) {
	if req.Trace.Valid() {
		return
	}
	if req.Trace = TraceFromContext(ctx); !req.Trace.Valid() {
		req.Trace = NewTraceContext()
	}
}

// startCall starts the client span of a call, a child of req.Trace or of
// ctx's span, and makes req carry it to the callee.
func (a *App) startCall(ctx context.Context, to Target, req *Request) (context.Context, trace.Span) {
	ctx, span := a.tracer.Start(withParent(ctx, req.Trace), "rpc.call", trace.WithSpanKind(trace.SpanKindClient))
	req.Trace = fromSpanContext(span.SpanContext())
	return ctx, span
}

// Call invokes fn on the target with one argument and waits for the result.
func (a *App) Call(ctx context.Context, to Target, fn string, arg any) (Reply, error) {
	return a.Invoke(ctx, to, &Request{Fn: fn, Arg: arg})
}

// CallNR invokes fn without waiting for a reply. It still fails when the
// call could not be delivered.
func (a *App) CallNR(ctx context.Context, to Target, fn string, arg any) error {
	_, err := a.Invoke(ctx, to, &Request{Fn: fn, Arg: arg, NoReply: true})
	return err
}
