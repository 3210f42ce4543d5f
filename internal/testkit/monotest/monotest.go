// Package monotest finds Debian's mono (the mcs compiler and the mono
// runtime) for the tests of the generated C# SDK, and compiles and runs C#
// with it. make test installs mono (scripts/deps.sh); a missing mono fails
// the test with how to install it, never skips it.
package monotest

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// LangVersion is the C# the SDK is written in: what Debian's mcs accepts
// and Unity compiles unchanged.
const LangVersion = "7.2"

// Newtonsoft is where Debian's libnewtonsoft-json5.0-cil puts Newtonsoft.Json 6.0.
const Newtonsoft = "/usr/lib/cli/Newtonsoft.Json-5.0/Newtonsoft.Json.dll"

const install = "install it with make deps (scripts/deps.sh: apt-get install mono-mcs mono-runtime libmono-system-runtime-serialization4.0-cil libnewtonsoft-json5.0-cil)"

// Tools returns the paths of mcs and mono, failing the test when either is missing.
func Tools(t testing.TB) (mcs, mono string) {
	t.Helper()
	mcs, err := exec.LookPath("mcs")
	if err != nil {
		t.Fatalf("the C# compiler mcs is not installed: %s", install)
	}
	mono, err = exec.LookPath("mono")
	if err != nil {
		t.Fatalf("the mono runtime is not installed: %s", install)
	}
	if _, err := os.Stat(Newtonsoft); err != nil {
		t.Fatalf("Newtonsoft.Json is not installed (%v): %s", err, install)
	}
	return mcs, mono
}

// Sources lists the .cs files under each dir (recursively), sorted, plus
// the plain files given.
func Sources(t testing.TB, paths ...string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".cs") {
				out = append(out, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(out)
	return out
}

// Build is one mcs run.
type Build struct {
	Out     string   // the assembly to write
	Exe     bool     // an executable (with Main) rather than a library
	Defines []string // preprocessor symbols
	Refs    []string // assemblies to reference
	Sources []string
}

// Compile runs mcs -langversion:7.2 with warnings as errors and returns its
// output and whether it succeeded.
func Compile(t testing.TB, b Build) (string, bool) {
	t.Helper()
	mcs, _ := Tools(t)
	target := "library"
	if b.Exe {
		target = "exe"
	}
	args := []string{"-langversion:" + LangVersion, "-warnaserror+", "-debug-", "-target:" + target, "-out:" + b.Out}
	if len(b.Defines) > 0 {
		args = append(args, "-define:"+strings.Join(b.Defines, ";"))
	}
	for _, r := range b.Refs {
		args = append(args, "-r:"+r)
	}
	args = append(args, b.Sources...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, mcs, args...).CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run mcs: %v", err)
		}
		return string(out), false
	}
	return string(out), true
}

// MustCompile is Compile that fails the test on a compile error.
func MustCompile(t testing.TB, b Build) {
	t.Helper()
	if out, ok := Compile(t, b); !ok {
		t.Fatalf("mcs %s failed:\n%s", filepath.Base(b.Out), out)
	}
}
