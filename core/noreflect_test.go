package core_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoReflect: registering and calling handlers is generated code end to
// end, so the runtime, the gate and generated code never import reflect
// (tests may, to measure against it). The one exception is the start-time
// check that generated code is current (coregen/stale.go), which runs once
// per module.
func TestNoReflect(t *testing.T) {
	for _, dir := range []string{".", "../gate", "../generated"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			if filepath.ToSlash(path) == "coregen/stale.go" {
				return nil // once per module at start: lists its Handler_ methods
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				if p, _ := strconv.Unquote(imp.Path.Value); p == "reflect" {
					t.Errorf("%s imports reflect", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
