package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	t.Setenv("MQANTGEN_CHECK", "")
	var out, errb bytes.Buffer
	if code := run([]string{"-nope"}, &out, &errb); code != 2 {
		t.Errorf("usage error: exit %d, want 2", code)
	}
	errb.Reset()
	if code := run([]string{"-go=false", "."}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "without -web or -csharp") {
		t.Errorf("-go=false without -web: exit %d, %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"../../internal/gen/testdata/src/rejected"}, &out, &errb); code != 1 {
		t.Errorf("rule violations: exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "rejected.go:") || !strings.Contains(errb.String(), "problem(s)") {
		t.Errorf("stderr: %s", errb.String())
	}
}

func TestCheckAndWrite(t *testing.T) {
	t.Setenv("MQANTGEN_CHECK", "")
	// A scratch output directory inside the module, removed afterwards.
	dir, err := os.MkdirTemp(".", "scratch")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := "../../internal/gen/testdata/src/shapes"
	var out, errb bytes.Buffer
	if code := run([]string{"-check", "-out", dir, src}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "stale") {
		t.Fatalf("check before generating: exit %d, %s", code, errb.String())
	}
	if code := run([]string{"-v", "-out", dir, src}, &out, &errb); code != 0 {
		t.Fatalf("generate: exit %d, %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "shapes.mqant.go")); err != nil {
		t.Fatal(err)
	}
	// The client SDK alone, then checked like the Go code.
	web := filepath.Join(dir, "web")
	if code := run([]string{"-go=false", "-web", web, src}, &out, &errb); code != 0 {
		t.Fatalf("generate SDK: exit %d, %s", code, errb.String())
	}
	for _, f := range []string{"ts/shaper.ts", "ts/mqant.ts", "js/shaper.js", "js/shaper.d.ts", "js/mqant.js", "js/mqant.d.ts", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(web, f)); err != nil {
			t.Error(err)
		}
	}
	if code := run([]string{"-check", "-go=false", "-web", web, src}, &out, &errb); code != 0 {
		t.Fatalf("check SDK after generating: exit %d, %s", code, errb.String())
	}
	// The C# SDK alone (-csharp is wired like -web), then checked.
	cs := filepath.Join(dir, "cs")
	if code := run([]string{"-go=false", "-csharp", cs, src}, &out, &errb); code != 0 {
		t.Fatalf("generate C# SDK: exit %d, %s", code, errb.String())
	}
	for _, f := range []string{"Shaper.cs", "Runtime/MqantClient.cs", "Runtime/Mqtt.cs", "Runtime/Unity/MqantWebSocket.jslib"} {
		if _, err := os.Stat(filepath.Join(cs, f)); err != nil {
			t.Error(err)
		}
	}
	if code := run([]string{"-check", "-go=false", "-csharp", cs, src}, &out, &errb); code != 0 {
		t.Fatalf("check C# SDK after generating: exit %d, %s", code, errb.String())
	}
	errb.Reset()
	t.Setenv("MQANTGEN_CHECK", "1")
	if code := run([]string{"-out", dir, src}, &out, &errb); code != 0 {
		t.Fatalf("check after generating: exit %d, %s", code, errb.String())
	}
}
