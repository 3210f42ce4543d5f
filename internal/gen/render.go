package gen

import (
	"bufio"
	"bytes"
	"fmt"
	"go/format"
	"slices"
	"strings"
	"text/template"

	"github.com/mqantgen/mqantgen/templates"
)

// The Go renderer: the model becomes a view of plain strings and bools
// (goFile), and go_module.tmpl only lays them out. Decisions about Go
// spelling are made here.

var goTemplate = template.Must(template.New("go_module.tmpl").ParseFS(templates.FS, "go_module.tmpl"))

// goFile is what go_module.tmpl sees for one generated Go file: the
// modules' generated code, their glue, or both (a module generated into its
// own package).
type goFile struct {
	Source  string
	Package string
	Imports []Import // standard library
	Others  []Import
	Modules []goModule
	Glue    []goGlue
}

type goModule struct {
	Name       string // e.g. "Chat"
	Type       string // the module type's value
	TypeConst  string // "Type" or "Chat_Type"
	DescVar    string // "ModuleDesc" or "Chat_ModuleDesc"
	Server     string // "ChatServer"
	Client     string // "ChatClient"
	GateQual   string // "gate." or ""
	Methods    []goMethod
	Pushes     []goPush
	HasMethods bool
}

type goMethod struct {
	Name          string // Go and wire name, e.g. "Handler_Say"
	ClientName    string // e.g. "Say"
	NameConst     string // "Say_MethodName" or "Chat_Say_MethodName"
	HandlerFunc   string // "_Chat_Say_Handler"
	Sync          bool
	ServerParams  string // "ctx context.Context, s *gate.Session, in *chatapi.SayRequest"
	ServerResults string // "(string, error)" or "error"
	ClientParams  string
	ClientResults string
	Result        string // the result type; "" when the method returns only an error
	NoReply       bool   // the client has an NR variant
	// Dispatch: how the generated handler takes the arguments out of the
	// request, and the call it makes.
	Legacy   bool
	ArgVars  []string // positional arguments, each declared as a var: "uid string"
	ArgSlots string   // "coregen.To(&uid), coregen.To(&keep)"
	ArgType  string   // the single argument's type, decoded into "in"
	ArgMap   bool     // ... which is a map
	// A flat struct argument: the generated reader of its JSON's common
	// shape ("_read_loginapi_LoginRequest") and its fields.
	FlatFunc   string
	FlatFields []FlatField
	FlatEmit   bool // the first method of the file with this argument type writes the reader
	// A flat struct result: the generated writer of its JSON
	// ("_write_loginapi_User"), its body, and whether this method's
	// file section writes it (the first with this result type).
	WriteFunc string
	WriteBody string
	WriteEmit bool
	Call      string // "srv.(ChatServer).Handler_Say(ctx, gate.NewSession(inv, req.Session), in)"
	NonNull   bool
	// The client's request literal fields beyond Fn.
	ReqFields string // ", Session: s.Data(), Arg: in"
}

type goPush struct {
	Name      string // "OnSay"
	Topic     string // "Chat/OnSay"
	TopicVar  string // "OnSay_Topic" or "Chat_OnSay_Topic"
	Send      string // "SendOnSay" or "SendChatOnSay"
	Broadcast string // "BroadcastOnSay" or "BroadcastChatOnSay"
	Type      string // "*chatapi.OnSay"
}

type goGlue struct {
	Struct    string // "Chat"
	TypeConst string // "chatgen.Type"
	DescVar   string // "chatgen.ModuleDesc"
	RegServer string // "chatgen.RegisterChatServer"
	GetType   bool
	OnInit    bool
	Setup     bool
	New       string // constructor to write; "" for none
	Register  string // registration to write; "" for none
	NewFunc   string // what Register passes
}

// renderGo renders and gofmts one file of generated code for the modules of
// f, with their glue when the code goes into the module's own package.
func renderGo(f *File, withGlue bool) ([]byte, error) {
	v := goFile{Source: f.Source, Package: f.Package, Imports: f.Imports, Others: f.Others}
	flat := map[string]bool{} // readers of flat arguments written
	for _, m := range f.Modules {
		mv := goModuleView(m)
		for i := range mv.Methods {
			if fn := mv.Methods[i].FlatFunc; fn != "" && !flat[fn] {
				flat[fn], mv.Methods[i].FlatEmit = true, true
			}
			if fn := mv.Methods[i].WriteFunc; fn != "" && !flat[fn] {
				flat[fn], mv.Methods[i].WriteEmit = true, true
			}
		}
		v.Modules = append(v.Modules, mv)
		if withGlue && m.Glue != nil {
			v.Glue = append(v.Glue, goGlueView(m))
		}
	}
	return execGo(&v)
}

