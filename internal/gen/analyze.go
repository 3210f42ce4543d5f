package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// The accepted shapes, printed once after the problems that refer to them.
const (
	wantHandler = "Handler_ methods: func(ctx context.Context, s *gate.Session, req *Request) (Result, error) " +
		"or (error), where ctx, s and req are each optional, req is a pointer to a struct or a map " +
		"with string keys, and Result is JSON-encodable; or mqant's legacy " +
		"func(session map[string]interface{}, msg map[string]interface{}) (result string, err string)"
	wantRPC = "//mqant:rpc methods: func(ctx context.Context, s *gate.Session, args...) (Result, error) or (error), " +
		"where ctx and s are optional and every argument and Result is JSON-encodable"
)

// analyzer turns loaded packages into the model, collecting every rule
// violation instead of stopping at the first.
type analyzer struct {
	pos     positioner
	errs    []problem
	invalid bool                   // a signature held a type that did not type-check
	pushes  map[string][]*pushDecl // by module type
	topics  map[string]string      // push topic -> the type that declared it
	client  *clientAPI             // non-nil when a client SDK is generated
	posOf   map[any]token.Pos      // where each *Method and *Push is declared
	read    map[token.Pos]bool     // //mqant: comments the analysis read
	shapes  map[string]bool        // accepted shapes the problems refer to
}

// shapeNotes returns the accepted shapes that problems referred to, in a
// fixed order.
func (a *analyzer) shapeNotes() []string {
	var out []string
	for _, s := range []string{wantHandler, wantRPC} {
		if a.shapes[s] {
			out = append(out, s)
		}
	}
	return out
}

type problem struct {
	at  token.Position
	msg string
}

func (a *analyzer) errorf(pos token.Pos, format string, args ...any) {
	a.errs = append(a.errs, problem{a.pos.fset.Position(pos), fmt.Sprintf(format, args...)})
}

// problems returns the collected errors in file order, each prefixed by its
// position relative to the working directory.
func (a *analyzer) problems() []string {
	sort.SliceStable(a.errs, func(i, j int) bool {
		x, y := a.errs[i].at, a.errs[j].at
		if x.Filename != y.Filename {
			return x.Filename < y.Filename
		}
		if x.Line != y.Line {
			return x.Line < y.Line
		}
		return x.Column < y.Column
	})
	out := make([]string, len(a.errs))
	for i, e := range a.errs {
		out[i] = fmt.Sprintf("%s:%d:%d: %s", a.pos.rel(e.at.Filename), e.at.Line, e.at.Column, e.msg)
	}
	return out
}

// short spells a type for messages: package names, not import paths.
func short(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string { return p.Name() })
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// target says where the generated code for a package goes.
type target struct {
	path string // import path of the output package
	name string // its package name
}

// analyzePackage finds the modules of one package and models them into one
// File per module.
func (a *analyzer) analyzePackage(pkg *packages.Package, out target) []*File {
	decls := map[token.Pos]*ast.FuncDecl{}
	type found struct {
		spec *ast.TypeSpec
		dirs map[string]string
		doc  string
	}
	var mods []found
	for _, f := range pkg.Syntax {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				decls[d.Name.Pos()] = d
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, sp := range d.Specs {
					ts := sp.(*ast.TypeSpec)
					groups := []*ast.CommentGroup{ts.Doc}
					if len(d.Specs) == 1 {
						groups = append(groups, d.Doc)
					}
					dirs := a.directives(groups...)
					if _, ok := dirs["module"]; ok {
						mods = append(mods, found{ts, dirs, docText(groups...)})
					}
				}
			}
		}
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].spec.Name.Name < mods[j].spec.Name.Name })
	var files []*File
	for _, m := range mods {
		is := newImportSet(out.path)
		is.use("context", "context")
		is.use(corePath, "core")
		mod := a.module(pkg, m.spec, m.dirs["module"], decls, is, out)
		if mod == nil {
			continue
		}
		mod.Doc = m.doc
		a.posOf[mod] = m.spec.Pos()
		mod.Prefix = mod.GoName + "_"
		if out.path != pkg.PkgPath && strings.TrimSuffix(out.name, "gen") == strings.ToLower(mod.GoName) {
			mod.Prefix = ""
		}
		mod.Glue = a.glue(pkg, m.spec, out, len(mods) > 1)
		if len(mod.Methods) > 0 || (mod.Glue != nil && mod.Glue.OnInit && out.path == pkg.PkgPath) {
			is.use(coregenPath, "coregen")
		}
		a.attachPushes(mod, is, pkg.PkgPath, out)
		needGate := len(mod.Pushes) > 0
		for _, me := range mod.Methods {
			needGate = needGate || me.HasSession || me.Legacy
		}
		if needGate {
			if q := is.use(gatePath, "gate"); q != "" {
				mod.GateQual = q + "."
			}
		}
		if a.client != nil {
			a.client.checkMembers(a, mod, a.posOf)
		}
		nameParams(mod, is)
		f := &File{Source: pkg.PkgPath, Package: out.name, Modules: []*Module{mod}}
		for _, imp := range is.list() {
			if first, _, _ := strings.Cut(imp.Path, "/"); strings.Contains(first, ".") {
				f.Others = append(f.Others, imp)
			} else {
				f.Imports = append(f.Imports, imp)
			}
		}
		files = append(files, f)
	}
	return files
}

