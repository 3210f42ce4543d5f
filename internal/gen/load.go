package gen

import (
	"errors"
	"fmt"
	"github.com/mqantgen/mqantgen/internal/suggest"
	"go/ast"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// FrameworkPath is the import path of this framework's module.
const FrameworkPath = "github.com/mqantgen/mqantgen"

const (
	corePath    = FrameworkPath + "/core"
	coregenPath = FrameworkPath + "/core/coregen"
	gatePath    = FrameworkPath + "/gate"
)

// load loads and type-checks the packages named by patterns, and with them
// the packages they import from their own Go module (returned in imported,
// in the same type-checking universe): those are where a module's
// //mqant:push types usually live (demo/chat imports demo/chat/chatapi), and
// the client SDK would otherwise lose them without a word when the types
// package is not named. The standard library and other modules are not
// parsed. Type errors are tolerated and returned separately: a module
// generated into its own package refers to the code being generated, which
// may not exist yet.
func load(dir string, patterns []string) (pkgs, imported []*packages.Package, typeErrs []string, err error) {
	extra, err := sameModuleImports(dir, patterns)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports,
		Dir: dir,
	}
	all, err := packages.Load(cfg, append(append([]string(nil), patterns...), extra...)...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load: %w", err)
	}
	isExtra := map[string]bool{}
	for _, p := range extra {
		isExtra[p] = true
	}
	for _, p := range all {
		if isExtra[p.PkgPath] {
			imported = append(imported, p)
		} else {
			pkgs = append(pkgs, p)
		}
	}
	typeErrs, err = loadErrors(pkgs)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(pkgs) == 0 {
		return nil, nil, nil, fmt.Errorf("load: no packages match %s", strings.Join(patterns, " "))
	}
	if _, err := loadErrors(imported); err != nil {
		return nil, nil, nil, fmt.Errorf("loading the packages the modules import, for their //mqant:push types: %w", err)
	}
	return pkgs, imported, typeErrs, nil
}

// sameModuleImports lists, without parsing, the packages that the packages
// named by patterns import directly from their own Go module and that are
// not named themselves. An import that does not load (the generated
// package, before its first generation) is left to the main load's
// tolerated type errors.
func sameModuleImports(dir string, patterns []string) ([]string, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedModule,
		Dir:  dir,
	}
	roots, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	named := map[string]bool{}
	for _, p := range roots {
		named[p.PkgPath] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range roots {
		if p.Module == nil {
			continue
		}
		for _, imp := range p.Imports {
			if named[imp.PkgPath] || seen[imp.PkgPath] || imp.Module == nil || imp.Module.Path != p.Module.Path ||
				len(imp.Errors) > 0 || len(imp.GoFiles) == 0 {
				continue
			}
			seen[imp.PkgPath] = true
			out = append(out, imp.PkgPath)
		}
	}
	sort.Strings(out)
	return out, nil
}

// loadErrors splits the packages' errors into tolerated type errors and
// the others, which fail the load.
func loadErrors(pkgs []*packages.Package) ([]string, error) {
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
		return nil, errors.Join(errs...)
	}
	return typeErrs, nil
}

// knownDirectives are the //mqant: directives the generator reads, with
// where each belongs (for the message about one that is misplaced).
var knownDirectives = map[string]string{
	"module": "on a struct type",
	"push":   "on a struct type",
	"rpc":    "on a method of a //mqant:module struct",
	"sync":   "on a Handler_ or //mqant:rpc method of a //mqant:module struct",
	// The reply of a Handler_ returning a pointer, slice or map is never
	// null: the client SDK types it without "| null", and the generated
	// dispatch turns a nil result with a nil error into an error.
	"nonnull": "on a Handler_ method of a //mqant:module struct",
	// The typed client has a no-reply variant (NR) of the methods that
	// return only an error; this asks for one of a method with a result,
	// for callers that may ignore it (the gate's own Broadcast fan-out).
	"noreply": "on a Handler_ or //mqant:rpc method with a result",
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
// In a package loaded only because a module imports it (imported), the
// module, rpc and sync directives belong to that package's own run and are
// not judged here; unknown directives and a misplaced push still are.
func (a *analyzer) checkDirectives(pkgs []*packages.Package, imported bool) {
	for _, pkg := range pkgs {
		for _, f := range pkg.Syntax {
			for _, g := range f.Comments {
				for _, c := range g.List {
					name, _, ok := directive(c.Text)
					if !ok || a.read[c.Slash] {
						continue
					}
					where, known := knownDirectives[name]
					if imported && known && name != "push" {
						continue
					}
					switch {
					case !known:
						a.errorf(c.Slash, "unknown directive //mqant:%s%s; the directives are //mqant:module, //mqant:push, //mqant:rpc, //mqant:sync, //mqant:nonnull and //mqant:noreply", name, didYouMean(name))
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