// flatFuncName names the reader of a flat argument type in generated code:
// "*loginapi.LoginRequest" is read by _read_loginapi_LoginRequest.
func flatFuncName(argType string) string { return flatName("_read_", argType) }

// flatName is prefix and the type's name, its package's dot an underscore.
func flatName(prefix, argType string) string {
	return prefix + strings.Map(func(r rune) rune {
		if r == '.' {
			return '_'
		}
		return r
	}, strings.TrimPrefix(argType, "*"))
}

// flatWriteBody is the body of the writer of a flat result's JSON: the
// fields in order, keys as literals. A field's comma is a literal when a
// field before it is always written; with only ",omitempty" fields before
// it, the writer checks whether one was.
func flatWriteBody(fields []FlatOutField) string {
	var b strings.Builder
	// comma[i]: how field i is preceded: "" nothing, "," a comma, "?"
	// a comma when something was written since the '{'.
	comma := make([]string, len(fields))
	some, surely := false, false
	for i, f := range fields {
		switch {
		case surely:
			comma[i] = ","
		case some:
			comma[i] = "?"
		}
		some, surely = true, surely || !f.OmitEmpty
	}
	b.WriteString("\tb = append(b, '{')\n")
	if slices.Contains(comma, "?") {
		b.WriteString("\tn := len(b)\n")
	}
	for i, f := range fields {
		indent := "\t"
		if f.OmitEmpty {
			cond := "v." + f.Name + " != 0"
			switch f.Write {
			case "AppendString":
				cond = "v." + f.Name + ` != ""`
			case "AppendBool":
				cond = "v." + f.Name
			}
			fmt.Fprintf(&b, "\tif %s {\n", cond)
			indent = "\t\t"
		}
		key := `"` + f.Key + `":`
		switch comma[i] {
		case "?":
			fmt.Fprintf(&b, "%sif len(b) > n {\n%s\tb = append(b, ',')\n%s}\n", indent, indent, indent)
		case ",":
			key = "," + key
		}
		fmt.Fprintf(&b, "%sb = append(b, `%s`...)\n", indent, key)
		fmt.Fprintf(&b, "%sb = coregen.%s(b, v.%s)\n", indent, f.Write, f.Name)
		if f.OmitEmpty {
			b.WriteString("\t}\n")
		}
	}
	b.WriteString("\treturn append(b, '}')")
	return b.String()
}

// renderGlue renders the glue file of a module whose generated code went
// into another package (genPath); nil when the module's package declares
// every piece itself.
func renderGlue(f *File, pkgName, genPath string) ([]byte, error) {
	v := goFile{Source: f.Source, Package: pkgName}
	var needCore, needCoregen, needGen bool
	for _, m := range f.Modules {
		g := m.Glue
		if g == nil || !g.GetType && !g.OnInit && g.New == "" && g.Register == "" {
			continue
		}
		v.Glue = append(v.Glue, goGlueView(m))
		needCore = needCore || g.OnInit || g.New != "" || g.Register != ""
		needCoregen = needCoregen || g.OnInit
		needGen = needGen || g.GetType || g.OnInit || g.Register != ""
	}
	if len(v.Glue) == 0 {
		return nil, nil
	}
	for _, imp := range []struct {
		need bool
		path string
	}{{needCore, corePath}, {needCoregen, coregenPath}, {needGen, genPath}} {
		if imp.need {
			v.Others = append(v.Others, Import{Path: imp.path})
		}
	}
	return execGo(&v)
}

// execGo executes the template. When the output does not parse, the error
// carries the numbered source so the template bug can be found.
func execGo(v *goFile) ([]byte, error) {
	var buf bytes.Buffer
	if err := goTemplate.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render %s: %w", v.Source, err)
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generated code for %s does not parse: %v\n%s", v.Source, err, numbered(buf.Bytes()))
	}
	return out, nil
}

func numbered(src []byte) string {
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		fmt.Fprintf(&b, "%4d  %s\n", n, sc.Text())
	}
	return b.String()
}

