package gen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEndToEnd generates code for a module in a fresh Go module, builds it
// and runs a program that calls the module through the generated client,
// both typed in-process and with a JSON payload as the gate sends it. Only
// the module's package is named: its push type is found in helloapi, which
// it imports. A //mqant:nonnull handler that returns nil fails the call.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program; skipped with -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))
	write("go.mod", "module example.com/e2e\n\ngo 1.26\n\nrequire github.com/mqantgen/mqantgen v0.0.0\n\nreplace github.com/mqantgen/mqantgen => "+root+"\n")
	write("hello/helloapi/api.go", `package helloapi

type GreetRequest struct {
	Name string `+"`json:\"name\"`"+`
}

type GreetReply struct {
	Text string `+"`json:\"text\"`"+`
}

// Stats is a flat result: generated code writes its JSON.
type Stats struct {
	Title  string `+"`json:\"title,omitempty\"`"+`
	Level  int8   `+"`json:\"level,omitempty\"`"+`
	Name   string `+"`json:\"name\"`"+`
	Gold   uint64
	Online bool   `+"`json:\"online,omitempty\"`"+`
	Delta  int64  `+"`json:\"delta\"`"+`
	Skip   string `+"`json:\"-\"`"+`
	hidden int
}

// OnGreeted is pushed to a client.
//
//mqant:push Hello/OnGreeted
type OnGreeted struct {
	By string `+"`json:\"by\"`"+`
}
`)
	write("hello/hello.go", `package hello

import (
	"context"
	"errors"

	"example.com/e2e/hello/helloapi"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/core"
)

// Hello is all a module needs: the generator writes GetType, OnInit, New
// and Register; OnInit calls Setup.
//
//mqant:module
type Hello struct {
	core.BaseModule
	greeting string
}

func (h *Hello) Setup(app *core.App, s *core.ModuleSettings) error {
	h.greeting = "hello "
	return nil
}

func (h *Hello) Handler_Greet(ctx context.Context, s *gate.Session, req *helloapi.GreetRequest) (*helloapi.GreetReply, error) {
	if req.Name == "" {
		return nil, errors.New("name cannot be empty")
	}
	return &helloapi.GreetReply{Text: h.greeting + req.Name + " from session " + s.GetSessionID()}, nil
}

// Handler_Find's reply is declared never null; a nil one is an error.
//
//mqant:nonnull
func (h *Hello) Handler_Find(req *helloapi.GreetRequest) (*helloapi.GreetReply, error) {
	if req.Name == "" {
		return nil, nil
	}
	return &helloapi.GreetReply{Text: req.Name}, nil
}

func (h *Hello) Handler_Stats(req *helloapi.GreetRequest) (*helloapi.Stats, error) {
	return &helloapi.Stats{Name: req.Name}, nil
}

//mqant:rpc
func (h *Hello) Add(ctx context.Context, a, b int) (int, error) { return a + b, nil }
`)
	write("main.go", `package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"

	genhello "example.com/e2e/gen/hello"
	"example.com/e2e/hello"
	"example.com/e2e/hello/helloapi"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/core"
)

func main() {
	cfg := &core.Config{Modules: []*core.ModuleSettings{{Type: "Hello", ID: "h1", Host: "127.0.0.1"}}}
	app := core.NewApp(cfg, core.Options{})
	hello.Register(app)
	if err := app.Start(); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	defer app.Stop("done")
	ctx := context.Background()
	c := genhello.NewHelloClient(app)
	s := gate.NewSession(app, &core.SessionData{SessionID: "s7"})
	r, err := c.Greet(ctx, s, &helloapi.GreetRequest{Name: "typed"})
	fmt.Println("typed:", r.Text, err)
	_, err = c.Greet(ctx, s, &helloapi.GreetRequest{})
	fmt.Println("error:", err)
	found, err := c.Find(ctx, &helloapi.GreetRequest{Name: "x"})
	fmt.Println("found:", found.Text, err)
	_, err = c.Find(ctx, &helloapi.GreetRequest{})
	fmt.Println("nonnull:", err)
	n, err := c.To("h1").Add(ctx, 2, 3)
	fmt.Println("add:", n, err)
	rep, err := app.Invoke(ctx, core.Target{Type: "Hello"}, &core.Request{Fn: "Handler_Greet", Session: s.Data(), Raw: []byte(`+"`"+`{"name":"json"}`+"`"+`)})
	fmt.Println("json:", rep.Result.(*helloapi.GreetReply).Text, err)
	rep, err = app.Invoke(ctx, core.Target{Type: "Hello"}, &core.Request{Fn: "Add", Raw: []byte("[40,2]")})
	fmt.Println("positional:", rep.Result, err)
	// Typed pushes: no members, nothing to send; one session whose gate
	// does not exist, an error that says so.
	fmt.Println("broadcast:", genhello.BroadcastOnGreeted(ctx, app, nil, &helloapi.OnGreeted{By: "x"}), genhello.OnGreeted_Topic)
	err = genhello.SendOnGreeted(ctx, s, &helloapi.OnGreeted{By: "x"})
	fmt.Println("send fails without a gate:", err != nil)
	// A flat result's JSON is written by generated code, to the codec's bytes.
	same := 0
	for _, v := range []*helloapi.Stats{nil, {}, {Name: "a"}, {Title: "t"}, {Level: -3, Online: true},
		{Title: "<b>&\"q\"\\ \u2028 \xff", Level: math.MinInt8, Name: "é☃\n\t\x01", Gold: math.MaxUint64, Online: true,
			Delta: math.MinInt64, Skip: "no"}} {
		got, err := core.AppendJSON(nil, v)
		want, _ := core.JSON.Marshal(v)
		if err != nil || !bytes.Equal(got, want) {
			fmt.Printf("flat result differs: %s (%v), want %s\n", got, err, want)
			continue
		}
		same++
	}
	fmt.Println("flat results as the codec writes them:", same)
}
`)
	// The temporary module lists only the framework; let go add the rest.
	t.Setenv("GOFLAGS", "-mod=mod")
	outs, err := Generate(Options{Dir: dir, Patterns: []string{"./hello"}, Out: "gen/hello", Web: "web"})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if _, err := Write(outs, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"web/ts/hello.ts", "web/js/hello.js", "web/js/hello.d.ts", "web/js/mqant.js", "web/manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("client SDK: %v", err)
		}
	}
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"typed: hello typed from session s7 <nil>",
		"error: name cannot be empty",
		"found: x <nil>",
		"nonnull: Handler_Find returned no result, but it is declared //mqant:nonnull",
		"add: 5 <nil>",
		"json: hello json from session s7 <nil>",
		"positional: 42 <nil>",
		"broadcast: <nil> Hello/OnGreeted",
		"send fails without a gate: true",
		"flat results as the codec writes them: 6",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "hello", "hello.glue.mqant.go")); err != nil {
		t.Errorf("the glue is not beside the module: %v", err)
	}

	// A handler added without regenerating: the start fails, naming the
	// method and the fix, instead of each call failing at run time.
	f, err := os.OpenFile(filepath.Join(dir, "hello", "hello.go"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nfunc (h *Hello) Handler_Late(ctx context.Context) error { return nil }\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("go", "run", ".")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a module with a Handler_ method the generated code lacks started:\n%s", out)
	}
	if want := "OnInit: method Hello.Handler_Late is not in the generated code of module type Hello: run go generate"; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
