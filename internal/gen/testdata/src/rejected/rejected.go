// Package rejected breaks every rule once.
package rejected

import (
	"context"

	"github.com/mqantgen/mqantgen/gate"
)

type Req struct{ X int }

//mqant:module
type Generic[T any] struct{}

func (g *Generic[T]) Handler_X() error { return nil }

//mqant:module
type NotStruct int

//mqant:module Bad-Name
type Named struct{}

//mqant:module
type Bad struct{}

func (b *Bad) Handler_Variadic(ctx context.Context, req ...*Req) error                  { return nil }
func (b *Bad) Handler_CtxLate(req *Req, ctx context.Context) error                      { return nil }
func (b *Bad) Handler_SessionValue(s gate.Session) error                                { return nil }
func (b *Bad) Handler_SessionLate(ctx context.Context, req *Req, s *gate.Session) error { return nil }
func (b *Bad) Handler_TwoArgs(ctx context.Context, a *Req, c *Req) error                { return nil }
func (b *Bad) Handler_StructValue(req Req) error                                        { return nil }
func (b *Bad) Handler_IntReq(n int) error                                               { return nil }
func (b *Bad) Handler_IntKeyMap(m map[int]string) error                                 { return nil }
func (b *Bad) Handler_NoResults()                                                       {}
func (b *Bad) Handler_NotError() string                                                 { return "" }
func (b *Bad) Handler_ThreeResults() (int, int, error)                                  { return 0, 0, nil }
func (b *Bad) Handler_LastNotError() (string, int)                                      { return "", 0 }
func (b *Bad) Handler_ChanResult() (chan int, error)                                    { return nil, nil }
func (b *Bad) Handler_FuncField(req *struct{ F func() }) error                          { return nil }
func (b *Bad) Handler_() error                                                          { return nil }

//mqant:rpc
func (b *Bad) Handler_Both() error { return nil }

//mqant:rpc
func (b *Bad) lower() error { return nil }

//mqant:sync
func (b *Bad) Plain() error { return nil }

//mqant:nonnull
func (b *Bad) PlainNonNull() (*Req, error) { return nil, nil }

//mqant:rpc
//mqant:nonnull
func (b *Bad) RPCNonNull() (*Req, error) { return nil, nil }

//mqant:nonnull
func (b *Bad) Handler_NonNullValue() (Req, error) { return Req{}, nil }

//mqant:nonnull
func (b *Bad) Handler_NonNullNothing() error { return nil }

//mqant:rpc
func (b *Bad) ComplexArg(c complex128) error { return nil }

//mqant:rpc
func (b *Bad) IfaceArg(e error) error { return nil }

//mqant:rpc
func (b *Bad) Say() error { return nil }

func (b *Bad) Handler_Say() error { return nil }

// Near misses of the Handler_ prefix: each would be skipped without a word.
func (b *Bad) handler_Lower() error { return nil }
func (b *Bad) HandlerFoo() error    { return nil }
func (b *Bad) Handle_Bar() error    { return nil }

// A misspelt directive would drop this rpc method without a word.
//
//mqant:rcp
func (b *Bad) Score() error { return nil }

// Handlers is an ordinary method: no near miss.
func (b *Bad) Handlers() int { return 0 }

// NotAModule has no //mqant:module, so its rpc directive does nothing.
type NotAModule struct{}

//mqant:rpc
func (n *NotAModule) Lost() error { return nil }
