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
	Doc     string // the struct's doc comment, "" when none
	Methods []*Method
	Pushes  []*Push // sorted by name
	// Messages are the named message types the client API of this module
	// uses (requests, replies, pushes and what they contain), sorted by
	// name. Filled only when a client SDK is generated.
	Messages []*Message
	// GateQual qualifies the gate package's names in this file: "gate.", or
	// "" when generating into the gate package itself.
	GateQual string
	// Prefix begins the module's package-level names in the generated
	// package ("Chat_Type", "Chat_OnJoin_Topic"): the module name, or ""
	// when the package already says it (package chatgen or chat holding
	// module Chat, generated with -out): chatgen.Type,
	// chatgen.BroadcastOnJoin.
	Prefix string
	// Glue is what the generator writes into the module's own package so
	// the module needs no hand-written New, GetType, OnInit or
	// registration; nil when the struct does not embed core.BaseModule.
	Glue *Glue
}

// Glue is the generated part of a module's own package. Each piece is
// written only when the package does not declare it itself.
type Glue struct {
	GetType  bool
	OnInit   bool
	New      string // the constructor's name ("New", or "NewChat" in a package of several modules); "" for none
	Register string // the typed registration's name ("Register" or "RegisterChat"); "" for none
	NewFunc  string // the constructor Register passes to App.Register (the generated or the user's)
	Setup    bool   // the struct declares Setup(app *core.App, settings *core.ModuleSettings) error
	GenQual  string // qualifies the generated package's names from the module's package: "chatgen." or ""
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
	NonNull    bool // //mqant:nonnull: a nil Result with a nil error is an error
	NoReply    bool // the typed client has an NR variant: the result is only an error, or //mqant:noreply
	HasCtx     bool
	HasSession bool
	Legacy     bool    // mqant's (map, map) (string, string) shape
	Params     []Param // request arguments after ctx and session
	Result     *Type   // nil when the method returns only an error
	Positional bool    // arguments travel as a JSON array (rpc methods)
	Doc        string  // the method's doc comment, "" when none

	// The client API, for Handler_ methods when a client SDK is generated.
	Route   string // topic clients publish to, without msgid: "Chat/Handler_Say"
	Request *Shape // JSON shape of the request body; nil when there is none
	Reply   *Shape // JSON shape of the reply's Result; nil when there is none
}

// Push is a message type a module sends to clients on a fixed topic,
// declared with //mqant:push Module/Name on the type.
type Push struct {
	Name  string // second topic level, e.g. "OnSay"
	Topic string // e.g. "Chat/OnSay"
	Type  Type   // the body's Go type as generated code spells it, a pointer
	Doc   string // the type's doc comment
	Body  *Shape // JSON shape of the body, when a client SDK is generated
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
	// Flat: a pointer to a flat struct (fields of string, bool, integer
	// and float kinds, flatFields), whose JSON generated code reads
	// itself in its common shape; nil otherwise.
	Flat []FlatField
	// FlatOut: a pointer to a flat struct of string, bool and integer
	// fields (flatOut), whose JSON generated code writes itself when it is
	// a result; nil otherwise.
	FlatOut []FlatOutField
}

// FlatOutField is one field of a flat result struct, as generated code
// writes it.
type FlatOutField struct {
	Key       string // the JSON key, e.g. "userName"
	Name      string // the Go field, e.g. "UserName"
	Write     string // coregen's writer of its kind: "AppendString", "AppendBool", "AppendInt" or "AppendUint"
	OmitEmpty bool   // ",omitempty": left out when it is its kind's zero
}

// FlatField is one field of a flat struct, as generated code reads it
// (core/coregen/flat.go).
type FlatField struct {
	Key  string // the JSON key, e.g. "userName"
	Name string // the Go field, e.g. "UserName"
	Read string // coregen's reader of its kind: "FlatString", "FlatBool", "FlatInt", "FlatUint" or "FlatFloat"
}

// Shape kinds: what a value looks like in JSON, in words any client language
// can map to its own types.
const (
	ShapeString  = "string"
	ShapeInteger = "integer"
	ShapeNumber  = "number"
	ShapeBoolean = "boolean"
	ShapeAny     = "any"    // any JSON value (interface{}, json.RawMessage)
	ShapeArray   = "array"  // Elem: the items
	ShapeMap     = "map"    // an object with any string keys; Elem: the values
	ShapeObject  = "object" // an object with fixed fields, declared in place
	ShapeRef     = "ref"    // a named message type: Ref
)

// Shape formats refine a kind.
const (
	FormatDateTime = "date-time" // string: RFC 3339 time (Go time.Time)
	FormatBytes    = "byte"      // string: base64 bytes (Go []byte)
	FormatDecimal  = "decimal"   // string: a number or boolean written as a string (json ",string")
)

// Shape is the JSON form of a value, independent of Go and of any client
// language.
type Shape struct {
	Kind     string
	Format   string   // see the Format constants; "" for none
	Elem     *Shape   // array items, map values
	Ref      *Message // ShapeRef
	Fields   []Field  // ShapeObject
	Len      int      // arrays of fixed length (Go arrays); 0 otherwise
	Nullable bool     // null is a possible value (Go pointers, slices, maps)
	// Integer bounds, from the Go type's size: 8, 16 or 32 bits are checked
	// by the schema; 64-bit values exceed what some clients hold exactly.
	Bits     int
	Unsigned bool
}

// Message is a named object type of the client API: a Go struct type.
type Message struct {
	Name   string // unique among the messages of one generator run
	Go     string // the Go type it comes from, e.g. "chatapi.SayRequest"
	Doc    string
	Fields []Field
}

// Field is one JSON object member.
type Field struct {
	Name     string // the JSON name
	GoName   string
	Doc      string
	Shape    Shape
	Optional bool // may be absent (omitempty, omitzero, pointers, fields of embedded pointers)
}
