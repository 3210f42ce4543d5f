package core

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer is a process's admin HTTP listener: /metrics (Prometheus
// text format), the live console at /console/ and, when enabled,
// /debug/pprof/. Read-only; with a token, every request must carry it.
type adminServer struct {
	ln  net.Listener
	srv *http.Server
}

func startAdmin(cfg AdminConfig, reg *prometheus.Registry, agg *aggregator, log *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	if agg != nil {
		ch := consoleHandler(agg)
		mux.Handle("/console/", ch)
		mux.Handle("/console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	}
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	var h http.Handler = mux
	if cfg.Token != "" {
		want := []byte("Bearer " + cfg.Token)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The console's static page holds no data and a browser cannot
			// send a header when it navigates: the page asks for the token
			// and sends it with every request for data.
			if p := path.Clean(r.URL.Path); agg != nil && strings.HasPrefix(p, "/console") && !strings.HasPrefix(p, "/console/api") {
				mux.ServeHTTP(w, r)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
				http.Error(w, "admin: token required", http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	a := &adminServer{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener failed", "err", err)
		}
	}()
	log.Info("admin listening", "addr", ln.Addr().String(), "pprof", cfg.Pprof, "token", cfg.Token != "")
	return a, nil
}

func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

// AdminAddr returns the admin listener's address, or nil when there is none.
func (a *App) AdminAddr() net.Addr {
	if a.admin == nil {
		return nil
	}
	return a.admin.ln.Addr()
}