func (a *analyzer) module(pkg *packages.Package, spec *ast.TypeSpec, typeArg string, decls map[token.Pos]*ast.FuncDecl, is *importSet, out target) *Module {
	obj, _ := pkg.TypesInfo.Defs[spec.Name].(*types.TypeName)
	if obj == nil {
		a.errorf(spec.Pos(), "//mqant:module %s: no type information", spec.Name.Name)
		return nil
	}
	named, ok := obj.Type().(*types.Named)
	if !ok {
		a.errorf(spec.Pos(), "//mqant:module must mark a defined struct type, not an alias")
		return nil
	}
	if named.TypeParams().Len() > 0 {
		a.errorf(spec.Pos(), "module %s: generic module types are not supported; want a non-generic struct type such as type %s struct{ ... }", obj.Name(), obj.Name())
		return nil
	}
	if _, ok := named.Underlying().(*types.Struct); !ok {
		a.errorf(spec.Pos(), "module %s: //mqant:module must mark a struct type, not %s", obj.Name(), short(named.Underlying()))
		return nil
	}
	mod := &Module{GoName: obj.Name(), Type: obj.Name()}
	if typeArg != "" {
		if !identRe.MatchString(typeArg) {
			a.errorf(spec.Pos(), "module %s: module type %q must be an identifier such as Chat", obj.Name(), typeArg)
		}
		mod.Type = typeArg
	}
	// The pointer's method set holds value and pointer receivers and the
	// methods promoted from embedded fields, sorted by name.
	ms := types.NewMethodSet(types.NewPointer(named))
	clientNames := map[string]string{"To": "(the client's own method)"}
	for i := 0; i < ms.Len(); i++ {
		fn := ms.At(i).Obj().(*types.Func)
		decl := decls[fn.Pos()]
		var dirs map[string]string
		if decl != nil {
			dirs = a.directives(decl.Doc)
		}
		_, isRPC := dirs["rpc"]
		_, isSync := dirs["sync"]
		_, nonNull := dirs["nonnull"]
		_, noReply := dirs["noreply"]
		isHandler := strings.HasPrefix(fn.Name(), "Handler_")
		where := fn.Pos()
		label := obj.Name() + "." + fn.Name()
		switch {
		case nonNull && !isHandler:
			a.errorf(where, "method %s: //mqant:nonnull applies only to Handler_ methods (it types the client SDK's reply)", label)
			continue
		case isHandler && isRPC:
			a.errorf(where, "method %s: //mqant:rpc is for module-to-module methods; Handler_ methods are already callable by modules and clients", label)
			continue
		case !isHandler && !isRPC && nearHandler.MatchString(fn.Name()):
			a.errorf(where, "method %s looks like a client handler but does not begin with Handler_, so no client could call it; rename it %s (or, for a method modules call, mark it //mqant:rpc under another name)", label, handlerName(fn.Name()))
			continue
		case !isHandler && !isRPC:
			if noReply {
				a.errorf(where, "method %s: //mqant:noreply applies only to Handler_ methods and //mqant:rpc methods", label)
			}
			if isSync {
				a.errorf(where, "method %s: //mqant:sync applies only to Handler_ methods and //mqant:rpc methods", label)
			}
			continue
		case isRPC && !fn.Exported():
			a.errorf(where, "method %s: //mqant:rpc methods must be exported", label)
			continue
		}
		m := a.method(fn, label, isHandler, is, pkg.PkgPath, out)
		if m == nil {
			continue
		}
		m.Sync = isSync
		if nonNull && !a.nonNull(m, fn, label) {
			continue
		}
		m.NoReply = m.Result == nil && !m.Legacy
		if noReply {
			if m.NoReply || m.Legacy {
				a.errorf(where, "method %s: //mqant:noreply has no effect: the method returns only an error, so its client has an NR variant already", label)
			}
			m.NoReply = !m.Legacy
		}
		if decl != nil {
			m.Doc = docText(decl.Doc)
		}
		if m.ClientName == "" {
			a.errorf(where, "method %s: a handler needs a name after the Handler_ prefix, e.g. Handler_Say", label)
			continue
		}
		names := []string{m.ClientName}
		if m.NoReply {
			names = append(names, m.ClientName+"NR")
		}
		for _, n := range names {
			if prev, dup := clientNames[n]; dup {
				a.errorf(where, "method %s: its typed client method %s clashes with %s; rename one", label, n, prev)
				m = nil
				break
			}
			clientNames[n] = fn.Name()
		}
		if m != nil {
			if m.Kind == KindHandler {
				m.Route = mod.Type + "/" + m.Name
			}
			a.posOf[m] = where
			mod.Methods = append(mod.Methods, m)
		}
	}
	return mod
}

