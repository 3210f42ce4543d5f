// Package web holds the chat demo's browser client, embedded so the demo
// server serves it from any working directory.
package web

import (
	"embed"
	"net/http"
)

// Files is the web client: index.html, its script and style, and the
// vendored MQTT.js.
//
//go:embed *.html *.js *.css
var Files embed.FS

// Handler serves the client under /mqant/ and redirects / to the page.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mqant/", http.StripPrefix("/mqant/", http.FileServerFS(Files)))
	mux.Handle("/", http.RedirectHandler("/mqant/index.html", http.StatusFound))
	return mux
}
