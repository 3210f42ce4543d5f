package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strings"
	"unicode"

	"golang.org/x/tools/go/packages"
)

// clientAPI turns the Go types that clients see (handler requests and
// replies, pushes) into Shapes: the JSON form encoding/json (and
// json-iterator's compatible configuration) gives them. It is shared by every
// module of one generator run, so a Go type becomes one Message with one name.
type clientAPI struct {
	messages map[string]*Message // by Go package path + "." + type name
	pkgName  map[*Message]string // the Go package name, for disambiguation
	docs     map[token.Pos]string
}

func newClientAPI(pkgs []*packages.Package) *clientAPI {
	c := &clientAPI{messages: map[string]*Message{}, pkgName: map[*Message]string{}, docs: map[token.Pos]string{}}
	// Doc comments of types and fields, for the ones declared in loaded
	// packages (positions of other packages' objects have no syntax here).
	for _, pkg := range pkgs {
		for _, f := range pkg.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GenDecl:
					if n.Tok == token.TYPE && len(n.Specs) == 1 {
						ts := n.Specs[0].(*ast.TypeSpec)
						if d := docText(ts.Doc, n.Doc); d != "" {
							c.docs[ts.Name.Pos()] = d
						}
					}
				case *ast.TypeSpec:
					if d := docText(n.Doc); d != "" {
						c.docs[n.Name.Pos()] = d
					}
				case *ast.Field:
					if d := docText(n.Doc, n.Comment); d != "" {
						for _, id := range n.Names {
							c.docs[id.Pos()] = d
						}
						if len(n.Names) == 0 {
							c.docs[embeddedPos(n.Type)] = d
						}
					}
				}
				return true
			})
		}
	}
	return c
}