// handlerName is the name a near-miss handler method was likely meant to
// have: HandlerFoo and handler_Foo become Handler_Foo.
func handlerName(name string) string {
	rest := name
	for _, p := range []string{"handlers_", "handler_", "handle_", "handler"} {
		if strings.HasPrefix(strings.ToLower(name), p) {
			rest = name[len(p):]
			break
		}
	}
	if rest == "" {
		return "Handler_X"
	}
	return "Handler_" + strings.ToUpper(rest[:1]) + rest[1:]
}

func shapeRef(want string) string {
	if want == wantHandler {
		return "see the Handler_ shape below"
	}
	return "see the //mqant:rpc shape below"
}

// nearHandler matches method names that look meant as client handlers but
// miss the exact Handler_ prefix: handler_X, Handle_X, HandlerX, HANDLER_X.
var nearHandler = regexp.MustCompile(`^(?i:handlers?|handle)_|^[Hh]andler[A-Z0-9]`)

func (a *analyzer) method(fn *types.Func, label string, handler bool, is *importSet, modPkg string, out target) *Method {
	sig := fn.Signature()
	where := fn.Pos()
	want := wantRPC
	m := &Method{Name: fn.Name(), ClientName: fn.Name(), Kind: KindRPC, Positional: true}
	if handler {
		want = wantHandler
		m.Kind = KindHandler
		m.ClientName = strings.TrimPrefix(fn.Name(), "Handler_")
		m.Positional = false
	}
	bad := func(format string, args ...any) *Method {
		a.shapes[want] = true
		a.errorf(where, "method %s: %s (%s)", label, fmt.Sprintf(format, args...), shapeRef(want))
		return nil
	}
	if sig.Variadic() {
		return bad("variadic parameters are not allowed")
	}
	params, results := sig.Params(), sig.Results()
	for _, tup := range []*types.Tuple{params, results} {
		for j := 0; j < tup.Len(); j++ {
			if !validType(tup.At(j).Type()) {
				a.invalid = true
				return bad("its signature does not type-check")
			}
		}
	}
	if handler && isLegacy(sig) {
		m.Legacy = true
		m.Params = []Param{{Type: Type{Go: types.TypeString(params.At(1).Type(), is.qualifier), IsMap: true}}}
		m.Result = &Type{Go: "string"}
		if a.client != nil {
			m.Request = &Shape{Kind: ShapeMap, Elem: &Shape{Kind: ShapeAny}}
			m.Reply = &Shape{Kind: ShapeString}
		}
		return m
	}
	i := 0
	if i < params.Len() && isContext(params.At(i).Type()) {
		m.HasCtx = true
		i++
	}
	if i < params.Len() && isSession(params.At(i).Type()) {
		m.HasSession = true
		i++
	}
	var local []string // types that would make an import cycle
	for j := i; j < params.Len(); j++ {
		t := params.At(j).Type()
		switch {
		case isContext(t):
			return bad("context.Context must be the first parameter")
		case isSession(t):
			return bad("*gate.Session must come first, or right after ctx")
		case isSessionValue(t):
			return bad("the session must be *gate.Session, not gate.Session")
		}
	}
	args := params.Len() - i
	if handler && args > 1 {
		return bad("Handler_ methods take at most one request argument, this one takes %d", args)
	}
	for j := i; j < params.Len(); j++ {
		t := params.At(j).Type()
		if handler && !isRequestType(t) {
			return bad("the request must be a pointer to a struct or a map with string keys, not %s", short(t))
		}
		if why := jsonProblem(t, map[types.Type]bool{}); why != "" {
			return bad("argument %s cannot be encoded as JSON: %s", short(t), why)
		}
		local = append(local, localTypes(t, modPkg, out)...)
		p := Param{Name: params.At(j).Name(), Type: spell(t, is)}
		p.Type.Flat = flatFields(t)
		m.Params = append(m.Params, p)
	}
	switch results.Len() {
	case 1:
		if !isError(results.At(0).Type()) {
			return bad("a single result must be error")
		}
	case 2:
		if !isError(results.At(1).Type()) {
			return bad("the last result must be error")
		}
		t := results.At(0).Type()
		if why := jsonProblem(t, map[types.Type]bool{}); why != "" {
			return bad("result %s cannot be encoded as JSON: %s", short(t), why)
		}
		local = append(local, localTypes(t, modPkg, out)...)
		rt := spell(t, is)
		rt.FlatOut = flatOut(t)
		m.Result = &rt
	default:
		return bad("want one or two results, got %d", results.Len())
	}
	if len(local) > 0 {
		a.errorf(where, "method %s: type %s is declared in the module's package %s, and code generated into %s cannot import it (the module imports the generated code: an import cycle); move the type to a types package such as %sapi, or generate into the module's own package", label, local[0], modPkg, out.path, lastElem(modPkg))
		return nil
	}
	if a.client != nil && handler {
		if params.Len() > i {
			s, _ := a.client.shape(a, params.At(i).Type(), site{where, "method " + label + ": request"})
			s.Nullable = false // the client always sends an object
			m.Request = &s
		}
		if results.Len() == 2 {
			s, _ := a.client.shape(a, results.At(0).Type(), site{where, "method " + label + ": result"})
			m.Reply = &s
		}
	}
	return m
}

