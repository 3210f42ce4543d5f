// Package rpctest is a module for transport tests: each handler exercises
// one RPC behaviour (typed results, byte arguments, errors, panics, slow
// handlers, no-reply calls) and reports which instance served it. Its
// dispatch and client are generated, as in any real module.
package rpctest

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen .

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/gate"
)

// EchoRequest is Echo's request.
type EchoRequest struct {
	Text string `json:"text"`
}

// EchoReply says what was echoed, by which instance, for which session.
type EchoReply struct {
	Text     string `json:"text"`
	Instance string `json:"instance"`
	Session  string `json:"session"`
	User     string `json:"user"`
}

// Probe is the test module.
//
//mqant:module
type Probe struct {
	core.BaseModule

	Served   atomic.Int64 // calls run, all handlers
	SlowRan  atomic.Int64 // Slow calls that started running
	SlowDone atomic.Int64 // Slow calls that returned
	mu       sync.Mutex
	notes    []string
}

// Notes returns the texts Note received.
func (p *Probe) Notes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.notes...)
}

// Handler_Echo echoes the text with the serving instance's id.
func (p *Probe) Handler_Echo(ctx context.Context, s *gate.Session, req *EchoRequest) (*EchoReply, error) {
	p.Served.Add(1)
	return &EchoReply{Text: req.Text, Instance: p.GetServerID(), Session: s.GetSessionID(), User: s.GetUserID()}, nil
}

// Handler_Legacy is mqant's legacy map shape (PROTOCOL.md): it answers
// with the session map and the message it got, as JSON text, or with the
// error text msg["fail"].
func (p *Probe) Handler_Legacy(session map[string]interface{}, msg map[string]interface{}) (string, string) {
	p.Served.Add(1)
	if f, ok := msg["fail"].(string); ok {
		return "", f
	}
	b, err := json.Marshal(map[string]any{"session": session, "msg": msg})
	if err != nil {
		return "", err.Error()
	}
	return string(b), ""
}

// Handler_Fail returns an error with the request's text.
func (p *Probe) Handler_Fail(ctx context.Context, req *EchoRequest) (*EchoReply, error) {
	p.Served.Add(1)
	return nil, errors.New("failed: " + req.Text)
}

// Handler_Panic panics.
func (p *Probe) Handler_Panic(ctx context.Context) error {
	p.Served.Add(1)
	panic("probe panic with a secret")
}

// Bytes returns its byte argument reversed and its length, to show byte
// slices keep their type across the wire.
//
//mqant:rpc
func (p *Probe) Bytes(ctx context.Context, b []byte, tag string) ([]byte, error) {
	p.Served.Add(1)
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return append(out, []byte(tag)...), nil
}

// Slow waits ms milliseconds, or until the caller's deadline.
//
//mqant:rpc
func (p *Probe) Slow(ctx context.Context, ms int) (string, error) {
	p.SlowRan.Add(1)
	defer p.SlowDone.Add(1)
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return "slept", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// SlowSync is Slow on the module's single goroutine: calls queue behind it.
//
//mqant:rpc
//mqant:sync
func (p *Probe) SlowSync(ctx context.Context, ms int) (string, error) {
	return p.Slow(ctx, ms)
}

// Note records a text; callers use NoteNR.
//
//mqant:rpc
func (p *Probe) Note(ctx context.Context, text string) error {
	p.mu.Lock()
	p.notes = append(p.notes, text)
	p.mu.Unlock()
	return nil
}
