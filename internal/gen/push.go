package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// pushDecl is one //mqant:push type found in the loaded packages.
type pushDecl struct {
	named  *types.Named
	module string // first topic level: the module type that sends it
	name   string // second topic level
	pos    token.Pos
	doc    string
	used   bool
	// imported: found in a package the modules import rather than one
	// named on the command line; such a package may declare pushes of
	// modules generated in another run, so an unused one is no error.
	imported bool
}

// collectPushes finds the //mqant:push Module/Name types of the packages,
// checks them, and files them by module type. imported marks packages
// loaded because the modules import them.
func (a *analyzer) collectPushes(pkgs []*packages.Package, imported bool) map[string][]*pushDecl {
	out := map[string][]*pushDecl{}
	topics := a.topics // topic -> type that took it
	for _, pkg := range pkgs {
		for _, f := range pkg.Syntax {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, sp := range gd.Specs {
					ts := sp.(*ast.TypeSpec)
					groups := []*ast.CommentGroup{ts.Doc}
					if len(gd.Specs) == 1 {
						groups = append(groups, gd.Doc)
					}
					arg, ok := a.directives(groups...)["push"]
					if !ok {
						continue
					}
					p := a.pushDecl(pkg, ts, arg)
					if p == nil {
						continue
					}
					topic := p.module + "/" + p.name
					if prev, dup := topics[topic]; dup {
						a.errorf(ts.Pos(), "push %s: topic %s is already declared by %s; each push topic names one type", ts.Name.Name, topic, prev)
						continue
					}
					topics[topic] = short(p.named)
					p.doc = docText(groups...)
					p.imported = imported
					out[p.module] = append(out[p.module], p)
				}
			}
		}
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	}
	return out
}

func (a *analyzer) pushDecl(pkg *packages.Package, ts *ast.TypeSpec, arg string) *pushDecl {
	name := ts.Name.Name
	mod, topic, ok := strings.Cut(arg, "/")
	if !ok || !identRe.MatchString(mod) || !identRe.MatchString(topic) {
		a.errorf(ts.Pos(), "push %s: //mqant:push wants the topic as Module/Name with identifiers, such as //mqant:push Chat/OnSay; got %q", name, arg)
		return nil
	}
	obj, _ := pkg.TypesInfo.Defs[ts.Name].(*types.TypeName)
	if obj == nil {
		a.errorf(ts.Pos(), "push %s: no type information", name)
		return nil
	}
	named, ok := obj.Type().(*types.Named)
	switch {
	case !ok:
		a.errorf(ts.Pos(), "push %s: //mqant:push must mark a defined struct type, not an alias", name)
		return nil
	case named.TypeParams().Len() > 0:
		a.errorf(ts.Pos(), "push %s: generic push types are not supported; want a non-generic struct type", name)
		return nil
	}
	if _, ok := named.Underlying().(*types.Struct); !ok {
		a.errorf(ts.Pos(), "push %s: //mqant:push must mark a struct type, not %s", name, short(named.Underlying()))
		return nil
	}
	if why := jsonProblem(named, map[types.Type]bool{}); why != "" {
		a.errorf(ts.Pos(), "push %s cannot be encoded as JSON: %s", name, why)
		return nil
	}
	return &pushDecl{named: named, module: mod, name: topic, pos: ts.Pos()}
}

// attachPushes gives a module the pushes declared for its type.
func (a *analyzer) attachPushes(mod *Module, is *importSet, modPkg string, out target) {
	for _, p := range a.pushes[mod.Type] {
		p.used = true
		if local := localTypes(p.named, modPkg, out); len(local) > 0 {
			a.errorf(p.pos, "push %s: type %s is declared in the module's package %s, and code generated into %s cannot import it (the module imports the generated code: an import cycle); move the type to a types package such as %sapi, or generate into the module's own package", p.named.Obj().Name(), local[0], modPkg, out.path, lastElem(modPkg))
			continue
		}
		push := &Push{
			Name:  p.name,
			Topic: mod.Type + "/" + p.name,
			Type:  spell(types.NewPointer(p.named), is),
			Doc:   p.doc,
		}
		if a.client != nil {
			s, _ := a.client.shape(a, p.named, site{p.pos, "push " + p.named.Obj().Name()})
			push.Body = &s
		}
		a.posOf[push] = p.pos
		mod.Pushes = append(mod.Pushes, push)
	}
}

// unusedPushes reports pushes whose module is not among the packages given:
// their senders would be generated nowhere.
func (a *analyzer) unusedPushes() {
	var mods []string
	for m := range a.pushes {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		for _, p := range a.pushes[m] {
			if !p.used && !p.imported {
				a.errorf(p.pos, "push %s: no //mqant:module of type %s among the packages given; pass the module's package to mqantgen together with this one", p.named.Obj().Name(), m)
			}
		}
	}
}

// docText joins the plain lines of comment groups, leaving out directives.
func docText(groups ...*ast.CommentGroup) string {
	for _, g := range groups {
		if g == nil {
			continue
		}
		var lines []string
		for _, l := range strings.Split(g.Text(), "\n") {
			lines = append(lines, strings.TrimRight(l, " \t"))
		}
		text := strings.TrimSpace(strings.Join(lines, "\n"))
		if text != "" {
			return text
		}
	}
	return ""
}

// uniqueTypes reports two modules of one type in a run that writes a client
// SDK: it has one client, and one file, per module type.
func (a *analyzer) uniqueTypes(files []*File) {
	seen := map[string]*Module{}
	for _, f := range files {
		for _, m := range f.Modules {
			if prev, dup := seen[m.Type]; dup {
				a.errorf(a.posOf[m], "module %s: module type %s is also %s's; the client SDK has one client per module type", m.GoName, m.Type, prev.GoName)
				continue
			}
			seen[m.Type] = m
		}
	}
}
