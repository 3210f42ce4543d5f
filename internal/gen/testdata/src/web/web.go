// Package web is the module of the client SDK golden test.
package web

import (
	"context"

	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/gen/testdata/src/web/webapi"
)

// Web is a module whose handlers use every mapped type.
//
//mqant:module
type Web struct{}

// Handler_Kinds echoes every kind of field.
func (w *Web) Handler_Kinds(ctx context.Context, s *gate.Session, req *webapi.Kinds) (*webapi.Kinds, error) {
	return req, nil
}

// Handler_Envelope takes embedded structs and answers a list.
func (w *Web) Handler_Envelope(ctx context.Context, req *webapi.Envelope) ([]webapi.Item, error) {
	return nil, nil
}

// Handler_Map takes a map and answers a map.
func (w *Web) Handler_Map(req map[string]int) (map[string][]string, error) { return nil, nil }

// Handler_Item answers an item that is always there.
//
//mqant:nonnull
func (w *Web) Handler_Item(ctx context.Context) (*webapi.Item, error) { return &webapi.Item{}, nil }

// Handler_Score answers a number that is always there.
//
//mqant:nonnull
func (w *Web) Handler_Score() (*int, error) { n := 1; return &n, nil }

// Handler_Names answers a list that is always there.
//
//mqant:nonnull
func (w *Web) Handler_Names() ([]string, error) { return []string{}, nil }

// Handler_Bare takes nothing and answers nothing.
func (w *Web) Handler_Bare() error { return nil }

// Handler_Count answers a number.
func (w *Web) Handler_Count(ctx context.Context) (int, error) { return 0, nil }

// Handler_Legacy is mqant's legacy shape.
func (w *Web) Handler_Legacy(session map[string]interface{}, msg map[string]interface{}) (string, string) {
	return "", ""
}

// Handler_HTTPGet checks the naming of initialisms.
func (w *Web) Handler_HTTPGet(ctx context.Context) (string, error) { return "", nil }

// Lookup is module-to-module only: not in the client SDK.
//
//mqant:rpc
func (w *Web) Lookup(ctx context.Context, id int) (*webapi.Item, error) { return nil, nil }
