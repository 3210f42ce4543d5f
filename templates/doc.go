// Package templates holds the mqantgen generator's text/template files and
// the client SDK's runtime (sdk/mqant.ts and the mqant-link.ts it imports,
// and their .js and .d.ts, which are tsc's output for them) and the C# SDK's
// runtime (sdk/csharp), embedded so the generator binary needs nothing
// beside it.
package templates

import "embed"

// FS holds every *.tmpl file of this directory and the SDK runtimes.
//
//go:embed *.tmpl sdk/mqant.ts sdk/mqant.js sdk/mqant.d.ts sdk/mqant-link.ts sdk/mqant-link.js sdk/mqant-link.d.ts sdk/csharp
var FS embed.FS
