//go:build chaoshook

package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/generated/chatgen"
	"github.com/mqantgen/mqantgen/generated/logingen"
	"github.com/mqantgen/mqantgen/internal/testkit/chaos"
)

// Built with -tags chaoshook (the chaos test does), the server logs each
// execution of Login.Handler_Login and Chat.Handler_Say whose payload
// carries a "chaosId", before the handler runs. The chaos test counts these
// lines per id across every log a module's processes wrote, including those
// of processes it killed, to find calls that ran twice. The handlers ignore
// the extra field. Normal builds do not contain this file.
func init() {
	logExecutions(&logingen.ModuleDesc, logingen.Login_MethodName)
	logExecutions(&chatgen.ModuleDesc, chatgen.Say_MethodName)
}

func logExecutions(d *core.ModuleDesc, fn string) {
	for i := range d.Methods {
		m := &d.Methods[i]
		if m.Name != fn {
			continue
		}
		h := m.Handler
		m.Handler = func(srv any, ctx context.Context, inv core.Invoker, req *core.Request) (any, error) {
			var p struct {
				ChaosID string `json:"chaosId"`
			}
			if json.Unmarshal(req.Raw, &p) == nil && p.ChaosID != "" {
				slog.Info(chaos.ExecLine, "fn", fn, "chaosId", p.ChaosID)
			}
			return h(srv, ctx, inv, req)
		}
	}
}
