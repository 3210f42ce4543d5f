package gen

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The client SDK's TypeScript is checked with the real tsc, pinned in
// testdata/ts/package.json and installed there by make test (npm ci). A
// missing tsc fails these tests: it is never a reason to skip.

const tsTools = "testdata/ts"

// tsc returns the absolute path of the pinned tsc, failing when it is
// missing or not the pinned version.
func tsc(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(tsTools)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "tsc")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("tsc is not installed (%v): run make ts-deps (npm ci --prefix internal/gen/testdata/ts)", err)
	}
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	var inst struct {
		Version string `json:"version"`
	}
	readJSON(t, filepath.Join(dir, "package.json"), &pkg)
	readJSON(t, filepath.Join(dir, "node_modules", "typescript", "package.json"), &inst)
	if want := pkg.DevDependencies["typescript"]; inst.Version != want {
		t.Fatalf("installed typescript is %s, package.json pins %s: run npm ci --prefix internal/gen/testdata/ts", inst.Version, want)
	}
	return bin
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// tsProject is a scratch directory for tsc: the pinned node_modules linked
// in, generated SDKs and fixtures copied in.
type tsProject struct {
	t   testing.TB
	dir string
}

func newTSProject(t testing.TB) *tsProject {
	t.Helper()
	dir := t.TempDir()
	nm, err := filepath.Abs(filepath.Join(tsTools, "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(nm, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	p := &tsProject{t: t, dir: dir}
	p.write("package.json", `{"type": "module", "private": true}`+"\n")
	return p
}

func (p *tsProject) write(rel, content string) {
	p.t.Helper()
	path := filepath.Join(p.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// fixture copies testdata/ts/fixtures/name into the project.
func (p *tsProject) fixture(name string) {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(tsTools, "fixtures", name))
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(name, string(b))
}

// sdk generates the client SDK of patterns into sub (ts/, js/, manifest.json).
func (p *tsProject) sdk(sub string, patterns ...string) []Output {
	p.t.Helper()
	outs, err := Generate(Options{Patterns: patterns, Web: filepath.Join(p.dir, sub), NoGo: true})
	if err != nil {
		p.t.Fatalf("generate %v: %v", patterns, err)
	}
	if _, err := Write(outs, false); err != nil {
		p.t.Fatal(err)
	}
	return outs
}

// copyDir copies the SDK in src (ts/, js/) into sub.
func (p *tsProject) copySDK(src, sub string) {
	p.t.Helper()
	for _, d := range []string{"ts", "js"} {
		files, err := filepath.Glob(filepath.Join(src, d, "*"))
		if err != nil || len(files) == 0 {
			p.t.Fatalf("no SDK files in %s/%s (%v)", src, d, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				p.t.Fatal(err)
			}
			p.write(sub+"/"+d+"/"+filepath.Base(f), string(b))
		}
	}
}

// tsconfig writes a strict tsconfig.json for files with extra compiler
// options (JSON members) merged in.
func (p *tsProject) tsconfig(name string, extra string, files ...string) {
	p.t.Helper()
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = `"` + f + `"`
	}
	p.write(name, `{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "noImplicitReturns": true,
    "noFallthroughCasesInSwitch": true,
    "noUncheckedIndexedAccess": true,
    "exactOptionalPropertyTypes": true,
    "noPropertyAccessFromIndexSignature": true,
    "verbatimModuleSyntax": true,
    "isolatedModules": true,
    "forceConsistentCasingInFileNames": true,
    `+extra+`
  },
  "files": [`+strings.Join(quoted, ", ")+`]
}
`)
}

// tsc runs tsc --strict on a tsconfig and returns its output and whether
// it passed.
func (p *tsProject) tsc(config string) (string, bool) {
	p.t.Helper()
	cmd := exec.Command(tsc(p.t), "--strict", "--noEmit", "--pretty", "false", "-p", config)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			p.t.Fatalf("run tsc: %v", err)
		}
		return string(out), false
	}
	return string(out), true
}

