// Package benchmod is a module written for the benchmarks: one handler of
// the usual shape, generated into this package, so dispatch and in-process
// calls can be measured without the chat demo's logic.
package benchmod

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen .

import (
	"context"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/gate"
)

// EchoRequest is the request.
type EchoRequest struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

// EchoReply is the reply.
type EchoReply struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

// Echo answers every request with one shared reply, so the benchmarks see
// the cost of dispatch and transport, not of the handler's own allocations.
//
//mqant:module
type Echo struct {
	core.BaseModule
	reply EchoReply
}

// Setup prepares the shared reply; the generated OnInit calls it.
func (e *Echo) Setup(*core.App, *core.ModuleSettings) error {
	e.reply = EchoReply{N: 1, Text: "pong"}
	return nil
}

// Handler_Work is a Chat-like handler for the end-to-end benchmarks: it
// takes the client's session and a decoded request and returns a reply
// built from them.
func (e *Echo) Handler_Work(ctx context.Context, s *gate.Session, req *EchoRequest) (*EchoReply, error) {
	return &EchoReply{N: req.N + 1, Text: s.GetUserID() + req.Text}, nil
}

// Handler_Echo returns the shared reply.
func (e *Echo) Handler_Echo(ctx context.Context, req *EchoRequest) (*EchoReply, error) {
	return &e.reply, nil
}
