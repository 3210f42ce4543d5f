// Package web holds the chat demo's generated client SDK for game clients:
// ts/ (TypeScript), js/ (plain JavaScript ES modules with .d.ts) and
// manifest.json (every route and push with JSON Schemas). It is embedded so
// the demo's web server serves it under /mqant/generated/. mqantgen writes
// every file here except this one.
package web

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen -go=false -web . ../../demo/chat ../../demo/login

import "embed"

// Files is the SDK: ts/, js/ and manifest.json.
//
//go:embed ts js manifest.json
var Files embed.FS
