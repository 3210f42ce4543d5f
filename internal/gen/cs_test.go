package gen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/internal/testkit/monotest"
)

// The C# SDK is compiled with Debian's mono compiler (mcs -langversion:7.2,
// warnings as errors), which make test installs. A missing mcs fails these
// tests; it is never a reason to skip.

// csSDK generates the C# SDK of patterns into dir and returns the outputs.
func csSDK(t testing.TB, dir string, opts Options) []Output {
	t.Helper()
	opts.CSharp, opts.NoGo = dir, true
	outs, err := Generate(opts)
	if err != nil {
		t.Fatalf("generate %v: %v", opts.Patterns, err)
	}
	if _, err := Write(outs, false); err != nil {
		t.Fatal(err)
	}
	return outs
}

// TestCSharpCompiles compiles the golden modules' C# with the runtime and a
// caller that uses every mapped type, with each JSON codec, and the demo's
// committed SDK.
func TestCSharpCompiles(t *testing.T) {
	dir := t.TempDir()
	csSDK(t, filepath.Join(dir, "sdk"), Options{Patterns: []string{"./testdata/src/web/...", "./testdata/src/csharp"}})
	srcs := monotest.Sources(t, filepath.Join(dir, "sdk"), "testdata/csharp/WebCaller.cs")
	monotest.MustCompile(t, monotest.Build{Out: filepath.Join(dir, "web.dll"), Sources: srcs})
	monotest.MustCompile(t, monotest.Build{Out: filepath.Join(dir, "web-newtonsoft.dll"), Sources: srcs,
		Defines: []string{"MQANT_NEWTONSOFT"}, Refs: []string{monotest.Newtonsoft}})
	// Alone, csharp.Item keeps its name and its field Item must be renamed.
	csSDK(t, filepath.Join(dir, "alone"), Options{Patterns: []string{"./testdata/src/csharp"}})
	monotest.MustCompile(t, monotest.Build{Out: filepath.Join(dir, "alone.dll"), Sources: monotest.Sources(t, filepath.Join(dir, "alone"))})
	monotest.MustCompile(t, monotest.Build{Out: filepath.Join(dir, "demo.dll"), Sources: monotest.Sources(t, "../../generated/csharp")})
}

// TestCSharpUnity compiles the Unity-only files (the WebGL transport, the
// demo's MonoBehaviour) against stand-in UnityEngine types, as the editor
// (UNITY_5_3_OR_NEWER) and as a WebGL player (UNITY_WEBGL, with the jslib
// imports) would.
func TestCSharpUnity(t *testing.T) {
	dir := t.TempDir()
	srcs := monotest.Sources(t, "../../generated/csharp", "../../demo/unity/ChatDemo.cs", "testdata/csharp/UnityEngineStubs.cs")
	for name, defines := range map[string][]string{
		"editor": {"UNITY_5_3_OR_NEWER", "UNITY_EDITOR"},
		"webgl":  {"UNITY_5_3_OR_NEWER", "UNITY_WEBGL"},
	} {
		monotest.MustCompile(t, monotest.Build{Out: filepath.Join(dir, name+".dll"), Sources: srcs, Defines: defines})
	}
	b, err := os.ReadFile("../../generated/csharp/Runtime/Unity/MqantWebSocket.jslib")
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"MqantWsOpen", "MqantWsState", "MqantWsSend", "MqantWsRecv", "MqantWsCloseCode", "MqantWsClose"} {
		if !bytes.Contains(b, []byte(fn+": function")) {
			t.Errorf("MqantWebSocket.jslib lacks %s, which WebGLTransport imports", fn)
		}
	}
}

// TestCSharpStaleCaller shows what the SDK is for: a C# caller written
// against one version of a Go request struct compiles; after a field of the
// struct is renamed and the SDK regenerated, the same caller fails to
// compile, naming the field.
func TestCSharpStaleCaller(t *testing.T) {
	src, err := os.ReadFile("testdata/src/stale/v1/greeter.go")
	if err != nil {
		t.Fatal(err)
	}
	build := func(name string, goSrc []byte) (string, bool) {
		mod := filepath.Join(t.TempDir(), "greeter")
		writeFile(t, filepath.Join(mod, "go.mod"), "module example.com/greeter\n\ngo 1.22\n")
		writeFile(t, filepath.Join(mod, "greeter.go"), string(goSrc))
		sdk := filepath.Join(mod, "cs")
		csSDK(t, sdk, Options{Dir: mod, Patterns: []string{"."}})
		return monotest.Compile(t, monotest.Build{Out: filepath.Join(mod, name+".dll"),
			Sources: monotest.Sources(t, sdk, "testdata/csharp/StaleCaller.cs")})
	}
	if out, ok := build("v1", src); !ok {
		t.Fatalf("caller against version 1 does not compile:\n%s", out)
	}
	renamed := bytes.Replace(src, []byte("Name string `json:\"name\"`"), []byte("FullName string `json:\"fullName\"`"), 1)
	if bytes.Equal(renamed, src) {
		t.Fatal("the request field to rename was not found")
	}
	out, ok := build("v2", renamed)
	if ok {
		t.Fatal("caller written for version 1 still compiles after the request field was renamed")
	}
	if !strings.Contains(out, "StaleCaller.cs") || !strings.Contains(out, "`name'") {
		t.Errorf("mcs failed, but not on the renamed field:\n%s", out)
	}
	t.Logf("mcs on the stale caller, as expected:\n%s", out)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
