package csharptest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/gen"
	"github.com/mqantgen/mqantgen/internal/testkit/monotest"
)

// TestCSharpClientAgainstGate compiles the demo's committed C# SDK, the
// Slow module's client and testdata/ChatProgram.cs with mcs, then runs the
// program with mono against a real gate: over TCP with the zero-dependency
// JSON codec and over WebSocket with Newtonsoft.Json, both at once. Each run
// logs in, gets a remote error with its code, joins, says, receives typed
// pushes from another user, sends a no-reply call, has a call time out
// against a slow handler while keep-alive pings hold the connection, and
// sees its calls fail once closed.
func TestCSharpClientAgainstGate(t *testing.T) {
	_, mono := monotest.Tools(t)
	dir := t.TempDir()
	outs, err := gen.Generate(gen.Options{Patterns: []string{"."}, CSharp: filepath.Join(dir, "slow"), NoGo: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Write(outs, false); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "ChatProgram.exe")
	monotest.MustCompile(t, monotest.Build{Out: exe, Exe: true,
		Defines: []string{"MQANT_NEWTONSOFT"}, Refs: []string{monotest.Newtonsoft},
		Sources: monotest.Sources(t, "../../../generated/csharp", filepath.Join(dir, "slow", "Slow.cs"), "testdata/ChatProgram.cs")})
	b, err := os.ReadFile(monotest.Newtonsoft)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Newtonsoft.Json.dll"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	d := demotest.StartWith(t, demotest.Options{Extras: []demotest.Extra{{Type: Slow_Type, New: func() core.Module { return New() }}}})
	for _, tc := range []struct{ name, transport, addr, codec string }{
		{"tcp", "tcp", d.TCPAddr, "mini"},
		{"ws", "ws", d.WSAddr, "newtonsoft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			cmd := exec.CommandContext(ctx, mono, "--debug", exe, tc.transport, tc.addr, tc.codec, tc.name)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			t.Logf("mono ChatProgram.exe %s %s (%v):\n%s", tc.transport, tc.codec, time.Since(start).Round(time.Millisecond), out)
			if err != nil {
				t.Fatalf("the C# program failed: %v", err)
			}
			lines := string(out)
			for _, want := range []string{
				"OK connect " + tc.transport + " " + tc.codec,
				"OK login login success alice-" + tc.name,
				"OK remote-error Remote error Not Logined on Chat/Handler_JoinChat/",
				"OK join join success",
				"OK push-join bob-" + tc.name + " room-" + tc.name,
				"OK say say success",
				"OK push-say bob-" + tc.name + ": hello from bob",
				"OK nr no reply needed",
				"OK timeout Timeout after >= 2000 ms: no reply on Slow/Handler_Wait/",
				"OK say-after-idle say success",
				"OK slow 1",
				"OK push-leave bob-" + tc.name + " room-" + tc.name,
				"OK closed Closed",
				"DONE",
			} {
				if !strings.Contains(lines, "\n"+want) && !strings.HasPrefix(lines, want) {
					t.Errorf("missing %q", want)
				}
			}
		})
	}
}
