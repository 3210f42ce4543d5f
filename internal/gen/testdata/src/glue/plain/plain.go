// Package plain is a module as small as it gets: the annotation, the struct
// and its handlers, with a Setup hook; the generator writes the rest.
package plain

import (
	"context"

	"github.com/mqantgen/mqantgen/core"
)

// Plain counts.
//
//mqant:module
type Plain struct {
	core.BaseModule
	start int
}

// Setup is called by the generated OnInit.
func (p *Plain) Setup(app *core.App, settings *core.ModuleSettings) error {
	p.start = 1
	return nil
}

// Handler_Count returns where counting starts.
func (p *Plain) Handler_Count(ctx context.Context) (int, error) { return p.start, nil }
