// Package gen is the mqantgen code generator: it loads Go packages, finds
// module structs marked //mqant:module and push types marked
// //mqant:push Module/Name, checks handler methods against the accepted
// shapes, and renders typed dispatch, typed clients, typed push senders and
// the module glue in Go, and, on request, a client SDK for game clients (TypeScript, plain
// JavaScript with .d.ts, and a route manifest with JSON Schemas; C# for
// Unity and Godot .NET games).
//
// The work is split by stage, each in its own file: load.go (go/packages),
// analyze.go and push.go (types -> model, with every rule violation
// collected), shape.go (the JSON form of the types clients see, following
// encoding/json's rules), model.go (plain structs the templates see; no
// go/ast or go/types inside, and nothing Go-specific in the client API's
// Shapes), render.go (Go: a view model of plain strings for the template, gofmt), render_ts.go (TypeScript and
// JavaScript), render_cs.go (C#), render_manifest.go (the manifest) and write.go (write only
// when changed).
package gen
