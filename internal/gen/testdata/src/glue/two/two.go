// Package two holds two modules: Own writes GetType, OnInit and its
// constructor itself (mqant style), so only its registration is generated;
// Bare writes nothing. With two modules in the package, the constructors
// and registrations carry the module's name.
package two

import (
	"context"

	"github.com/mqantgen/mqantgen/core"
)

// Own is an mqant-style module.
//
//mqant:module
type Own struct{ core.BaseModule }

// NewOwn returns an Own.
func NewOwn() core.Module { return &Own{} }

// GetType implements core.Module.
func (o *Own) GetType() string { return Own_Type }

// OnInit implements core.Module.
func (o *Own) OnInit(app *core.App, s *core.ModuleSettings) error {
	o.Init(app, s)
	RegisterOwnServer(o.RPCServer(), o)
	return nil
}

// Handler_Ping answers.
func (o *Own) Handler_Ping(ctx context.Context) (string, error) { return "pong", nil }

// Bare has no hook.
//
//mqant:module
type Bare struct{ core.BaseModule }

// Handler_Tick does nothing.
func (b *Bare) Handler_Tick(ctx context.Context) error { return nil }
