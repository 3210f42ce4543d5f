// Package shapes has one module with every accepted method shape.
package shapes

import (
	"context"

	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/gen/testdata/src/shapes/api"
)

// Base is embedded: its Handler_ methods are the module's too.
type Base struct{}

func (Base) Handler_Ping(ctx context.Context) (string, error) { return "pong", nil }

// Shapes exercises every accepted shape.
//
//mqant:module Shaper
type Shapes struct {
	Base
}

func (s *Shapes) Handler_Full(ctx context.Context, sess *gate.Session, req *api.Req) (*api.Reply, error) {
	return nil, nil
}

func (s *Shapes) Handler_NoCtx(sess *gate.Session, req *api.Req) (*api.Reply, error) { return nil, nil }

func (s *Shapes) Handler_NoSession(ctx context.Context, req *api.Req) (string, error) { return "", nil }

func (s *Shapes) Handler_Bare() error { return nil }

func (s *Shapes) Handler_Leave(sess *gate.Session) error { return nil }

func (s *Shapes) Handler_Map(ctx context.Context, req map[string]interface{}) (map[string]int, error) {
	return nil, nil
}

func (s *Shapes) Handler_Legacy(session map[string]interface{}, msg map[string]interface{}) (result string, err string) {
	return "", ""
}

// A value receiver.
func (s Shapes) Handler_Value(ctx context.Context, req *api.Req) ([]int, error) { return nil, nil }

// Handler_Stats returns a flat struct: its JSON writer is generated.
func (s *Shapes) Handler_Stats(ctx context.Context) (*api.Stats, error) { return nil, nil }

// Handler_Score returns a struct with a float: the codec writes it.
func (s *Shapes) Handler_Score(ctx context.Context) (*api.Score, error) { return nil, nil }

// Handler_Tick runs on the module's single goroutine.
//
//mqant:sync
func (s *Shapes) Handler_Tick(ctx context.Context) error { return nil }

// Lookup is for other modules only, with several arguments.
//
//mqant:rpc
func (s *Shapes) Lookup(ctx context.Context, uid string, withFriends bool) (*api.User, error) {
	return nil, nil
}

// Count takes nothing.
//
//mqant:rpc
//mqant:sync
func (s *Shapes) Count() (int, error) { return 0, nil }

// Notify takes a session and a value.
//
//mqant:rpc
func (s *Shapes) Notify(ctx context.Context, sess *gate.Session, note string) error { return nil }

// Helper is neither a handler nor marked: not generated.
func (s *Shapes) Helper() {}
