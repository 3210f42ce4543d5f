package coregen_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/coregen"
)

type req struct {
	N int `json:"n"`
}

func TestArg(t *testing.T) {
	in := &req{N: 1}
	if got, err := coregen.Arg[*req](&core.Request{Arg: in}); err != nil || got != in {
		t.Errorf("in-process: got %v, %v; want the caller's value", got, err)
	}
	if got, err := coregen.Arg[*req](&core.Request{Raw: []byte(`{"n":7}`)}); err != nil || got.N != 7 {
		t.Errorf("decoded: got %v, %v", got, err)
	}
	if got, err := coregen.Arg[*req](&core.Request{}); err != nil || got == nil || got.N != 0 {
		t.Errorf("empty body: got %v, %v; want a new zero value", got, err)
	}
	_, err := coregen.Arg[*req](&core.Request{Raw: []byte(`{"n":"x"}`)})
	if !errors.Is(err, core.ErrBadRequest) || err.Error() != "body must be JSON format" {
		t.Errorf("bad body: %v", err)
	}
	if _, err := coregen.Arg[*req](&core.Request{Arg: "text"}); !errors.Is(err, core.ErrBadRequest) {
		t.Errorf("wrong type in-process: %v", err)
	}
	m, err := coregen.MapArg[map[string]any](&core.Request{Raw: []byte(`null`)})
	if err != nil || m == nil {
		t.Errorf("null map: got %v, %v; want an empty map", m, err)
	}
}

func TestArgs(t *testing.T) {
	var s string
	var n int
	if err := coregen.Args(&core.Request{Arg: []any{"a", 2}}, coregen.To(&s), coregen.To(&n)); err != nil || s != "a" || n != 2 {
		t.Errorf("in-process: %q %d %v", s, n, err)
	}
	if err := coregen.Args(&core.Request{Arg: []any{nil, 3}}, coregen.To(&s), coregen.To(&n)); err != nil || s != "" || n != 3 {
		t.Errorf("nil argument: %q %d %v", s, n, err)
	}
	if err := coregen.Args(&core.Request{Raw: []byte(`["b",4]`)}, coregen.To(&s), coregen.To(&n)); err != nil || s != "b" || n != 4 {
		t.Errorf("decoded: %q %d %v", s, n, err)
	}
	for _, r := range []*core.Request{
		{Arg: []any{"a"}},
		{Arg: []any{1, 2}},
		{Arg: "a"},
		{Raw: []byte(`["a"]`)},
		{Raw: []byte(`{"a":1}`)},
		{Raw: []byte(`[1,2]`)},
	} {
		if err := coregen.Args(r, coregen.To(&s), coregen.To(&n)); !errors.Is(err, core.ErrBadRequest) {
			t.Errorf("%+v: got %v, want a bad request", r, err)
		}
	}
}

type mod struct{ core.BaseModule }

func (*mod) Handler_A() error { return nil }
func (*mod) Handler_B() error { return nil }
func (*mod) Other() error     { return nil }

func TestCheckHandlers(t *testing.T) {
	all := &core.ModuleDesc{Type: "M", Methods: []core.MethodDesc{{Name: "Handler_A"}, {Name: "Handler_B"}}}
	if err := coregen.CheckHandlers(&mod{}, all); err != nil {
		t.Errorf("current generated code: %v", err)
	}
	stale := &core.ModuleDesc{Type: "M", Methods: []core.MethodDesc{{Name: "Handler_A"}}}
	err := coregen.CheckHandlers(&mod{}, stale)
	if err == nil || !strings.Contains(err.Error(), "method mod.Handler_B is not in the generated code of module type M: run go generate") {
		t.Errorf("stale: %v", err)
	}
	err = coregen.CheckHandlers(&mod{}, &core.ModuleDesc{Type: "M"})
	if err == nil || !strings.Contains(err.Error(), "methods Handler_A, Handler_B of mod") {
		t.Errorf("two missing: %v", err)
	}
}
