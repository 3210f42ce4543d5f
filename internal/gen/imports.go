package gen

import (
	"fmt"
	"go/types"
	"sort"
)

// importSet is the import bookkeeping of one generated file: which packages
// it refers to and the name each goes by, with collisions resolved by
// numbering (api, api2, ...).
type importSet struct {
	self   string            // import path of the file's own package
	byPath map[string]string // path -> name used in the file
	taken  map[string]string // name -> path
	needed map[string]bool
	real   map[string]string // path -> the package's own name
}

// reservedNames are identifiers the templates use; an imported package may
// not take them.
var reservedNames = []string{"srv", "ctx", "inv", "req", "in", "err", "c", "s", "args", "ok", "res", "e", "msg", "cc", "id"}

func newImportSet(self string) *importSet {
	is := &importSet{self: self, byPath: map[string]string{}, taken: map[string]string{}, needed: map[string]bool{}, real: map[string]string{}}
	for _, n := range reservedNames {
		is.taken[n] = ""
	}
	// The framework's own packages keep their names.
	for _, p := range [][2]string{{"context", "context"}, {corePath, "core"}, {coregenPath, "coregen"}, {gatePath, "gate"}} {
		is.byPath[p[0]] = p[1]
		is.taken[p[1]] = p[0]
		is.real[p[0]] = p[1]
	}
	return is
}

// use marks path as imported and returns its name in the file.
func (is *importSet) use(path, name string) string {
	if path == is.self {
		return ""
	}
	if n, ok := is.byPath[path]; ok {
		is.needed[path] = true
		return n
	}
	is.real[path] = name
	n := name
	for i := 2; ; i++ {
		if _, clash := is.taken[n]; !clash {
			break
		}
		n = fmt.Sprintf("%s%d", name, i)
	}
	is.byPath[path] = n
	is.taken[n] = path
	is.needed[path] = true
	return n
}

func (is *importSet) qualifier(p *types.Package) string { return is.use(p.Path(), p.Name()) }

// names returns every package name the file uses.
func (is *importSet) names() map[string]bool {
	out := map[string]bool{}
	for p := range is.needed {
		out[is.byPath[p]] = true
	}
	return out
}

// list returns the file's imports sorted by path, with an alias only where
// the name differs from the package's own.
func (is *importSet) list() []Import {
	var out []Import
	for p := range is.needed {
		imp := Import{Path: p}
		if n := is.byPath[p]; n != is.real[p] {
			imp.Name = n
		}
		out = append(out, imp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
