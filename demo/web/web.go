// Package web holds the chat demo's browser client, embedded so the demo
// server serves it from any working directory, together with the client SDK
// mqantgen generates for the demo (generated/web) under /mqant/generated/.
package web

import (
	"embed"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	sdk "github.com/mqantgen/mqantgen/generated/web"
)

// Files is the web client: index.html, its script and style, and the
// vendored MQTT.js with its licence (see VENDORED.md).
//
//go:embed *.html *.js *.css mqtt.LICENSE.txt VENDORED.md
var Files embed.FS

// Handler serves the client under /mqant/ and redirects / to the page.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mqant/", http.StripPrefix("/mqant/", http.FileServerFS(Files)))
	mux.Handle("/mqant/generated/", http.StripPrefix("/mqant/generated/", typeScriptAsText(http.FileServerFS(SDK()))))
	// The file server would redirect /mqant/index.html to /mqant/; the page
	// has been announced under its full name, so serve it there directly.
	mux.HandleFunc("/mqant/index.html", serveIndex)
	mux.Handle("/", http.RedirectHandler("/mqant/index.html", http.StatusFound))
	return mux
}

func serveIndex(w http.ResponseWriter, r *http.Request) {
	f, err := Files.Open("index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	// Embedded files have no modification time; ServeContent then sends no
	// Last-Modified, and the content type comes from the name.
	http.ServeContent(w, r, "index.html", time.Time{}, f.(io.ReadSeeker))
}

// SDK returns the generated client SDK: ts/, js/ and manifest.json.
func SDK() fs.FS { return sdk.Files }

// typeScriptAsText serves .ts files as text: the extension is MPEG
// transport stream to the mime package.
func typeScriptAsText(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".ts") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		h.ServeHTTP(w, r)
	})
}
