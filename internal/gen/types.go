package gen

// Predicates on Go types the analyzer checks method shapes with, and what
// encoding/json can carry.

import (
	"fmt"
	"go/token"
	"go/types"
	"slices"
	"strings"
)

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

// flatFields returns the fields of the struct t points to when generated
// code can read its JSON's common shape itself (coregen.FlatArg): exported
// fields of string, bool, integer and float kinds, keyed by plain names
// (letters, digits, '_') no two of which differ in case only, nothing
// embedded, no ",string" option, no UnmarshalJSON or UnmarshalText on the
// struct or a field. nil otherwise: the codec reads it all.
func flatFields(t types.Type) []FlatField {
	_, fields := flatStruct(t)
	if fields == nil {
		return nil
	}
	out := make([]FlatField, len(fields))
	for i, f := range fields {
		out[i] = f.FlatField
	}
	return out
}

// flatOut returns the fields of the struct t points to when generated code
// can write its JSON itself (coregen.FlatResult) to the codec's bytes: as
// flatFields, but without floats (the codec's number formatting is its
// own), nor fields or structs that encode themselves (MarshalJSON,
// MarshalText), and with ",omitempty" kept. nil otherwise: the codec writes it.
func flatOut(t types.Type) []FlatOutField {
	elem, fields := flatStruct(t)
	if fields == nil || encodesItself(elem) {
		return nil
	}
	out := make([]FlatOutField, len(fields))
	for i, f := range fields {
		write := strings.Replace(f.Read, "Flat", "Append", 1)
		if write == "AppendFloat" || encodesItself(f.typ) {
			return nil
		}
		out[i] = FlatOutField{Key: f.Key, Name: f.Name, Write: write, OmitEmpty: slices.Contains(f.opts, "omitempty")}
	}
	return out
}

// flatStructField is a field of a flat struct with what flatOut needs
// beyond flatFields: its type and its tag's options.
type flatStructField struct {
	FlatField
	typ  types.Type
	opts []string
}

// flatStruct returns the struct t points to and its fields when it is flat
// (flatFields' rules); nil fields otherwise.
func flatStruct(t types.Type) (types.Type, []flatStructField) {
	p, ok := types.Unalias(t).(*types.Pointer)
	if !ok {
		return nil, nil
	}
	elem := types.Unalias(p.Elem())
	st, ok := elem.Underlying().(*types.Struct)
	if !ok || decodesItself(elem) {
		return nil, nil
	}
	var out []flatStructField
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		if f.Embedded() {
			return nil, nil // promoted fields: the codec's rules
		}
		if !f.Exported() {
			continue
		}
		tag := reflectTag(st.Tag(i), "json")
		if tag == "-" {
			continue
		}
		key, opts, _ := strings.Cut(tag, ",")
		optList := strings.Split(opts, ",")
		if slices.Contains(optList, "string") {
			return nil, nil // numbers and booleans in strings: the codec's rules
		}
		if key == "" {
			key = f.Name()
		}
		read := flatRead(f.Type())
		if !plainKey(key) || read == "" || decodesItself(f.Type()) {
			return nil, nil
		}
		for _, o := range out {
			if strings.EqualFold(o.Key, key) {
				return nil, nil // keys that differ in case only: the codec's rules
			}
		}
		out = append(out, flatStructField{FlatField: FlatField{Key: key, Name: f.Name(), Read: read}, typ: f.Type(), opts: optList})
	}
	if len(out) == 0 || len(out) > maxFlatFields {
		return nil, nil
	}
	return elem, out
}

// encodesItself: values of t (or *t) encode through their own methods.
func encodesItself(t types.Type) bool {
	return hasMethod(t, "MarshalJSON") || hasMethod(t, "MarshalText")
}

// maxFlatFields bounds a flat struct: beyond it the codec's reading by
// hashed keys beats a switch.
const maxFlatFields = 32

// flatRead names coregen's reader of a field of type t, "" when none.
func flatRead(t types.Type) string {
	b, ok := types.Unalias(t).Underlying().(*types.Basic)
	if !ok {
		return ""
	}
	switch b.Kind() {
	case types.String:
		return "FlatString"
	case types.Bool:
		return "FlatBool"
	case types.Int, types.Int8, types.Int16, types.Int32, types.Int64:
		return "FlatInt"
	case types.Uint, types.Uint8, types.Uint16, types.Uint32, types.Uint64:
		return "FlatUint"
	case types.Float32, types.Float64:
		return "FlatFloat"
	}
	return ""
}

// decodesItself: values of t (or *t) decode through their own methods.
func decodesItself(t types.Type) bool {
	return hasMethod(t, "UnmarshalJSON") || hasMethod(t, "UnmarshalText")
}

// plainKey: letters, digits and '_' only, so that matching the key needs
// none of the codec's rules (escapes, folding of non-ASCII letters).
func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
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
