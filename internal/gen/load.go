package gen

import (
	"errors"
	"fmt"
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/packages"
)

// FrameworkPath is the import path of this framework's module.
const FrameworkPath = "github.com/mqantgen/mqantgen"

const (
	runtimePath = FrameworkPath + "/runtime"
	gatePath    = FrameworkPath + "/gate"
)

// load loads and type-checks the packages. Type errors are tolerated and
// returned separately: a module generated into its own package refers to
// the code being generated, which may not exist yet.
func load(dir string, patterns []string) ([]*packages.Package, []string, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports,
		Dir: dir,
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, nil, fmt.Errorf("load: %w", err)
	}
	var errs []error
	var typeErrs []string
	for _, p := range pkgs {
		for _, e := range p.Errors {
			if e.Kind == packages.TypeError {
				typeErrs = append(typeErrs, e.Error())
				continue
			}
			if e.Kind == packages.ListError && strings.HasPrefix(e.Msg, "# ") {
				continue // the compiler's view of the type errors reported above
			}
			errs = append(errs, errors.New(e.Error()))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if len(pkgs) == 0 {
		return nil, nil, fmt.Errorf("load: no packages match %s", strings.Join(patterns, " "))
	}
	return pkgs, typeErrs, nil
}

// directives returns the //mqant: lines of a comment group, as
// name -> argument ("module" -> "Chat").
func directives(groups ...*ast.CommentGroup) map[string]string {
	out := map[string]string{}
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, c := range g.List {
			text, ok := strings.CutPrefix(c.Text, "//mqant:")
			if !ok {
				continue
			}
			name, arg, _ := strings.Cut(strings.TrimSpace(text), " ")
			out[name] = strings.TrimSpace(arg)
		}
	}
	return out
}

// positioner prints token positions relative to the working directory, so
// messages and generated files carry no absolute paths.
type positioner struct {
	fset *token.FileSet
	wd   string
}

func (p positioner) rel(name string) string {
	if r, err := filepath.Rel(p.wd, name); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return filepath.ToSlash(name)
}

// modulePathOf finds the go.mod above dir (which may not exist yet) and
// returns the import path dir would have.
func importPathOf(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			mod := ""
			for _, line := range strings.Split(string(data), "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
					mod = strings.Trim(strings.TrimSpace(rest), `"`)
					break
				}
			}
			if mod == "" {
				return "", fmt.Errorf("%s: no module line", filepath.Join(d, "go.mod"))
			}
			rel, _ := filepath.Rel(d, abs)
			if rel == "." {
				return mod, nil
			}
			return mod + "/" + filepath.ToSlash(rel), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}
