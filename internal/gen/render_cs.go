package gen

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"unicode"

	"github.com/mqantgen/mqantgen/templates"
)

// The C# client SDK, for Unity and Godot .NET games: for each module one
// file (<Module>.cs) with its messages as classes named and shaped like the
// wire's JSON and a typed client, plus the shared runtime (Runtime/, copied
// from templates/sdk/csharp). It is written in the C# 7.2 subset so Debian's
// mono (mcs -langversion:7.2) and every Unity version since 2018 compile it.
// Every decision about C# spelling is made here; the template lays it out.

var csTemplate = template.Must(template.New("cs_module.tmpl").ParseFS(templates.FS, "cs_module.tmpl"))

// csRuntimeDir is the runtime's directory under the output directory.
const csRuntimeDir = "Runtime"

// Fully qualified names, so a message called List or Task cannot capture a
// reference in generated code.
const (
	csTask    = "global::System.Threading.Tasks.Task"
	csRuntime = "global::Mqant."
)

// csFile is what cs_module.tmpl sees for one module.
type csFile struct {
	Source    string
	Namespace string // e.g. "Mqant.Api.Chat"
	Module    string // module type, e.g. "Chat"
	ModuleLit string // the same as a C# string literal
	Class     string // e.g. "ChatClient"
	Doc       string // indented for members of the namespace
	Classes   []csClass
	Methods   []csMethod
	Pushes    []csPush
}

type csClass struct {
	Doc    string
	Name   string
	Fields []csField
}

type csField struct {
	Doc  string // indented for class members
	Attr string // e.g. `[global::Mqant.WireName("odd-name")]`, "" when the identifier is the wire name
	Type string
	Name string // C# identifier
}

type csMethod struct {
	Doc    string
	NRDoc  string
	Name   string // e.g. "Say"
	NRName string // e.g. "SayNR"
	Route  string
	Params string // e.g. "SayRequest req, global::Mqant.CallOptions options = null"
	Result string // e.g. "global::System.Threading.Tasks.Task<string>"
	Call   string // e.g. `Core.Call<string>("Chat/Handler_Say", req, options ?? Defaults)`
	Send   string // the NR form's body expression
}

type csPush struct {
	Doc      string
	Event    string // e.g. "OnSay"
	Topic    string
	TopicLit string // the topic as a C# string literal
	Type     string
}

// csReservedMembers are the client class's own members and object's.
var csReservedMembers = map[string]bool{
	"Core": true, "Defaults": true, "Module": true, "Dispose": true, "Equals": true, "GetHashCode": true,
	"GetType": true, "ToString": true, "MemberwiseClone": true, "Finalize": true, "ReferenceEquals": true,
}

