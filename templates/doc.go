// Package templates holds the mqantgen generator's text/template files,
// embedded so the generator binary needs nothing beside it.
package templates

import "embed"

// FS holds every *.tmpl file of this directory.
//
//go:embed *.tmpl
var FS embed.FS
