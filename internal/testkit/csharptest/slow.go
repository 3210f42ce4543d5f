package csharptest

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen .

import (
	"context"
	"time"

	"github.com/mqantgen/mqantgen/core"
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
	core.BaseModule
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
