// Package greeter, version 1: the request has a name.
package greeter

import "context"

// GreetRequest is what a client sends.
type GreetRequest struct {
	Name string `json:"name"`
}

// GreetReply is what it gets back.
type GreetReply struct {
	Text string `json:"text"`
}

//mqant:module
type Greeter struct{}

// Handler_Greet greets.
func (g *Greeter) Handler_Greet(ctx context.Context, req *GreetRequest) (*GreetReply, error) {
	return &GreetReply{Text: "hello " + req.Name}, nil
}
