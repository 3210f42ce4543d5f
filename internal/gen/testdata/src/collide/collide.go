// Package collide uses two packages both named api, and one named like an
// identifier the generated code uses.
package collide

import (
	"context"

	aapi "github.com/mqantgen/mqantgen/internal/gen/testdata/src/collide/a/api"
	"github.com/mqantgen/mqantgen/internal/gen/testdata/src/collide/b/api"
)

//mqant:module
type Collide struct{}

func (c *Collide) Handler_Both(ctx context.Context, req *aapi.Req) (*api.Reply, error) {
	return nil, nil
}

//mqant:rpc
func (c *Collide) Mixed(ctx context.Context, in aapi.Req, api api.Reply, req string) (map[string]*api.Reply, error) {
	return nil, nil
}