// TestTypeScriptStrict type-checks generated SDKs with tsc --strict: the
// golden module with every mapped Go type (TypeScript and the JavaScript's
// .d.ts), with no DOM or Node typings; and the demo's committed SDK over a
// real MQTT.js client, as a Node (nodenext) project.
func TestTypeScriptStrict(t *testing.T) {
	p := newTSProject(t)
	p.sdk("sdk", "./testdata/src/web/...")
	p.fixture("web_caller.ts")
	p.tsconfig("tsconfig.bare.json", `"module": "esnext", "moduleResolution": "bundler", "lib": ["es2022"], "types": []`,
		"web_caller.ts", "sdk/ts/web.ts", "sdk/ts/mqant.ts", "sdk/js/web.d.ts", "sdk/js/mqant.d.ts")
	if out, ok := p.tsc("tsconfig.bare.json"); !ok {
		t.Errorf("golden SDK: tsc --strict failed:\n%s", out)
	}

	demo := newTSProject(t)
	demo.copySDK("../../generated/web", "sdk")
	demo.fixture("demo_mqttjs.ts")
	demo.tsconfig("tsconfig.node.json", `"module": "nodenext", "moduleResolution": "nodenext", "lib": ["es2022", "dom"], "types": ["node"]`,
		"demo_mqttjs.ts", "sdk/ts/chat.ts", "sdk/ts/login.ts", "sdk/js/chat.d.ts", "sdk/js/login.d.ts")
	if out, ok := demo.tsc("tsconfig.node.json"); !ok {
		t.Errorf("demo SDK with MQTT.js: tsc --strict failed:\n%s", out)
	}
}

// TestTypeScriptStaleCaller shows what the SDK is for: a TypeScript caller
// written against one version of a Go request struct type-checks; after the
// struct changes and the SDK is regenerated, the same caller fails tsc.
func TestTypeScriptStaleCaller(t *testing.T) {
	p := newTSProject(t)
	p.fixture("stale_caller.ts")
	p.tsconfig("tsconfig.json", `"module": "esnext", "moduleResolution": "bundler", "lib": ["es2022"], "types": []`, "stale_caller.ts")

	v1 := p.sdk("sdk", "./testdata/src/stale/v1")
	if out, ok := p.tsc("tsconfig.json"); !ok {
		t.Fatalf("caller against version 1: tsc failed:\n%s", out)
	}
	v2 := p.sdk("sdk", "./testdata/src/stale/v2")
	ts := func(outs []Output) []byte {
		for _, o := range outs {
			if strings.HasSuffix(o.Path, filepath.Join("ts", "greeter.ts")) {
				return o.Content
			}
		}
		t.Fatal("no greeter.ts generated")
		return nil
	}
	if bytes.Equal(ts(v1), ts(v2)) {
		t.Fatal("changing the request struct did not change the TypeScript")
	}
	if !bytes.Contains(ts(v2), []byte("  language: string;\n")) {
		t.Errorf("version 2's TypeScript lacks the new field:\n%s", ts(v2))
	}
	out, ok := p.tsc("tsconfig.json")
	if ok {
		t.Fatal("caller written for version 1 still type-checks against version 2")
	}
	if !strings.Contains(out, "stale_caller.ts") || !strings.Contains(out, "'language'") {
		t.Errorf("tsc failed, but not on the missing field:\n%s", out)
	}
	t.Logf("tsc on the stale caller, as expected:\n%s", out)
}

// TestSDKRuntimeIsTscOutput checks that the runtime's JavaScript and
// declarations (templates/sdk/mqant.js, mqant.d.ts, and mqant-link's, which
// mqant.ts imports) are tsc's output for mqant.ts, so they never drift
// apart. -update rewrites them.
func TestSDKRuntimeIsTscOutput(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(tsc(t), "--strict", "--target", "es2022", "--module", "es2022", "--lib", "es2022",
		"--types", "", "--declaration", "--pretty", "false", "--outDir", out, "../../templates/sdk/mqant.ts")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc mqant.ts: %v\n%s", err, b)
	}
	for _, name := range []string{"mqant.js", "mqant.d.ts", "mqant-link.js", "mqant-link.d.ts"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "templates", "sdk", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not tsc's output for mqant.ts (go test ./internal/gen -run TestSDKRuntimeIsTscOutput -update rewrites it)", path)
		}
	}
}

// TestSDKRuntimeInNode runs the generated JavaScript client in Node against
// a scripted connection: msgids, replies, the server's errors as rejected
// promises, timeouts, aborts, pushes, and module clients sharing one
// connection (testdata/ts/runtime.test.mjs).
func TestSDKRuntimeInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	p := newTSProject(t)
	p.sdk("sdk", "./testdata/src/web/...")
	script, err := filepath.Abs(filepath.Join(tsTools, "runtime.test.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--test", "--test-reporter=spec", script)
	cmd.Env = append(os.Environ(), "MQANT_SDK_JS="+filepath.Join(p.dir, "sdk", "js"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
