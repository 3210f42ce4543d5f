package gen

// The model is plain data: templates see nothing of go/ast or go/types, and
// every decision is made here, in Go, not in template logic.

// File is one generated Go file.
type File struct {
	Source  string   // package the modules came from, as an import path
	Package string   // output package name
	Imports []Import // standard library, sorted by path
	Others  []Import // everything else, sorted by path
	Modules []*Module
}

// Import is one import line of a generated file.
type Import struct {
	Name string // alias, empty when it equals the package name
	Path string
}

// Module is one //mqant:module struct.
type Module struct {
	GoName  string // struct name, e.g. "Chat"
	Type    string // module type used for routing, e.g. "Chat"
	Methods []*Method
	// GateQual qualifies the gate package's names in this file: "gate.", or
	// "" when generating into the gate package itself.
	GateQual string
}

// Method kinds.
const (
	KindHandler = "handler" // Handler_X: client-callable through the gate
	KindRPC     = "rpc"     // //mqant:rpc: module-to-module only
)

// Method is one callable method of a module.
type Method struct {
	Name       string // the method's Go name and wire name, e.g. "Handler_Say"
	ClientName string // the typed client's method, e.g. "Say"
	Kind       string
	Sync       bool // run on the module's single goroutine
	HasCtx     bool
	HasSession bool
	Legacy     bool    // mqant's (map, map) (string, string) shape
	Params     []Param // request arguments after ctx and session
	Result     *Type   // nil when the method returns only an error
	Positional bool    // arguments travel as a JSON array (rpc methods)
}

// Param is one request argument.
type Param struct {
	Name string // parameter name in generated code
	Type Type
}

// Type is a Go type as spelled in the generated file, plus the facts the
// renderer needs about it.
type Type struct {
	Go    string // e.g. "*chatapi.SayRequest"
	Elem  string // for pointers, the pointed-to type, e.g. "chatapi.SayRequest"
	IsPtr bool
	IsMap bool
}
