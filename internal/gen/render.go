package gen

import (
	"bufio"
	"bytes"
	"fmt"
	"go/format"
	"strings"
	"text/template"

	"github.com/mqantgen/mqantgen/templates"
)

var goTemplate = template.Must(template.New("go_module.tmpl").Funcs(template.FuncMap{
	"serverParams":  serverParams,
	"serverResults": serverResults,
	"dispatchBody":  dispatchBody,
	"clientParams":  clientParams,
	"clientResults": clientResults,
	"request":       request,
}).ParseFS(templates.FS, "go_module.tmpl"))

// renderGo renders and gofmts one file. When the output does not parse, the
// error carries the numbered source so the template bug can be found.
func renderGo(f *File) ([]byte, error) {
	var buf bytes.Buffer
	if err := goTemplate.Execute(&buf, f); err != nil {
		return nil, fmt.Errorf("render %s: %w", f.Source, err)
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generated code for %s does not parse: %v\n%s", f.Source, err, numbered(buf.Bytes()))
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

func serverParams(mod *Module, m *Method) string {
	var ps []string
	if m.Legacy {
		return "session " + m.Params[0].Type.Go + ", msg " + m.Params[0].Type.Go
	}
	if m.HasCtx {
		ps = append(ps, "ctx context.Context")
	}
	if m.HasSession {
		ps = append(ps, "s *"+mod.GateQual+"Session")
	}
	for _, p := range m.Params {
		ps = append(ps, p.Name+" "+p.Type.Go)
	}
	return strings.Join(ps, ", ")
}

func serverResults(m *Method) string {
	switch {
	case m.Legacy:
		return "(result string, err string)"
	case m.Result != nil:
		return "(" + m.Result.Go + ", error)"
	}
	return "error"
}

func clientParams(mod *Module, m *Method) string {
	ps := []string{"ctx context.Context"}
	if m.HasSession || m.Legacy {
		ps = append(ps, "s *"+mod.GateQual+"Session")
	}
	for _, p := range m.Params {
		ps = append(ps, p.Name+" "+p.Type.Go)
	}
	return strings.Join(ps, ", ")
}

func clientResults(m *Method) string {
	if m.Result != nil {
		return "(" + m.Result.Go + ", error)"
	}
	return "error"
}

func request(mod *Module, m *Method, noReply bool) string {
	fields := []string{"Fn: " + mod.GoName + "_" + m.ClientName + "_MethodName"}
	if m.HasSession || m.Legacy {
		fields = append(fields, "Session: s.Data()")
	}
	switch {
	case m.Positional && len(m.Params) > 0:
		names := make([]string, len(m.Params))
		for i, p := range m.Params {
			names[i] = p.Name
		}
		fields = append(fields, "Arg: []any{"+strings.Join(names, ", ")+"}")
	case len(m.Params) == 1:
		fields = append(fields, "Arg: "+m.Params[0].Name)
	}
	if noReply {
		fields = append(fields, "NoReply: true")
	}
	return "&core.Request{" + strings.Join(fields, ", ") + "}"
}

// dispatchBody is the body of a generated handler: take the argument out of
// the request (typed in-process, decoded otherwise) and call the method.
func dispatchBody(mod *Module, m *Method) string {
	var b strings.Builder
	call := "srv.(" + mod.GoName + "Server)." + m.Name
	ret := func(args []string) {
		if m.NonNull {
			// The client SDK types the reply without null: keep that true.
			fmt.Fprintf(&b, "\tres, err := %s(%s)\n", call, strings.Join(args, ", "))
			fmt.Fprintf(&b, "\tif err == nil && res == nil {\n\t\treturn nil, core.NewError(%q)\n\t}\n\treturn res, err", m.Name+" returned no result, but it is declared //mqant:nonnull")
			return
		}
		if m.Result != nil {
			fmt.Fprintf(&b, "\treturn %s(%s)", call, strings.Join(args, ", "))
		} else {
			fmt.Fprintf(&b, "\treturn nil, %s(%s)", call, strings.Join(args, ", "))
		}
	}
	if m.Legacy {
		fmt.Fprintf(&b, "\tmsg, err := core.RequestMapArg[%s](req)\n", m.Params[0].Type.Go)
		b.WriteString("\tif err != nil {\n\t\treturn nil, err\n\t}\n")
		fmt.Fprintf(&b, "\tres, e := %s(%sLegacyMap(req.Session), msg)\n", call, mod.GateQual)
		b.WriteString("\tif e != \"\" {\n\t\treturn nil, core.NewError(e)\n\t}\n\treturn res, nil")
		return b.String()
	}
	var args []string
	if m.HasCtx {
		args = append(args, "ctx")
	}
	if m.HasSession {
		args = append(args, mod.GateQual+"NewSession(inv, req.Session)")
	}
	switch {
	case m.Positional && len(m.Params) > 0:
		var ptrs []string
		for _, p := range m.Params {
			fmt.Fprintf(&b, "\tvar %s %s\n", p.Name, p.Type.Go)
			ptrs = append(ptrs, "&"+p.Name)
			args = append(args, p.Name)
		}
		fmt.Fprintf(&b, "\targs, err := core.RequestArgs(req, %s)\n", strings.Join(ptrs, ", "))
		b.WriteString("\tif err != nil {\n\t\treturn nil, err\n\t}\n\tif args != nil {\n")
		for i, p := range m.Params {
			fmt.Fprintf(&b, "\t\tif err := core.ArgAt(args, %d, &%s); err != nil {\n\t\t\treturn nil, err\n\t\t}\n", i, p.Name)
		}
		b.WriteString("\t}\n")
	case len(m.Params) == 1:
		p := m.Params[0]
		if p.Type.IsMap {
			fmt.Fprintf(&b, "\tin, err := core.RequestMapArg[%s](req)\n", p.Type.Go)
		} else {
			fmt.Fprintf(&b, "\tin, err := core.RequestArg(req, func() %s { return new(%s) })\n", p.Type.Go, p.Type.Elem)
		}
		b.WriteString("\tif err != nil {\n\t\treturn nil, err\n\t}\n")
		args = append(args, "in")
	}
	ret(args)
	return b.String()
}
