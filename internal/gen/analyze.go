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
		is.use(runtimePath, "runtime")
		mod := a.module(pkg, m.spec, m.dirs["module"], decls, is, out)
		if mod == nil {
			continue
		}
		mod.Doc = m.doc
		a.posOf[mod] = m.spec.Pos()
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
		if decl != nil {
			m.Doc = docText(decl.Doc)
		}
		if m.ClientName == "" {
			a.errorf(where, "method %s: a handler needs a name after the Handler_ prefix, e.g. Handler_Say", label)
			continue
		}
		for _, n := range []string{m.ClientName, m.ClientName + "NR"} {
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

// localTypes lists the named types in t that the generated package cannot
// refer to: types of the module's own package, when the output goes
// elsewhere (the module imports the output package, so it would be a cycle).
func localTypes(t types.Type, modPkg string, out target) []string {
	if out.path == modPkg {
		return nil
	}
	var bad []string
	walkNamed(t, map[types.Type]bool{}, func(n *types.Named) {
		if p := n.Obj().Pkg(); p != nil && p.Path() == modPkg {
			bad = append(bad, n.Obj().Name())
		}
	})
	return bad
}

func lastElem(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// walkNamed calls f for every named type that appears in t's spelling.
func walkNamed(t types.Type, seen map[types.Type]bool, f func(*types.Named)) {
	if seen[t] {
		return
	}
	seen[t] = true
	switch t := t.(type) {
	case *types.Named:
		f(t)
		for i := 0; i < t.TypeArgs().Len(); i++ {
			walkNamed(t.TypeArgs().At(i), seen, f)
		}
	case *types.Alias:
		walkNamed(types.Unalias(t), seen, f)
	case *types.Pointer:
		walkNamed(t.Elem(), seen, f)
	case *types.Slice:
		walkNamed(t.Elem(), seen, f)
	case *types.Array:
		walkNamed(t.Elem(), seen, f)
	case *types.Map:
		walkNamed(t.Key(), seen, f)
		walkNamed(t.Elem(), seen, f)
	}
}

func spell(t types.Type, is *importSet) Type {
	ty := Type{Go: types.TypeString(t, is.qualifier)}
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		ty.IsPtr = true
		ty.Elem = types.TypeString(u.Elem(), is.qualifier)
	case *types.Map:
		ty.IsMap = true
	}
	return ty
}

func validType(t types.Type) bool {
	ok := true
	var walk func(types.Type, int)
	walk = func(t types.Type, depth int) {
		if depth > 8 {
			return
		}
		switch t := types.Unalias(t).(type) {
		case *types.Basic:
			if t.Kind() == types.Invalid {
				ok = false
			}
		case *types.Pointer:
			walk(t.Elem(), depth+1)
		case *types.Slice:
			walk(t.Elem(), depth+1)
		case *types.Array:
			walk(t.Elem(), depth+1)
		case *types.Map:
			walk(t.Key(), depth+1)
			walk(t.Elem(), depth+1)
		}
	}
	walk(t, 0)
	return ok
}

func isNamed(t types.Type, path, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == path && n.Obj().Name() == name
}

func isContext(t types.Type) bool { return isNamed(t, "context", "Context") }

func isSession(t types.Type) bool {
	p, ok := types.Unalias(t).(*types.Pointer)
	return ok && isNamed(p.Elem(), gatePath, "Session")
}

func isSessionValue(t types.Type) bool { return isNamed(t, gatePath, "Session") }

func isError(t types.Type) bool { return types.Identical(t, types.Universe.Lookup("error").Type()) }

func isString(t types.Type) bool {
	b, ok := types.Unalias(t).(*types.Basic)
	return ok && b.Kind() == types.String
}

func isEmptyInterface(t types.Type) bool {
	i, ok := types.Unalias(t).Underlying().(*types.Interface)
	return ok && i.Empty()
}

// isLegacyMap: map[string]interface{} (or any), unnamed.
func isLegacyMap(t types.Type) bool {
	m, ok := types.Unalias(t).(*types.Map)
	return ok && isString(m.Key()) && isEmptyInterface(m.Elem())
}

// isLegacy: mqant's func(session map[string]interface{}, msg map[string]interface{}) (string, string).
func isLegacy(sig *types.Signature) bool {
	p, r := sig.Params(), sig.Results()
	return p.Len() == 2 && isLegacyMap(p.At(0).Type()) && isLegacyMap(p.At(1).Type()) &&
		r.Len() == 2 && isString(r.At(0).Type()) && isString(r.At(1).Type())
}

func isRequestType(t types.Type) bool {
	switch u := types.Unalias(t).Underlying().(type) {
	case *types.Pointer:
		_, ok := u.Elem().Underlying().(*types.Struct)
		return ok
	case *types.Map:
		b, ok := u.Key().Underlying().(*types.Basic)
		return ok && b.Kind() == types.String
	}
	return false
}

// jsonProblem says why values of t cannot go through encoding/json-style
// JSON, or "" when they can.
func jsonProblem(t types.Type, seen map[types.Type]bool) string {
	t = types.Unalias(t)
	if seen[t] {
		return ""
	}
	seen[t] = true
	if n, ok := t.(*types.Named); ok && hasMarshaler(n) {
		return ""
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Info()&types.IsComplex != 0:
			return "complex numbers have no JSON form"
		case u.Kind() == types.UnsafePointer:
			return "unsafe.Pointer has no JSON form"
		}
		return ""
	case *types.Pointer:
		return jsonProblem(u.Elem(), seen)
	case *types.Slice:
		return jsonProblem(u.Elem(), seen)
	case *types.Array:
		return jsonProblem(u.Elem(), seen)
	case *types.Map:
		k, ok := u.Key().Underlying().(*types.Basic)
		if !ok || (k.Info()&(types.IsString|types.IsInteger) == 0) {
			if n, named := types.Unalias(u.Key()).(*types.Named); !named || !hasTextMarshaler(n) {
				return fmt.Sprintf("map key %s must be a string or an integer", u.Key())
			}
		}
		return jsonProblem(u.Elem(), seen)
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if !f.Exported() && !f.Embedded() {
				continue
			}
			if strings.HasPrefix(reflectTag(u.Tag(i), "json"), "-") && reflectTag(u.Tag(i), "json") == "-" {
				continue
			}
			if why := jsonProblem(f.Type(), seen); why != "" {
				return "field " + f.Name() + ": " + why
			}
		}
		return ""
	case *types.Interface:
		if u.Empty() {
			return ""
		}
		return fmt.Sprintf("interface %s cannot be decoded (only interface{}/any can)", t)
	case *types.Chan:
		return "channels have no JSON form"
	case *types.Signature:
		return "functions have no JSON form"
	}
	return fmt.Sprintf("%s has no JSON form", t)
}

