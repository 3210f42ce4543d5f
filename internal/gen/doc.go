// Package gen is the mqantgen code generator: it loads Go packages, finds
// module structs marked //mqant:module, checks their handler methods against
// the accepted shapes, and renders typed dispatch and typed clients.
//
// The work is split by stage, each in its own file: load.go (go/packages),
// analyze.go (types -> model, with every rule violation collected), model.go
// (plain structs the templates see; no go/ast or go/types inside),
// render.go (templates, gofmt) and write.go (write only when changed).
package gen