// renderCSharp renders the C# SDK of every module in files into dir.
func renderCSharp(files []*File, dir string) ([]Output, error) {
	var outs []Output
	err := fs.WalkDir(templates.FS, "sdk/csharp", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := templates.FS.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".cs") && !bytes.HasPrefix(b, []byte(generatedHeader)) {
			b = append([]byte(generatedHeader), b...)
		}
		rel := path.Join(csRuntimeDir, strings.TrimPrefix(p, "sdk/csharp/"))
		outs = append(outs, Output{Path: filepath.Join(dir, filepath.FromSlash(rel)), Content: b})
		return nil
	})
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, f := range files {
		for _, mod := range f.Modules {
			view, errs := csView(f.Source, mod)
			problems = append(problems, errs...)
			var buf bytes.Buffer
			if err := csTemplate.Execute(&buf, view); err != nil {
				return nil, fmt.Errorf("render %s.cs: %w", mod.Type, err)
			}
			name := csIdent(mod.Type) + ".cs"
			outs = append(outs, Output{Path: filepath.Join(dir, name), Content: buf.Bytes()})
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return outs, nil
}

// csView builds the view of one module. Its errors are C#-only name clashes
// the language-neutral checks cannot see.
func csView(source string, mod *Module) (*csFile, []string) {
	v := &csFile{Source: source, Module: mod.Type, ModuleLit: csString(mod.Type), Namespace: "Mqant.Api." + csIdent(mod.Type)}
	v.Class = csIdent(mod.Type) + "Client"
	doc := v.Class + " calls the " + mod.Type + " module's handlers through the gate"
	if len(mod.Pushes) > 0 {
		doc += " and raises its pushes as events"
	}
	doc += "."
	if mod.Doc != "" {
		doc += "\n\n" + mod.Doc
	}
	doc += "\n\nCalls complete and events fire inside MqantClient.Tick, on the thread that calls it (the game's)."
	v.Doc = csdoc(doc, "    ")

	names := newCSNames()
	for _, m := range mod.Messages {
		names.take(m.Name)
	}
	names.take(v.Class)
	// Anonymous objects become classes too, named after where they appear.
	var extra []csClass
	var typeOf func(s *Shape, hint string) string
	typeOf = func(s *Shape, hint string) string {
		switch s.Kind {
		case ShapeString:
			if s.Format == FormatBytes {
				return "byte[]"
			}
			return "string"
		case ShapeInteger:
			return csNullable(csInteger(s), s.Nullable)
		case ShapeNumber:
			return csNullable("double", s.Nullable)
		case ShapeBoolean:
			return csNullable("bool", s.Nullable)
		case ShapeArray:
			return "global::System.Collections.Generic.List<" + typeOf(s.Elem, hint+"Item") + ">"
		case ShapeMap:
			return "global::System.Collections.Generic.Dictionary<string, " + typeOf(s.Elem, hint+"Value") + ">"
		case ShapeObject:
			name := names.take(hint)
			c := csClass{Name: name, Doc: csdoc(name+" is an anonymous Go struct, named after where it appears.", "    ")}
			c.Fields = csFields(s.Fields, name, typeOf)
			extra = append(extra, c)
			return name
		case ShapeRef:
			return s.Ref.Name
		}
		return "object"
	}
	for _, m := range mod.Messages {
		c := csClass{Name: m.Name}
		d := m.Doc
		if d != "" {
			d += "\n\n"
		}
		c.Doc = csdoc(d+"Go type: "+m.Go+".", "    ")
		c.Fields = csFields(m.Fields, m.Name, typeOf)
		v.Classes = append(v.Classes, c)
	}

	var problems []string
	taken := map[string]string{}
	claim := func(name, what string) {
		switch prev, dup := taken[name]; {
		case csReservedMembers[name] || name == v.Class:
			problems = append(problems, fmt.Sprintf("%s: its C# client member %s is a name the generated client class uses itself; rename it", what, name))
		case dup:
			problems = append(problems, fmt.Sprintf("%s: its C# client member %s clashes with %s; rename one", what, name, prev))
		default:
			taken[name] = what
		}
	}
	for _, m := range mod.Methods {
		if m.Kind != KindHandler {
			continue
		}
		name := csIdent(exportedName(m.ClientName))
		what := "method " + mod.GoName + "." + m.Name
		claim(name, what)
		claim(name+"NR", what)
		cm := csMethod{Name: name, NRName: name + "NR", Route: m.Route, Result: csTask}
		params, body := "", "null"
		if m.Request != nil {
			params = typeOf(m.Request, name+"Request") + " req, "
			body = "req"
		}
		cm.Params = params + csRuntime + "CallOptions options = null"
		opts := "options ?? Defaults"
		if m.Reply != nil {
			t := typeOf(m.Reply, name+"Reply")
			cm.Result += "<" + t + ">"
			cm.Call = "Core.Call<" + t + ">(" + csString(m.Route) + ", " + body + ", " + opts + ")"
		} else {
			cm.Call = "Core.Call(" + csString(m.Route) + ", " + body + ", " + opts + ")"
		}
		cm.Send = "Core.Send(" + csString(m.Route) + ", " + body + ", " + opts + ")"
		d := m.Doc
		if d != "" {
			d += "\n\n"
		}
		cm.Doc = csdoc(d+"Route "+m.Route+". Fails with a MqantException: code Remote with the server's error text, or Timeout, Closed, Decode.", "        ")
		cm.NRDoc = csdoc(name+"NR sends the "+m.Route+" request without a msgid: the server runs the handler and sends no reply. The task completes once the request is written (QoS 0) or acknowledged (QoS 1).", "        ")
		v.Methods = append(v.Methods, cm)
	}
	sort.Slice(v.Methods, func(i, j int) bool { return v.Methods[i].Name < v.Methods[j].Name })
	for _, p := range mod.Pushes {
		ev := csIdent(exportedName(clientMemberName(p.Name, true)))
		claim(ev, "push "+p.Topic)
		cp := csPush{Event: ev, Topic: p.Topic, TopicLit: csString(p.Topic), Type: typeOf(p.Body, ev+"Body")}
		d := "Raised with every " + p.Topic + " push, inside MqantClient.Tick."
		if p.Doc != "" {
			d = p.Doc + "\n\n" + d
		}
		cp.Doc = csdoc(d, "        ")
		v.Pushes = append(v.Pushes, cp)
	}
	v.Classes = append(v.Classes, extra...)
	sort.Slice(v.Classes, func(i, j int) bool { return v.Classes[i].Name < v.Classes[j].Name })
	return v, problems
}

// csFields spells an object's fields as C# fields of class owner. A wire name
// that is no C# identifier, or is the class's own name, gets a field name of
// its own and a WireName attribute.
func csFields(fields []Field, owner string, typeOf func(*Shape, string) string) []csField {
	used := map[string]bool{owner: true}
	var out []csField
	for _, f := range fields {
		base := strings.TrimPrefix(csIdent(f.Name), "@")
		name := base
		for i := 2; used[name]; i++ {
			name = base + "_" + strconv.Itoa(i)
		}
		used[name] = true
		cf := csField{Name: name, Type: typeOf(&f.Shape, owner+exportedName(base))}
		if csKeywords[name] {
			cf.Name = "@" + name
		}
		if name != f.Name {
			cf.Attr = "[" + csRuntime + "WireName(" + csString(f.Name) + ")]"
		}
		d := f.Doc
		if note := csFieldNote(f); note != "" {
			if d != "" {
				d += "\n\n"
			}
			d += note
		}
		cf.Doc = csdoc(d, "        ")
		out = append(out, cf)
	}
	return out
}

// csFieldNote says what the C# type cannot: string formats, fixed lengths,
// and fields the server may leave out.
func csFieldNote(f Field) string {
	var notes []string
	switch f.Shape.Format {
	case FormatDateTime:
		notes = append(notes, "An RFC 3339 time.")
	case FormatDecimal:
		notes = append(notes, "A number written as a JSON string.")
	case FormatBytes:
		notes = append(notes, "Base64 in JSON.")
	}
	if f.Shape.Len > 0 {
		notes = append(notes, "Exactly "+strconv.Itoa(f.Shape.Len)+" items.")
	}
	if f.Optional {
		notes = append(notes, "May be absent.")
	}
	return strings.Join(notes, " ")
}

func csInteger(s *Shape) string {
	t := map[int]string{8: "sbyte", 16: "short", 32: "int", 64: "long"}[s.Bits]
	if s.Unsigned {
		t = map[int]string{8: "byte", 16: "ushort", 32: "uint", 64: "ulong"}[s.Bits]
	}
	if t == "" {
		t = "long"
	}
	return t
}

func csNullable(t string, nullable bool) string {
	if nullable {
		return t + "?"
	}
	return t
}

// csNames hands out class names unique within one file.
type csNames map[string]bool

func newCSNames() csNames { return csNames{} }

func (n csNames) take(name string) string {
	name = csIdent(exportedName(name))
	base := name
	for i := 2; n[name]; i++ {
		name = base + strconv.Itoa(i)
	}
	n[name] = true
	return name
}

var csIdentRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// csIdent makes s a C# identifier: other characters become '_', a leading
// digit gets a '_' before it, and keywords get '@' (which reflection and so
// the JSON codecs do not see).
func csIdent(s string) string {
	if !csIdentRe.MatchString(s) {
		r := []rune(s)
		for i, c := range r {
			if c > unicode.MaxASCII || !(c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c)) {
				r[i] = '_'
			}
		}
		s = string(r)
		if s == "" || unicode.IsDigit(r[0]) {
			s = "_" + s
		}
	}
	if csKeywords[s] {
		s = "@" + s
	}
	return s
}

