// Package cycle declares its message type in the module's own package, so
// its code cannot be generated into another package.
package cycle

import "context"

type Local struct{ N int }

//mqant:module
type Cycle struct{}

func (c *Cycle) Handler_Local(ctx context.Context, req *Local) (*Local, error) { return nil, nil }

// Notice is a push declared in the module's own package.
//
//mqant:push Cycle/OnNotice
type Notice struct{ Text string }