func goModuleView(mod *Module) goModule {
	v := goModule{
		Name: mod.GoName, Type: mod.Type, TypeConst: mod.Prefix + "Type", DescVar: mod.Prefix + "ModuleDesc",
		Server: mod.GoName + "Server", Client: mod.GoName + "Client", GateQual: mod.GateQual,
		HasMethods: len(mod.Methods) > 0,
	}
	for _, m := range mod.Methods {
		v.Methods = append(v.Methods, goMethodView(mod, m))
	}
	pushPrefix := strings.TrimSuffix(mod.Prefix, "_")
	for _, p := range mod.Pushes {
		v.Pushes = append(v.Pushes, goPush{
			Name: p.Name, Topic: p.Topic, TopicVar: mod.Prefix + p.Name + "_Topic",
			Send: "Send" + pushPrefix + p.Name, Broadcast: "Broadcast" + pushPrefix + p.Name, Type: p.Type.Go,
		})
	}
	return v
}

func goMethodView(mod *Module, m *Method) goMethod {
	v := goMethod{
		Name: m.Name, ClientName: m.ClientName, NameConst: mod.Prefix + m.ClientName + "_MethodName",
		HandlerFunc: "_" + mod.GoName + "_" + m.ClientName + "_Handler",
		Sync:        m.Sync, NonNull: m.NonNull, NoReply: m.NoReply, Legacy: m.Legacy,
		ServerResults: "error", ClientResults: "error",
	}
	if m.Result != nil {
		v.Result = m.Result.Go
		if f := m.Result.FlatOut; f != nil && !m.Legacy {
			v.WriteFunc, v.WriteBody = flatName("_write_", v.Result), flatWriteBody(f)
		}
		v.ClientResults = "(" + m.Result.Go + ", error)"
		v.ServerResults = v.ClientResults
	}
	var server, client, call, names []string
	client = append(client, "ctx context.Context")
	if m.HasCtx {
		server = append(server, "ctx context.Context")
		call = append(call, "ctx")
	}
	if m.HasSession || m.Legacy {
		client = append(client, "s *"+mod.GateQual+"Session")
		v.ReqFields += ", Session: s.Data()"
	}
	if m.HasSession {
		server = append(server, "s *"+mod.GateQual+"Session")
		call = append(call, mod.GateQual+"NewSession(inv, req.Session)")
	}
	var vars, slots []string
	for _, p := range m.Params {
		server = append(server, p.Name+" "+p.Type.Go)
		client = append(client, p.Name+" "+p.Type.Go)
		names = append(names, p.Name)
		vars = append(vars, p.Name+" "+p.Type.Go)
		slots = append(slots, "coregen.To(&"+p.Name+")")
		call = append(call, p.Name)
	}
	switch {
	case m.Legacy:
		server = []string{"session " + m.Params[0].Type.Go, "msg " + m.Params[0].Type.Go}
		v.ServerResults = "(result string, err string)"
		v.ArgType, v.ArgMap = m.Params[0].Type.Go, true
		call = []string{mod.GateQual + "LegacyMap(req.Session)", "in"}
		v.ReqFields += ", Arg: " + names[0]
	case m.Positional && len(m.Params) > 0:
		v.ArgVars, v.ArgSlots = vars, strings.Join(slots, ", ")
		v.ReqFields += ", Arg: []any{" + strings.Join(names, ", ") + "}"
	case len(m.Params) == 1:
		v.ArgType, v.ArgMap = m.Params[0].Type.Go, m.Params[0].Type.IsMap
		v.ReqFields += ", Arg: " + names[0]
		if f := m.Params[0].Type.Flat; f != nil && !v.ArgMap {
			v.FlatFunc, v.FlatFields = flatFuncName(v.ArgType), f
		}
	}
	v.ServerParams, v.ClientParams = strings.Join(server, ", "), strings.Join(client, ", ")
	v.Call = "srv.(" + mod.GoName + "Server)." + m.Name + "(" + strings.Join(call, ", ") + ")"
	return v
}

func goGlueView(mod *Module) goGlue {
	g := mod.Glue
	return goGlue{
		Struct: mod.GoName, TypeConst: g.GenQual + mod.Prefix + "Type", DescVar: g.GenQual + mod.Prefix + "ModuleDesc",
		RegServer: g.GenQual + "Register" + mod.GoName + "Server",
		GetType:   g.GetType, OnInit: g.OnInit, Setup: g.Setup, New: g.New, Register: g.Register, NewFunc: g.NewFunc,
	}
}