// csKeywords are C#'s reserved keywords (contextual ones are valid names).
var csKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`abstract as base bool break byte case catch char checked class const
		continue decimal default delegate do double else enum event explicit extern false finally fixed
		float for foreach goto if implicit in int interface internal is lock long namespace new null
		object operator out override params private protected public readonly ref return sbyte sealed
		short sizeof stackalloc static string struct switch this throw true try typeof uint ulong
		unchecked unsafe ushort using virtual void volatile while`) {
		csKeywords[k] = true
	}
}

// csString quotes s as a C# string literal.
func csString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == 0x2028 || r == 0x2029 || r == 0x85:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// csdoc renders text as an XML doc comment (a summary, then remarks for the
// paragraphs after the first) at indent, ending in a newline; "" for no text.
func csdoc(text, indent string) string {
	text = strings.TrimSpace(text)
	if text == "" {
		return ""
	}
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	paras := strings.SplitN(esc.Replace(text), "\n\n", 2)
	var b strings.Builder
	block := func(tag, body string) {
		if !strings.Contains(body, "\n") {
			b.WriteString(indent + "/// <" + tag + ">" + body + "</" + tag + ">\n")
			return
		}
		b.WriteString(indent + "/// <" + tag + ">\n")
		for _, l := range strings.Split(body, "\n") {
			b.WriteString(strings.TrimRight(indent+"/// "+l, " ") + "\n")
		}
		b.WriteString(indent + "/// </" + tag + ">\n")
	}
	block("summary", paras[0])
	if len(paras) > 1 {
		block("remarks", paras[1])
	}
	return b.String()
}
