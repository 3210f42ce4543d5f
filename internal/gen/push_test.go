package gen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Naming the module's package without webapi, where its push types are
// declared, finds them through the module's imports: the SDK and the Go
// senders are the web golden's, where the pushes once went missing without
// a word. (other is named: webapi imports it, so it is not a direct
// import of the module, and only its doc comments would differ.)
func TestPushTypesOfImportedPackages(t *testing.T) {
	outs, err := Generate(Options{Patterns: []string{"./testdata/src/web", "./testdata/src/web/other"}, Out: "testdata/out/web", Web: "testdata/out/webclient", CSharp: "testdata/out/csclient"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, o := range outs {
		got[filepath.Base(o.Path)] = o.Content
	}
	for _, name := range []string{"web.ts", "web.d.ts", "Web.cs", "manifest.json", "web.mqant.go"} {
		want, err := os.ReadFile(filepath.Join("testdata", "golden", "web", name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[name], want) {
			t.Errorf("%s with webapi not named differs from the web golden:\n%s", name, got[name])
		}
	}
	for _, s := range []string{"OnNews", "Tick"} {
		if !strings.Contains(string(got["web.ts"]), s) {
			t.Errorf("web.ts lacks the push %s", s)
		}
	}
}

// A package the modules import may declare pushes of a module generated in
// another run (no error), but its unknown directives are still errors.
func TestImportedPackageDirectives(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(wd, "..", "..")
	write("go.mod", "module example.com/game\n\ngo 1.26\n\nrequire "+FrameworkPath+" v0.0.0\n\nreplace "+FrameworkPath+" => "+root+"\n")
	goSum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(goSum))
	t.Setenv("GOFLAGS", "-mod=mod") // the module lists only the framework; let go add the rest
	write("api/api.go", `package api

// Other belongs to a module generated elsewhere.
//
//mqant:push Other/OnThing
type Other struct{ N int }

// Joined is Lobby's.
//
//mqant:push Lobby/OnJoined
type Joined struct{ Name string }
`)
	write("lobby/lobby.go", `package lobby

import (
	"context"

	"example.com/game/api"
	"`+FrameworkPath+`/gate"
)

var _ api.Joined

//mqant:module
type Lobby struct{}

func (l *Lobby) Handler_Enter(ctx context.Context, s *gate.Session, in *struct{ Name string }) (string, error) {
	return in.Name, nil
}
`)
	outs, err := Generate(Options{Dir: dir, Patterns: []string{"./lobby"}, Web: "web", NoGo: true})
	if err != nil {
		t.Fatal(err)
	}
	var ts string
	for _, o := range outs {
		if filepath.Base(o.Path) == "lobby.ts" {
			ts = string(o.Content)
		}
	}
	if !strings.Contains(ts, "OnJoined") || strings.Contains(ts, "OnThing") {
		t.Errorf("lobby.ts wants Lobby's push OnJoined and not Other's OnThing:\n%s", ts)
	}
	write("api/typo.go", "package api\n\n//mqant:puhs Lobby/OnLeft\ntype Left struct{}\n")
	_, err = Generate(Options{Dir: dir, Patterns: []string{"./lobby"}, Web: "web", NoGo: true})
	if err == nil || !strings.Contains(err.Error(), "typo.go:3:1: unknown directive //mqant:puhs (did you mean //mqant:push?)") {
		t.Errorf("a typo in an imported package's directive: %v", err)
	}
}
