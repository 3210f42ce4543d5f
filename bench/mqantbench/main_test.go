package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/bench/loadgen"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

// TestJSON runs the command against the chat demo and decodes its -json
// summary.
func TestJSON(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-url", "tcp://" + d.TCPAddr, "-conns", "3", "-inflight", "2",
		"-duration", "300ms", "-warmup", "100ms", "-login", "-room", "r-{user}",
		"-topic", "Chat/Handler_Say", "-payload", `{"roomName":"{room}","say":"hi"}`, "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var s loadgen.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, stdout.String())
	}
	if s.Mode != loadgen.ModeRR || s.Connected != 3 || s.Requests == 0 || s.Replies != s.Requests || s.Errors != 0 || s.Latency.P99 <= 0 {
		t.Errorf("summary %+v: want 3 connections, every request answered, no errors", s)
	}
	for _, key := range []string{`"throughput"`, `"latency_ms"`, `"p99_9"`, `"timeouts"`} {
		if !strings.Contains(stdout.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, stdout.String())
		}
	}
}

// TestUsage: bad flags and configs exit 2 with a message, before connecting.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-mode", "nope"}, `-mode "nope": want rr, rt, idle, broadcast or chat`},
		{[]string{"-url", "http://127.0.0.1:1"}, `scheme "http"`},
		{[]string{"-conns", "x"}, "invalid value"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("mqantbench %q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestConnectFailure: when no connection can be set up the command says why
// and exits 1.
func TestConnectFailure(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-url", "tcp://127.0.0.1:1", "-conns", "2", "-quiet"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "no connection could be set up") || !strings.Contains(stdout.String(), "2 failed") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 1, a summary with 2 failed and the reason", code, stdout.String(), stderr.String())
	}
}

// TestMark: -mark runs its command as the measured time begins and ends,
// telling which; a failing one fails the run with its phase.
func TestMark(t *testing.T) {
	leakcheck.Check(t)
	d := demotest.Start(t, nil)
	log := filepath.Join(t.TempDir(), "marks")
	args := []string{"-url", "tcp://" + d.TCPAddr, "-conns", "2", "-duration", "200ms", "-warmup", "50ms", "-quiet"}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), append(args, "-mark", `echo "$MQANTBENCH_MARK" >> `+log), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if b, err := os.ReadFile(log); err != nil || string(b) != "start\nend\n" {
		t.Errorf("marks %q (%v), want start then end", b, err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), append(args, "-mark", `test "$MQANTBENCH_MARK" = start`), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "-mark at the end of the measured time: exit status 1") {
		t.Errorf("a mark failing at the end: exit %d, stderr %q; want 1 and the phase", code, stderr.String())
	}
}