// embeddedPos is where go/types puts an embedded field: its type name.
func embeddedPos(e ast.Expr) token.Pos {
	switch e := e.(type) {
	case *ast.StarExpr:
		return embeddedPos(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Pos()
	case *ast.IndexExpr:
		return embeddedPos(e.X)
	case *ast.IndexListExpr:
		return embeddedPos(e.X)
	}
	return e.Pos()
}

// site says where a type is used, for error messages.
type site struct {
	pos   token.Pos
	label string // e.g. "method Chat.Handler_Say: request"
}

// shape returns the JSON form of t; ok is false when t has none a client can
// be told about, after reporting why.
func (c *clientAPI) shape(a *analyzer, t types.Type, at site) (Shape, bool) {
	t = types.Unalias(t)
	if n, isNamed := t.(*types.Named); isNamed {
		obj := n.Obj()
		if obj.Pkg() != nil {
			switch obj.Pkg().Path() + "." + obj.Name() {
			case "time.Time":
				return Shape{Kind: ShapeString, Format: FormatDateTime}, true
			case "encoding/json.RawMessage":
				return Shape{Kind: ShapeAny}, true
			case "encoding/json.Number":
				return Shape{Kind: ShapeNumber}, true
			}
		}
		if hasMethod(n, "MarshalJSON") {
			a.errorf(at.pos, "%s: type %s has its own MarshalJSON, so its JSON form is unknown to mqantgen and cannot be written as a client type; want a struct, map, slice or basic type (or time.Time, json.RawMessage)", at.label, short(n))
			return Shape{}, false
		}
		if hasMethod(n, "MarshalText") {
			return Shape{Kind: ShapeString}, true
		}
		if n.TypeArgs().Len() > 0 {
			if _, isStruct := n.Underlying().(*types.Struct); isStruct {
				a.errorf(at.pos, "%s: generic type %s cannot be a client message type; want a non-generic struct type", at.label, short(n))
				return Shape{}, false
			}
		}
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return basicShape(u, a, at)
	case *types.Pointer:
		s, ok := c.shape(a, u.Elem(), at)
		s.Nullable = true
		return s, ok
	case *types.Slice:
		if isByteElem(u.Elem()) {
			return Shape{Kind: ShapeString, Format: FormatBytes, Nullable: true}, true
		}
		e, ok := c.shape(a, u.Elem(), at)
		return Shape{Kind: ShapeArray, Elem: &e, Nullable: true}, ok
	case *types.Array:
		e, ok := c.shape(a, u.Elem(), at)
		return Shape{Kind: ShapeArray, Elem: &e, Len: int(u.Len())}, ok
	case *types.Map:
		e, ok := c.shape(a, u.Elem(), at)
		return Shape{Kind: ShapeMap, Elem: &e, Nullable: true}, ok
	case *types.Struct:
		if n, isNamed := t.(*types.Named); isNamed {
			m, ok := c.message(a, n, at)
			return Shape{Kind: ShapeRef, Ref: m}, ok
		}
		fs, ok := c.fields(a, t, at)
		return Shape{Kind: ShapeObject, Fields: fs}, ok
	case *types.Interface:
		if u.Empty() {
			return Shape{Kind: ShapeAny}, true
		}
	}
	a.errorf(at.pos, "%s: type %s has no JSON form a client can use", at.label, short(t))
	return Shape{}, false
}

func basicShape(b *types.Basic, a *analyzer, at site) (Shape, bool) {
	info := b.Info()
	switch {
	case info&types.IsBoolean != 0:
		return Shape{Kind: ShapeBoolean}, true
	case info&types.IsString != 0:
		return Shape{Kind: ShapeString}, true
	case info&types.IsInteger != 0:
		s := Shape{Kind: ShapeInteger, Bits: 64, Unsigned: info&types.IsUnsigned != 0}
		switch b.Kind() {
		case types.Int8, types.Uint8:
			s.Bits = 8
		case types.Int16, types.Uint16:
			s.Bits = 16
		case types.Int32, types.Uint32:
			s.Bits = 32
		}
		return s, true
	case info&types.IsFloat != 0:
		return Shape{Kind: ShapeNumber}, true
	}
	a.errorf(at.pos, "%s: type %s has no JSON form a client can use", at.label, b)
	return Shape{}, false
}

// isByteElem: encoding/json writes a slice of this element type as a base64
// string.
func isByteElem(t types.Type) bool {
	b, ok := types.Unalias(t).Underlying().(*types.Basic)
	if !ok || b.Kind() != types.Uint8 {
		return false
	}
	if n, ok := types.Unalias(t).(*types.Named); ok {
		return !hasMethod(n, "MarshalJSON") && !hasMethod(n, "MarshalText")
	}
	return true
}

// message returns the Message of a named struct type, building it on first
// use. It is registered before its fields are built, so recursive types end.
func (c *clientAPI) message(a *analyzer, n *types.Named, at site) (*Message, bool) {
	obj := n.Obj()
	key := obj.Pkg().Path() + "." + obj.Name()
	if m, ok := c.messages[key]; ok {
		return m, true
	}
	m := &Message{Name: obj.Name(), Go: obj.Pkg().Name() + "." + obj.Name(), Doc: c.docs[obj.Pos()]}
	c.messages[key] = m
	c.pkgName[m] = obj.Pkg().Name()
	fs, ok := c.fields(a, n, at)
	m.Fields = fs
	return m, ok
}

// jsonField is one field as encoding/json sees it.
type jsonField struct {
	name   string
	tagged bool
	index  []int
	typ    types.Type // the field's declared type
	omit   bool       // omitempty or omitzero
	quoted bool       // the ",string" option on a basic type
	viaPtr bool       // reached through an embedded pointer
	v      *types.Var
}

// fields returns the JSON members of a struct type, following encoding/json:
// exported fields, json tags (name, "-", omitempty, omitzero, string), and
// embedded structs' fields promoted by Go's depth and tag rules.
func (c *clientAPI) fields(a *analyzer, t types.Type, at site) ([]Field, bool) {
	var out []Field
	ok := true
	for _, f := range jsonFields(t) {
		fat := site{pos: f.v.Pos(), label: fmt.Sprintf("%s: field %s", at.label, f.v.Name())}
		if !f.v.Pos().IsValid() {
			fat.pos = at.pos
		}
		s, fok := c.shape(a, f.typ, fat)
		ok = ok && fok
		_, isPtr := types.Unalias(f.typ).Underlying().(*types.Pointer)
		if f.quoted {
			s = Shape{Kind: ShapeString, Nullable: isPtr}
			if b, isBasic := derefType(f.typ).Underlying().(*types.Basic); isBasic && b.Info()&types.IsString == 0 {
				s.Format = FormatDecimal
			}
		}
		out = append(out, Field{
			Name:     f.name,
			GoName:   f.v.Name(),
			Doc:      c.docs[f.v.Pos()],
			Shape:    s,
			Optional: f.omit || isPtr || f.viaPtr,
		})
	}
	return out, ok
}

func derefType(t types.Type) types.Type {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

func structOf(t types.Type) *types.Struct {
	s, _ := types.Unalias(t).Underlying().(*types.Struct)
	return s
}

// jsonFields is encoding/json's typeFields on go/types: a breadth-first walk
// of embedded structs, then Go's rules for which of several fields with one
// name wins (the shallowest; at equal depth the tagged one; otherwise none).
func jsonFields(t types.Type) []jsonField {
	var fields []jsonField
	current := []jsonField{}
	next := []jsonField{{typ: t}}
	var count, nextCount map[types.Type]int
	visited := map[types.Type]bool{}
	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[types.Type]int{}
		for _, f := range current {
			if visited[f.typ] {
				continue
			}
			visited[f.typ] = true
			st := structOf(f.typ)
			for i := 0; i < st.NumFields(); i++ {
				sf := st.Field(i)
				embeddedPtr := false
				if sf.Embedded() {
					et := types.Unalias(sf.Type())
					if p, ok := et.(*types.Pointer); ok {
						et, embeddedPtr = p.Elem(), true
					}
					if !sf.Exported() && structOf(et) == nil {
						continue
					}
				} else if !sf.Exported() {
					continue
				}
				tag := reflectTag(st.Tag(i), "json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTagName(name) {
					name = ""
				}
				index := append(append([]int(nil), f.index...), i)
				ft := types.Unalias(sf.Type())
				if p, ok := ft.(*types.Pointer); ok {
					ft = p.Elem()
				}
				quoted := false
				if hasOpt(opts, "string") {
					if b, ok := ft.Underlying().(*types.Basic); ok && b.Info()&(types.IsBoolean|types.IsInteger|types.IsFloat|types.IsString) != 0 {
						quoted = true
					}
				}
				if name != "" || !sf.Embedded() || structOf(ft) == nil {
					tagged := name != ""
					if name == "" {
						name = sf.Name()
					}
					jf := jsonField{name: name, tagged: tagged, index: index, typ: sf.Type(),
						omit: hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero"), quoted: quoted, viaPtr: f.viaPtr, v: sf}
					fields = append(fields, jf)
					if count[f.typ] > 1 {
						// Several embedded structs of this type at this depth: a
						// second copy makes the conflict below drop the field.
						fields = append(fields, jf)
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, jsonField{name: sf.Name(), index: index, typ: ft, viaPtr: f.viaPtr || embeddedPtr})
				}
			}
		}
	}
	sort.SliceStable(fields, func(i, j int) bool {
		x, y := fields[i], fields[j]
		if x.name != y.name {
			return x.name < y.name
		}
		if len(x.index) != len(y.index) {
			return len(x.index) < len(y.index)
		}
		if x.tagged != y.tagged {
			return x.tagged
		}
		return lessIndex(x.index, y.index)
	})
	out := fields[:0]
	for advance, i := 0, 0; i < len(fields); i += advance {
		fi := fields[i]
		for advance = 1; i+advance < len(fields); advance++ {
			if fields[i+advance].name != fi.name {
				break
			}
		}
		if advance == 1 {
			out = append(out, fi)
			continue
		}
		group := fields[i : i+advance]
		if len(group[0].index) == len(group[1].index) && group[0].tagged == group[1].tagged {
			continue // ambiguous: encoding/json writes neither
		}
		out = append(out, group[0])
	}
	sort.Slice(out, func(i, j int) bool { return lessIndex(out[i].index, out[j].index) })
	return out
}

func lessIndex(x, y []int) bool {
	for k, xk := range x {
		if k >= len(y) {
			return false
		}
		if xk != y[k] {
			return xk < y[k]
		}
	}
	return len(x) < len(y)
}

func hasOpt(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}

// validTagName is encoding/json's isValidTag.
func validTagName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// reservedMessageNames are names a message cannot take in client code: the
// SDK's own names and TypeScript's type keywords.
var reservedMessageNames = map[string]bool{
	"mqant": true, "Promise": true, "any": true, "unknown": true, "never": true, "string": true,
	"number": true, "boolean": true, "symbol": true, "object": true, "bigint": true,
	"undefined": true, "void": true, "null": true,
}

// finish names every message (its Go name; package name + Go name where two
// packages' types share one) and lists each module's messages.
func (c *clientAPI) finish(files []*File) {
	var mods []*Module
	for _, f := range files {
		mods = append(mods, f.Modules...)
	}
	reserved := map[string]bool{}
	for n := range reservedMessageNames {
		reserved[n] = true
	}
	for _, m := range mods {
		reserved[m.Type+"Client"] = true
	}
	keys := make([]string, 0, len(c.messages))
	byName := map[string]int{}
	for k, m := range c.messages {
		keys = append(keys, k)
		byName[m.Name]++
	}
	sort.Strings(keys)
	taken := map[string]bool{}
	for _, k := range keys {
		m := c.messages[k]
		name := m.Name
		if byName[m.Name] > 1 {
			name = exportedName(c.pkgName[m]) + m.Name
		}
		if reserved[name] {
			name += "Message"
		}
		base := name
		for i := 2; taken[name]; i++ {
			name = fmt.Sprintf("%s%d", base, i)
		}
		taken[name] = true
		m.Name = name
	}
	for _, mod := range mods {
		seen := map[*Message]bool{}
		var list []*Message
		var walk func(s *Shape)
		walk = func(s *Shape) {
			if s == nil {
				return
			}
			if s.Ref != nil && !seen[s.Ref] {
				seen[s.Ref] = true
				list = append(list, s.Ref)
				for i := range s.Ref.Fields {
					walk(&s.Ref.Fields[i].Shape)
				}
			}
			walk(s.Elem)
			for i := range s.Fields {
				walk(&s.Fields[i].Shape)
			}
		}
		for _, me := range mod.Methods {
			walk(me.Request)
			walk(me.Reply)
		}
		for _, p := range mod.Pushes {
			walk(p.Body)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		mod.Messages = list
	}
}

func exportedName(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// clientMemberName is a route's or push's member name in client code:
// lowerCamelCase of the Go client name ("JoinChat" -> "joinChat",
// "HTTPGet" -> "httpGet"); pushes read as events ("OnSay" -> "onSay",
// "Tick" -> "onTick").
func clientMemberName(name string, push bool) string {
	if push && !(strings.HasPrefix(name, "On") && (len(name) == 2 || unicode.IsUpper(rune(name[2])))) {
		name = "On" + name
	}
	r := []rune(name)
	n := 0
	for n < len(r) && unicode.IsUpper(r[n]) {
		n++
	}
	switch {
	case n == 0:
	case n == 1 || n == len(r):
		for i := 0; i < n; i++ {
			r[i] = unicode.ToLower(r[i])
		}
	default: // "HTTPGet": the last capital starts the next word
		for i := 0; i < n-1; i++ {
			r[i] = unicode.ToLower(r[i])
		}
	}
	return string(r)
}

// reservedMembers are the client class's own members.
var reservedMembers = map[string]bool{"constructor": true, "core": true, "defaults": true, "module": true, "prototype": true}

// checkMembers reports routes and pushes of one module whose client member
// names clash with each other or with the client class's own members.
func (c *clientAPI) checkMembers(a *analyzer, mod *Module, pos map[any]token.Pos) {
	taken := map[string]string{}
	claim := func(key any, name, what string) {
		switch prev, dup := taken[name]; {
		case reservedMembers[name]:
			a.errorf(pos[key], "%s: its client method %s is a name the generated client class uses itself; rename it", what, name)
		case dup:
			a.errorf(pos[key], "%s: its client method %s clashes with %s; rename one", what, name, prev)
		default:
			taken[name] = what
		}
	}
	for _, m := range mod.Methods {
		if m.Kind == KindHandler {
			claim(m, clientMemberName(m.ClientName, false), "method "+mod.GoName+"."+m.Name)
		}
	}
	for _, p := range mod.Pushes {
		claim(p, clientMemberName(p.Name, true), "push "+p.Topic)
	}
}
