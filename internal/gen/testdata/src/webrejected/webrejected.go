// Package webrejected breaks every rule of the client SDK and of pushes once.
package webrejected

import (
	"context"
	"math/big"
)

// Custom has its own JSON form, unknown to the generator.
type Custom struct{}

func (Custom) MarshalJSON() ([]byte, error) { return []byte("1"), nil }
func (*Custom) UnmarshalJSON([]byte) error  { return nil }

// Page is generic.
type Page[T any] struct {
	Items []T `json:"items"`
}

type Req struct {
	Amount *big.Int `json:"amount"` // has MarshalJSON
	C      Custom   `json:"c"`
}

//mqant:module
type Bad struct{}

func (b *Bad) Handler_Custom(ctx context.Context, req *Req) error           { return nil }
func (b *Bad) Handler_Generic(ctx context.Context) (*Page[int], error)      { return nil, nil }
func (b *Bad) Handler_Core(ctx context.Context) error                       { return nil }
func (b *Bad) Handler_OnNews(ctx context.Context) error                     { return nil }
func (b *Bad) Handler_Constructor(ctx context.Context) error                { return nil }
func (b *Bad) Handler_Fine(ctx context.Context, req *struct{ N int }) error { return nil }

// News clashes with Handler_OnNews in the client.
//
//mqant:push Bad/OnNews
type News struct{}

// Twice takes a topic already taken.
//
//mqant:push Bad/OnNews
type Twice struct{}

// Nobody names a module that is not here.
//
//mqant:push Nobody/OnX
type Nobody struct{}

// Malformed has no module part.
//
//mqant:push OnMalformed
type Malformed struct{}

// NotStruct is not a struct.
//
//mqant:push Bad/OnInt
type NotStruct int

// Chan cannot be JSON.
//
//mqant:push Bad/OnChan
type Chan struct {
	C chan int `json:"c"`
}

// Again takes a module type already taken.
//
//mqant:module Bad
type Again struct{}