func hasMethod(t types.Type, name string) bool {
	obj, _, _ := types.LookupFieldOrMethod(types.NewPointer(t), true, nil, name)
	_, ok := obj.(*types.Func)
	return ok
}

func hasMarshaler(n *types.Named) bool {
	return hasMethod(n, "MarshalJSON") && hasMethod(n, "UnmarshalJSON")
}

func hasTextMarshaler(n *types.Named) bool {
	return hasMethod(n, "MarshalText") && hasMethod(n, "UnmarshalText")
}

// reflectTag reads one key of a struct tag without the reflect package.
func reflectTag(tag, key string) string {
	for tag != "" {
		tag = strings.TrimLeft(tag, " ")
		i := strings.Index(tag, ":\"")
		if i <= 0 {
			return ""
		}
		name := tag[:i]
		rest := tag[i+2:]
		j := strings.Index(rest, "\"")
		for j > 0 && rest[j-1] == '\\' {
			k := strings.Index(rest[j+1:], "\"")
			if k < 0 {
				return ""
			}
			j += k + 1
		}
		if j < 0 {
			return ""
		}
		if name == key {
			return rest[:j]
		}
		tag = rest[j+1:]
	}
	return ""
}

// nameParams gives every argument a usable name: the author's own where it
// cannot clash with anything in the generated file, a0, a1, ... otherwise.
func nameParams(mod *Module, is *importSet) {
	clash := is.names()
	for _, n := range reservedNames {
		clash[n] = true
	}
	for _, m := range mod.Methods {
		used := map[string]bool{}
		for i := range m.Params {
			n := m.Params[i].Name
			if m.Kind == KindHandler || n == "" || n == "_" || clash[n] || used[n] || token.IsKeyword(n) || strings.HasPrefix(n, "a") && len(n) > 1 && n[1] >= '0' && n[1] <= '9' {
				n = fmt.Sprintf("a%d", i)
			}
			if m.Kind == KindHandler {
				n = "in"
			}
			used[n] = true
			m.Params[i].Name = n
		}
	}
}

// nonNull applies //mqant:nonnull to a handler: its result must be one Go
// can return as nil (a pointer, slice or map), and the reply is then typed
// without null.
func (a *analyzer) nonNull(m *Method, fn *types.Func, label string) bool {
	res := fn.Signature().Results()
	if m.Result == nil || m.Legacy || res.Len() != 2 {
		a.errorf(fn.Pos(), "method %s: //mqant:nonnull has no effect: the method returns no result", label)
		return false
	}
	switch res.At(0).Type().Underlying().(type) {
	case *types.Pointer, *types.Slice, *types.Map:
	default:
		a.errorf(fn.Pos(), "method %s: //mqant:nonnull has no effect: its result %s is never null; it applies to pointer, slice and map results", label, short(res.At(0).Type()))
		return false
	}
	m.NonNull = true
	if m.Reply != nil {
		m.Reply.Nullable = false
	}
	return true
}
