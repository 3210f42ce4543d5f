// Command server runs the chat demo: Gate, Login and Chat modules, and a web
// server for the browser client.
//
//	go run ./demo/server                      # everything, in-process RPC
//	go run ./demo/server -conf cluster.conf -pid gate1 -admin 127.0.0.1:8687
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/chat"
	"github.com/mqantgen/mqantgen/demo/login"
	"github.com/mqantgen/mqantgen/demo/web"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/mqant"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run() error {
	opts := mqant.Flags(flag.CommandLine, "demo/conf/server.conf")
	webAddr := flag.String("web", "127.0.0.1:8080", "address of the web client's HTTP server; empty to disable")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof under /debug/pprof/ on this address, such as 127.0.0.1:6060 (keep it on loopback: profiles show internals); empty: off")
	flag.Parse()
	o, err := opts()
	if err != nil {
		return err
	}
	slog.SetDefault(o.Logger)

	if *pprofAddr != "" {
		srv, err := servePprof(*pprofAddr, o.Logger)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	if *webAddr != "" {
		srv, err := serveWeb(*webAddr, o.Logger)
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	return mqant.Run(context.Background(), o, func(app *core.App) {
		app.Register(gate.Gate_Type, gate.New())
		login.Register(app)
		chat.Register(app)
	})
}

// servePprof serves the runtime profiles on their own mux, so nothing else
// (the web client) exposes them by accident.
func servePprof(addr string, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "err", err)
		}
	}()
	log.Info("pprof", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return srv, nil
}

// serveWeb serves the browser client under /mqant/.
func serveWeb(addr string, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: web.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web server stopped", "err", err)
		}
	}()
	log.Info("web client", "url", "http://"+ln.Addr().String()+"/mqant/index.html")
	return srv, nil
}
