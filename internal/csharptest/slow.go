package csharptest

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen .

import (
	"context"
	"time"

	"github.com/mqantgen/mqantgen/runtime"
)

// WaitRequest says how long Wait takes.
type WaitRequest struct {
	Ms int `json:"ms"`
}

// WaitReply says how long Wait took.
type WaitReply struct {
	Waited int `json:"waited"`
}

// Slow answers after a delay the client chooses.
//
//mqant:module
type Slow struct {
	runtime.BaseModule
}

// New returns a Slow for App.Register.
func New() runtime.Module { return &Slow{} }

// GetType implements runtime.Module.
func (s *Slow) GetType() string { return Slow_Type }

// OnInit implements runtime.Module.
func (s *Slow) OnInit(app *runtime.App, settings *runtime.ModuleSettings) error {
	s.Init(app, settings)
	RegisterSlowServer(s.RPCServer(), s)
	return nil
}

// Handler_Wait answers after req.Ms milliseconds, or fails when the call's
// deadline comes first.
func (s *Slow) Handler_Wait(ctx context.Context, req *WaitRequest) (*WaitReply, error) {
	t := time.NewTimer(time.Duration(req.Ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return &WaitReply{Waited: req.Ms}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
