package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/mqantgen/mqantgen/core"
)

// Router is the transport of a process whose config names brokers: the
// global Rabbitmq section and any per-instance overrides. It keeps one
// connection per distinct broker and sends each call to the broker of its
// target: an instance's own broker for an addressed call, the broker that
// the instances of a type share for a load-balanced one.
type Router struct {
	all    []*Transport
	byInst map[string]*Transport
	byType map[string]*Transport
}

// ForConfig returns the Router for cfg. It fails when the instances of one
// type use different brokers (a call to the type could not reach them all)
// or when no broker is configured at all.
func ForConfig(cfg *core.Config, log *slog.Logger) (*Router, error) {
	global := ""
	if cfg.Rabbitmq != nil {
		global = cfg.Rabbitmq.URI
	}
	uriOf := func(m *core.ModuleSettings) string {
		if m.Rabbitmq != nil {
			return m.Rabbitmq.URI
		}
		return global
	}
	typeURI := map[string]string{}
	var errs []error
	uris := map[string]bool{}
	for _, m := range cfg.Modules {
		u := uriOf(m)
		if u == "" {
			errs = append(errs, fmt.Errorf("module %s: no Rabbitmq section, global or its own, to reach it from other processes", m.ID))
			continue
		}
		uris[u] = true
		if prev, ok := typeURI[m.Type]; ok && prev != u {
			errs = append(errs, fmt.Errorf("module type %s: its instances use different brokers (%s, %s); calls to the type could not reach them all", m.Type, redact(prev), redact(u)))
		}
		typeURI[m.Type] = u
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	list := make([]string, 0, len(uris))
	for u := range uris {
		list = append(list, u)
	}
	sort.Strings(list)
	r := &Router{byInst: map[string]*Transport{}, byType: map[string]*Transport{}}
	byURI := map[string]*Transport{}
	for _, u := range list {
		t := New(u, log)
		byURI[u] = t
		r.all = append(r.all, t)
	}
	for _, m := range cfg.Modules {
		r.byInst[m.ID] = byURI[uriOf(m)]
		r.byType[m.Type] = byURI[uriOf(m)]
	}
	return r, nil
}

// WaitReady waits until every broker connection is up once.
func (r *Router) WaitReady(ctx context.Context) error {
	for _, t := range r.all {
		if err := t.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) pick(to core.Target) *Transport {
	if to.ID != "" {
		return r.byInst[to.ID]
	}
	return r.byType[to.Type]
}

// BrokerOf returns the broker (password hidden) a call to the target goes
// through, or "" when no configured instance matches.
func (r *Router) BrokerOf(to core.Target) string {
	if t := r.pick(to); t != nil {
		return redact(t.uri)
	}
	return ""
}

// Listen implements core.Transport.
func (r *Router) Listen(typ, id string, ep core.Endpoint) (io.Closer, error) {
	t := r.byInst[id]
	if t == nil {
		return nil, core.Errorf(core.ErrTransport, "rabbitmq: instance %s is not in the config", id)
	}
	return t.Listen(typ, id, ep)
}

// Invoke implements core.Transport.
func (r *Router) Invoke(ctx context.Context, to core.Target, req *core.Request) (core.Reply, error) {
	t := r.pick(to)
	if t == nil {
		return core.Reply{}, notFound(to)
	}
	return t.Invoke(ctx, to, req)
}

// Reaches implements core.Transport.
func (r *Router) Reaches(to core.Target) bool {
	t := r.pick(to)
	return t != nil && t.Connected()
}

// Close implements core.Transport.
func (r *Router) Close() error {
	for _, t := range r.all {
		_ = t.Close()
	}
	return nil
}

// String lists the brokers, passwords hidden.
func (r *Router) String() string {
	var s []string
	for _, t := range r.all {
		s = append(s, redact(t.uri))
	}
	return strings.Join(s, ", ")
}
