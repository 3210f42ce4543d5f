package core

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"
)

// The console page: static files embedded in the binary (no CDN, no build
// step), polling /console/api/state once a second.
//
//go:embed consoleui
var consoleFiles embed.FS

// consoleHandler serves the page under /console/ and the state at
// /console/api/state. The admin listener's token guards both; the page
// sends it as the Authorization header of its requests.
func consoleHandler(agg *aggregator) http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(consoleFiles, "consoleui")
	files := http.StripPrefix("/console/", http.FileServer(http.FS(sub)))
	mux.Handle("/console/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page holds no secret, but nothing here is for other sites.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("/console/api/state", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "console: read-only, use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(agg.state(time.Now()))
	})
	return mux
}
