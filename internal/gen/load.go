package gen

import (
	"errors"
	"fmt"
	"github.com/mqantgen/mqantgen/internal/suggest"
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

// knownDirectives are the //mqant: directives the generator reads, with
// where each belongs (for the message about one that is misplaced).
var knownDirectives = map[string]string{
	"module": "on a struct type",
	"push":   "on a struct type",
	"rpc":    "on a method of a //mqant:module struct",
	"sync":   "on a Handler_ or //mqant:rpc method of a //mqant:module struct",
}

// directives returns the //mqant: lines of a comment group, as
// name -> argument ("module" -> "Chat"), and marks them read: a directive
// the generator never reads is an error (checkDirectives).
func (a *analyzer) directives(groups ...*ast.CommentGroup) map[string]string {
	out := map[string]string{}
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, c := range g.List {
			name, arg, ok := directive(c.Text)
			if !ok {
				continue
			}
			if _, known := knownDirectives[name]; known {
				out[name] = arg
				a.read[c.Slash] = true
			}
		}
	}
	return out
}

func directive(text string) (name, arg string, ok bool) {
	text, ok = strings.CutPrefix(text, "//mqant:")
	if !ok {
		return "", "", false
	}
	name, arg, _ = strings.Cut(strings.TrimSpace(text), " ")
	return name, strings.TrimSpace(arg), true
}

// checkDirectives reports every //mqant: comment of the packages that names
// no directive, or that sits where the generator does not read it (a typo
// such as //mqant:rcp, or //mqant:rpc on a method of a struct without
// //mqant:module, would otherwise drop a method without a word). Comments
// of the form "// mqant:..." are prose, not directives, as with //go:.
func (a *analyzer) checkDirectives(pkgs []*packages.Package) {
	for _, pkg := range pkgs {
		for _, f := range pkg.Syntax {
			for _, g := range f.Comments {
				for _, c := range g.List {
					name, _, ok := directive(c.Text)
					if !ok || a.read[c.Slash] {
						continue
					}
					where, known := knownDirectives[name]
					switch {
					case !known:
						a.errorf(c.Slash, "unknown directive //mqant:%s%s; the directives are //mqant:module, //mqant:push, //mqant:rpc and //mqant:sync", name, didYouMean(name))
					case name == "module" || name == "push":
						a.errorf(c.Slash, "//mqant:%s has no effect here: it belongs in the doc comment of a struct type declaration", name)
					default:
						a.errorf(c.Slash, "//mqant:%s has no effect here: it belongs in the doc comment of a method %s", name, strings.TrimPrefix(where, "on a method "))
					}
				}
			}
		}
	}
}

// didYouMean names the known directive closest to a misspelt one.
func didYouMean(name string) string {
	known := make([]string, 0, len(knownDirectives))
	for k := range knownDirectives {
		known = append(known, k)
	}
	if best := suggest.Closest(name, known); best != "" {
		return " (did you mean //mqant:" + best + "?)"
	}
	return ""
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
