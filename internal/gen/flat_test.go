package gen

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"reflect"
	"testing"
)

// TestFlatFields: which request structs generated code reads itself
// (coregen.FlatArg), and which it leaves to the codec.
func TestFlatFields(t *testing.T) {
	const src = `package p

type Name string
type Text struct{ s string }

func (t *Text) UnmarshalText([]byte) error { return nil }

type Self struct{ N int }

func (s *Self) UnmarshalJSON([]byte) error { return nil }

type Login struct {
	UserName string ` + "`json:\"userName\"`" + `
	PassWord string ` + "`json:\"passWord,omitempty\"`" + `
	Level    int8
	Gold     uint64 ` + "`json:\"gold\"`" + `
	Speed    float32
	Ok       bool ` + "`json:\"\"`" + `
	Nick     Name
	Skip     string ` + "`json:\"-\"`" + `
	hidden   int
}
type Embedded struct {
	Login
	X int
}
type StringOpt struct {
	N int ` + "`json:\"n,string\"`" + `
}
type Fold struct {
	A int ` + "`json:\"id\"`" + `
	B int ` + "`json:\"ID\"`" + `
}
type OddKey struct {
	N int ` + "`json:\"n-1\"`" + `
}
type Nested struct{ L Login }
type Slice struct{ L []int }
type Custom struct{ T Text }
type Empty struct{ hidden int }
type Ptr struct{ P *int }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := (&types.Config{}).Check("p", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(name string) types.Type { return types.NewPointer(pkg.Scope().Lookup(name).Type()) }
	want := []FlatField{
		{"userName", "UserName", "FlatString"}, {"passWord", "PassWord", "FlatString"}, {"Level", "Level", "FlatInt"},
		{"gold", "Gold", "FlatUint"}, {"Speed", "Speed", "FlatFloat"}, {"Ok", "Ok", "FlatBool"}, {"Nick", "Nick", "FlatString"},
	}
	if got := flatFields(ptr("Login")); !reflect.DeepEqual(got, want) {
		t.Errorf("Login: %v, want %v", got, want)
	}
	for _, name := range []string{"Embedded", "StringOpt", "Fold", "OddKey", "Nested", "Slice", "Custom", "Self", "Empty", "Ptr"} {
		if got := flatFields(ptr(name)); got != nil {
			t.Errorf("%s: %v, want nil (the codec reads it)", name, got)
		}
	}
	if got := flatFields(pkg.Scope().Lookup("Login").Type()); got != nil {
		t.Errorf("Login by value: %v, want nil", got)
	}
}

// TestFlatOut: which result structs generated code writes itself
// (coregen.FlatResult), and which it leaves to the codec.
func TestFlatOut(t *testing.T) {
	const src = `package p

import "time"

type Name string
type Stamp string

func (Stamp) MarshalText() ([]byte, error) { return nil, nil }

type Self struct{ N int }

func (*Self) MarshalJSON() ([]byte, error) { return nil, nil }

type Stats struct {
	Title string ` + "`json:\"title,omitempty\"`" + `
	Level int8
	Gold  uint64 ` + "`json:\"gold\"`" + `
	Ok    bool   ` + "`json:\",omitempty\"`" + `
	Nick  Name
	Skip  string ` + "`json:\"-\"`" + `
	hidden int
}
type Float struct{ F float64 }
type Custom struct{ S Stamp }
type Named struct{ S Name }
type When struct{ T time.Time }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := (&types.Config{Importer: importer.Default()}).Check("p", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(name string) types.Type { return types.NewPointer(pkg.Scope().Lookup(name).Type()) }
	want := []FlatOutField{
		{"title", "Title", "AppendString", true}, {"Level", "Level", "AppendInt", false}, {"gold", "Gold", "AppendUint", false},
		{"Ok", "Ok", "AppendBool", true}, {"Nick", "Nick", "AppendString", false},
	}
	if got := flatOut(ptr("Stats")); !reflect.DeepEqual(got, want) {
		t.Errorf("Stats: %v, want %v", got, want)
	}
	if got := flatOut(ptr("Named")); len(got) != 1 || got[0].Write != "AppendString" {
		t.Errorf("Named: %v, want its string field written", got)
	}
	for _, name := range []string{"Float", "Custom", "Self", "When"} {
		if got := flatOut(ptr(name)); got != nil {
			t.Errorf("%s: %v, want nil (the codec writes it)", name, got)
		}
	}
	if got := flatOut(pkg.Scope().Lookup("Stats").Type()); got != nil {
		t.Errorf("Stats by value: %v, want nil", got)
	}
}
