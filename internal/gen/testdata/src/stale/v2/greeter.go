// Package greeter, version 2: the request gained a required language, so
// version 1's TypeScript callers no longer type-check.
package greeter

import "context"

// GreetRequest is what a client sends.
type GreetRequest struct {
	Name     string `json:"name"`
	Language string `json:"language"`
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
