// Package gluebad declares a setup hook of the wrong shape.
package gluebad

import (
	"context"

	"github.com/mqantgen/mqantgen/core"
)

// Bad's Setup lacks the settings.
//
//mqant:module
type Bad struct{ core.BaseModule }

// Setup has the wrong signature.
func (b *Bad) Setup(app *core.App) error { return nil }

// Handler_Tick does nothing.
func (b *Bad) Handler_Tick(ctx context.Context) error { return nil }
