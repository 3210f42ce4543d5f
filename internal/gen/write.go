package gen

import (
	"bytes"
	"errors"
	"fmt"
	"go/token"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Options configure one run of the generator.
type Options struct {
	Dir      string   // directory to load packages from; "" is the current one
	Patterns []string // package patterns, e.g. "./demo/chat"
	// Out is the output directory. Empty: each module's own package directory.
	Out string
	// Web is the output directory of the client SDK (TypeScript, JavaScript
	// with .d.ts, and the route manifest). Empty: no client SDK.
	Web string
	// CSharp is the output directory of the C# client SDK (one file per
	// module and its Runtime/). Empty: none.
	CSharp string
	// NoGo leaves out the Go code (for a run that writes only the SDK).
	NoGo bool
}

// Output is one generated file.
type Output struct {
	Path    string // where it goes
	Content []byte
}

// Error is the generator's failure: every rule violation found, each
// "file:line:col: message".
type Error struct {
	Problems []string // one per problem, each with its file:line:col
	Shapes   []string // the accepted method shapes the problems refer to, each told once
}

func (e *Error) Error() string {
	s := strings.Join(e.Problems, "\n")
	if len(e.Shapes) > 0 {
		s += "\n\n" + strings.Join(e.Shapes, "\n")
	}
	return s
}

// Generate loads the packages and renders the code for every module in them.
// Nothing is written.
func Generate(opts Options) ([]Output, error) {
	wd := opts.Dir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	wd, _ = filepath.Abs(wd)
	pkgs, imported, typeErrs, err := load(wd, opts.Patterns)
	if err != nil {
		return nil, err
	}
	var fixed *target
	outDir := ""
	if opts.Out != "" {
		outDir = opts.Out
		if !filepath.IsAbs(outDir) {
			outDir = filepath.Join(wd, outDir)
		}
		path, err := importPathOf(outDir)
		if err != nil {
			return nil, fmt.Errorf("output directory: %w", err)
		}
		fixed = &target{path: path, name: sanitizePkgName(filepath.Base(outDir))}
	}
	a := &analyzer{pos: positioner{fset: pkgs[0].Fset, wd: wd}, posOf: map[any]token.Pos{}, read: map[token.Pos]bool{}, shapes: map[string]bool{}, topics: map[string]string{}}
	a.pushes = a.collectPushes(pkgs, false)
	for m, ps := range a.collectPushes(imported, true) {
		a.pushes[m] = append(a.pushes[m], ps...)
	}
	if opts.Web != "" || opts.CSharp != "" {
		a.client = newClientAPI(append(append([]*packages.Package(nil), pkgs...), imported...))
	}
	var outs []Output
	var files []*File
	for _, pkg := range pkgs {
		tgt := target{path: pkg.PkgPath, name: pkg.Name}
		dir := ""
		if len(pkg.GoFiles) > 0 {
			dir = filepath.Dir(pkg.GoFiles[0])
		}
		srcDir := dir
		if fixed != nil {
			tgt, dir = *fixed, outDir
		}
		for _, f := range a.analyzePackage(pkg, tgt) {
			f.Source = pkg.PkgPath
			files = append(files, f)
			if len(a.errs) > 0 || opts.NoGo {
				continue
			}
			src, err := renderGo(f, tgt.path == pkg.PkgPath)
			if err != nil {
				return nil, err
			}
			name := strings.ToLower(f.Modules[0].GoName)
			outs = append(outs, Output{Path: filepath.Join(dir, name+".mqant.go"), Content: src})
			if tgt.path != pkg.PkgPath {
				// The glue goes beside the module's source, in its package.
				glue, err := renderGlue(f, pkg.Name, tgt.path)
				if err != nil {
					return nil, err
				}
				if glue != nil {
					outs = append(outs, Output{Path: filepath.Join(srcDir, name+".glue.mqant.go"), Content: glue})
				}
			}
		}
	}
	a.unusedPushes()
	a.checkDirectives(pkgs, false)
	a.checkDirectives(imported, true)
	if a.client != nil {
		a.uniqueTypes(files)
	}
	if a.client != nil && len(a.errs) == 0 && len(files) > 0 {
		a.client.finish(files)
		if opts.Web != "" {
			web, err := renderWeb(files, absDir(wd, opts.Web))
			if err != nil {
				return nil, err
			}
			outs = append(outs, web...)
		}
		if opts.CSharp != "" {
			cs, err := renderCSharp(files, absDir(wd, opts.CSharp))
			if err != nil {
				return nil, err
			}
			outs = append(outs, cs...)
		}
	}
	if len(a.errs) > 0 {
		if a.invalid {
			// A signature did not type-check: show why.
			return nil, &Error{Problems: append(a.problems(), typeErrs...), Shapes: a.shapeNotes()}
		}
		return nil, &Error{Problems: a.problems(), Shapes: a.shapeNotes()}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no //mqant:module structs in %s", strings.Join(opts.Patterns, " "))
	}
	return outs, nil
}

func absDir(wd, dir string) string {
	if filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(wd, dir)
}

func sanitizePkgName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r == '_' || (r >= 'a' && r <= 'z') || (b.Len() > 0 && r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "generated"
	}
	return b.String()
}

// ErrStale is returned by Write in check mode when a file would change.
var ErrStale = errors.New("generated code is stale")

// Write writes each output whose content changed and returns the paths it
// wrote. With check set it writes nothing and returns ErrStale listing the
// files that differ.
func Write(outs []Output, check bool) ([]string, error) {
	var changed []string
	for _, o := range outs {
		old, err := os.ReadFile(o.Path)
		if err == nil && bytes.Equal(old, o.Content) {
			continue
		}
		changed = append(changed, o.Path)
		if check {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
			return changed, err
		}
		if err := os.WriteFile(o.Path, o.Content, 0o644); err != nil {
			return changed, err
		}
	}
	if check && len(changed) > 0 {
		return changed, fmt.Errorf("%w: %s (run make generate)", ErrStale, strings.Join(changed, ", "))
	}
	return changed, nil
}