// wantSetup is the one shape of a module's optional setup hook.
const wantSetup = "Setup(app *core.App, settings *core.ModuleSettings) error"

// glue decides what the generator writes into a module's own package: the
// pieces of core.Module and the registration the package does not declare
// itself. Declarations in files mqantgen generated do not count, so a
// regeneration writes the same glue again. A struct that does not embed
// core.BaseModule gets none (it cannot be initialised generically).
func (a *analyzer) glue(pkg *packages.Package, spec *ast.TypeSpec, out target, several bool) *Glue {
	obj, _ := pkg.TypesInfo.Defs[spec.Name].(*types.TypeName)
	if obj == nil {
		return nil
	}
	named, _ := obj.Type().(*types.Named)
	st, _ := named.Underlying().(*types.Struct)
	embeds := false
	for i := 0; st != nil && i < st.NumFields(); i++ {
		f := st.Field(i)
		t := f.Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		embeds = embeds || f.Embedded() && isNamed(t, corePath, "BaseModule")
	}
	if !embeds {
		return nil
	}
	generated := map[string]bool{}
	for _, f := range pkg.Syntax {
		if len(f.Comments) > 0 && strings.HasPrefix(f.Comments[0].Text(), "Code generated by mqantgen.") {
			generated[a.pos.fset.Position(f.Pos()).Filename] = true
		}
	}
	user := func(o types.Object) bool {
		return o != nil && !generated[a.pos.fset.Position(o.Pos()).Filename]
	}
	ms := types.NewMethodSet(types.NewPointer(named))
	method := func(name string) *types.Func {
		if sel := ms.Lookup(pkg.Types, name); sel != nil && user(sel.Obj()) {
			return sel.Obj().(*types.Func)
		}
		return nil
	}
	g := &Glue{GetType: method("GetType") == nil, OnInit: method("OnInit") == nil}
	if out.path != pkg.PkgPath {
		g.GenQual = out.name + "."
	}
	suffix := ""
	if several {
		suffix = obj.Name()
	}
	scope := pkg.Types.Scope()
	newName := "New" + suffix
	if o := scope.Lookup(newName); !user(o) {
		g.New, g.NewFunc = newName, newName
	} else if fn, ok := o.(*types.Func); ok && isModuleFactory(fn.Signature()) {
		g.NewFunc = newName
	}
	if o := scope.Lookup("Register" + suffix); !user(o) && g.NewFunc != "" {
		g.Register = "Register" + suffix
	}
	if setup := method("Setup"); setup != nil {
		if !g.OnInit {
			return g // the package's own OnInit decides what to call
		}
		sig := setup.Signature()
		p, r := sig.Params(), sig.Results()
		ok := p.Len() == 2 && r.Len() == 1 && !sig.Variadic() &&
			isPtrTo(p.At(0).Type(), corePath, "App") && isPtrTo(p.At(1).Type(), corePath, "ModuleSettings") &&
			types.Identical(r.At(0).Type(), types.Universe.Lookup("error").Type())
		if !ok {
			a.errorf(setup.Pos(), "method %s.Setup: the generated OnInit calls %s; this one is %s", obj.Name(), wantSetup, short(sig))
			return g
		}
		g.Setup = true
	}
	return g
}

// isModuleFactory reports whether sig is func() core.Module, what
// App.Register takes.
func isModuleFactory(sig *types.Signature) bool {
	return sig.Recv() == nil && sig.Params().Len() == 0 && sig.Results().Len() == 1 && isNamed(sig.Results().At(0).Type(), corePath, "Module")
}

func isPtrTo(t types.Type, path, name string) bool {
	p, ok := t.(*types.Pointer)
	return ok && isNamed(p.Elem(), path, name)
}
