package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/coregen"
)

// Greeter is a module written by hand: mqantgen would write greeterDesc
// (and a typed client) from a //mqant:module struct, and a game module is
// normally that; this one spells the table out.
type Greeter struct {
	core.BaseModule
}

// GetType is the module type: the key under "Module" in the config.
func (g *Greeter) GetType() string { return "Greeter" }

// OnInit gives the module its RPC server and registers its methods.
func (g *Greeter) OnInit(app *core.App, s *core.ModuleSettings) error {
	g.Init(app, s)
	g.RPCServer().Register(&greeterDesc, g)
	return nil
}

// Hello is the method callers reach as "Hello".
func (g *Greeter) Hello(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("no name")
	}
	return "hello " + name + " from " + g.GetServerID(), nil
}

// greeterDesc is the descriptor table: method name to a handler that
// takes the argument out of the request and calls the method.
var greeterDesc = core.ModuleDesc{
	Type: "Greeter",
	Methods: []core.MethodDesc{
		{Name: "Hello", Handler: func(srv any, ctx context.Context, _ core.Invoker, req *core.Request) (any, error) {
			// In-process the argument is the caller's value; from a client
			// or another process it is decoded from req.Raw.
			name, err := coregen.Arg[*string](req)
			if err != nil {
				return nil, err
			}
			return srv.(*Greeter).Hello(ctx, *name)
		}},
	},
}

// An App runs the modules of one process: a config names the instances,
// Register says how to make each module type, Start runs them and Stop
// stops them in reverse order. With no broker configured, calls between
// modules stay in the process and carry their values unencoded.
func Example() {
	cfg, err := core.ParseConfig([]byte(`{
		"Module": {"Greeter": [{"Id": "greeter-1", "ProcessID": "dev"}]}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	app := core.NewApp(cfg, core.Options{ProcessID: "dev", Logger: slog.New(slog.DiscardHandler)})
	app.Register("Greeter", func() core.Module { return &Greeter{} })
	if err := app.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop("example done")

	ctx := context.Background()
	rep, err := app.Call(ctx, core.Target{Type: "Greeter"}, "Hello", new("alice"))
	fmt.Println(rep.Result, err)

	// The handler's error comes back as ErrRemote with its text.
	_, err = app.Call(ctx, core.Target{Type: "Greeter", ID: "greeter-1"}, "Hello", new(""))
	fmt.Println(err, errors.Is(err, core.ErrRemote))

	// A method no module has fails at once with ErrNotFound.
	_, err = app.Call(ctx, core.Target{Type: "Greeter"}, "Goodbye", nil)
	fmt.Println(errors.Is(err, core.ErrNotFound))
	// Output:
	// hello alice from greeter-1 <nil>
	// no name true
	// true
}

// A typed result: CallResult turns a Reply into the method's result type,
// as generated clients do, whether the callee was in this process (the
// value itself) or elsewhere (decoded).
func ExampleCallResult() {
	cfg, _ := core.ParseConfig([]byte(`{"Module": {"Greeter": [{"Id": "g1", "ProcessID": "dev"}]}}`))
	app := core.NewApp(cfg, core.Options{ProcessID: "dev", Logger: slog.New(slog.DiscardHandler)})
	app.Register("Greeter", func() core.Module { return &Greeter{} })
	if err := app.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop("example done")

	greeting, err := core.CallResult[string](app.Call(context.Background(), core.Target{Type: "Greeter"}, "Hello", new("bob")))
	fmt.Printf("%q %v\n", greeting, err)
	// Output: "hello bob from g1" <nil>
}
