package coregen

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/core"
)

type flatEcho struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

type flatLogin struct {
	UserName string `json:"userName"`
	PassWord string `json:"passWord"`
}

type flatName string

type flatAll struct {
	S      string
	B      bool `json:"b"`
	I      int
	I8     int8  `json:"i8"`
	I16    int16 `json:"i16,omitempty"`
	I32    int32
	I64    int64
	U      uint `json:"u"`
	U8     uint8
	U16    uint16
	U32    uint32
	U64    uint64
	F32    float32
	F64    float64
	Named  flatName `json:"named"`
	Skip   string   `json:"-"`
	hidden int
}

type flatCustom struct{ N int }

func (c *flatCustom) UnmarshalJSON([]byte) error { c.N = 42; return nil }

// The readers mqantgen generates for these types (templates/go_module.tmpl;
// the goldens in internal/gen/testdata show the same code).
func readFlatEcho(b []byte, v *flatEcho) bool {
	r := NewFlatReader(b)
	for r.Next() {
		switch string(r.Key()) {
		case "n":
			if !FlatInt(&r, &v.N) {
				return false
			}
		case "text":
			if !FlatString(&r, &v.Text) {
				return false
			}
		default:
			return false
		}
	}
	return r.Done()
}

func readFlatLogin(b []byte, v *flatLogin) bool {
	r := NewFlatReader(b)
	for r.Next() {
		switch string(r.Key()) {
		case "userName":
			if !FlatString(&r, &v.UserName) {
				return false
			}
		case "passWord":
			if !FlatString(&r, &v.PassWord) {
				return false
			}
		default:
			return false
		}
	}
	return r.Done()
}

func readFlatAll(b []byte, v *flatAll) bool {
	r := NewFlatReader(b)
	for r.Next() {
		ok := false
		switch string(r.Key()) {
		case "S":
			ok = FlatString(&r, &v.S)
		case "b":
			ok = FlatBool(&r, &v.B)
		case "I":
			ok = FlatInt(&r, &v.I)
		case "i8":
			ok = FlatInt(&r, &v.I8)
		case "i16":
			ok = FlatInt(&r, &v.I16)
		case "I32":
			ok = FlatInt(&r, &v.I32)
		case "I64":
			ok = FlatInt(&r, &v.I64)
		case "u":
			ok = FlatUint(&r, &v.U)
		case "U8":
			ok = FlatUint(&r, &v.U8)
		case "U16":
			ok = FlatUint(&r, &v.U16)
		case "U32":
			ok = FlatUint(&r, &v.U32)
		case "U64":
			ok = FlatUint(&r, &v.U64)
		case "F32":
			ok = FlatFloat(&r, &v.F32)
		case "F64":
			ok = FlatFloat(&r, &v.F64)
		case "named":
			ok = FlatString(&r, &v.Named)
		}
		if !ok {
			return false
		}
	}
	return r.Done()
}

// TestArgFlatAndCodec: Arg gives what the codec gives, on the common
// shape and on what it leaves to the codec.
func TestArgFlatAndCodec(t *testing.T) {
	for _, body := range []string{
		`{"n":7,"text":"hi"}`,
		` { "text" : "héllo 世界" , "n" : -3 } `,
		`{"n":1,"text":"a","n":2}`,                    // the last one wins
		`{"N":1,"TEXT":"a"}`,                          // another case: the codec's folding
		`{"n":1,"text":"a\"b"}`,                       // an escape
		`{"n":1.5}`,                                   // not an int
		`{"n":null,"text":null}`,                      // null
		`{"n":1,"other":{"x":[1,2]}}`,                 // an unknown key
		`{"n":99999999999999999999}`,                  // too big
		`{"n":1} x`,                                   // trailing data
		`[1]`,                                         // not an object
		`{"n":1,}`,                                    // not JSON
		`{"text":"` + strings.Repeat("x", 300) + `"}`, // long
	} {
		checkSameAsCodec(t, []byte(body), readFlatEcho)
	}
	checkSameAsCodec(t, []byte(`{"S":"s","b":true,"I":-1,"i8":-128,"i16":32767,"I32":5,"I64":-9223372036854775808,`+
		`"u":1,"U8":255,"U16":65535,"U32":4294967295,"U64":18446744073709551615,"F32":1.5e3,"F64":-0.25E-2,"named":"n"}`), readFlatAll)
	checkSameAsCodec(t, []byte(`{"i8":128}`), readFlatAll)
	checkSameAsCodec(t, []byte(`{"u":-1}`), readFlatAll)
	checkSameAsCodec(t, []byte(`{"b":1}`), readFlatAll)
	checkSameAsCodec(t, []byte(`{"F32":1e40}`), readFlatAll)
	// A type with its own UnmarshalJSON has no generated reader.
	checkSameAsCodec[flatCustom](t, []byte(`{"N":1}`), nil)
}

// checkSameAsCodec fails when Arg's answer for body with the reader read
// differs from the codec's alone, or when read accepts what encoding/json
// reads otherwise.
func checkSameAsCodec[E comparable](t *testing.T, body []byte, read func([]byte, *E) bool) {
	t.Helper()
	got, err := FlatArg[*E](&core.Request{Raw: body}, read)
	want := new(E)
	werr := core.JSON.Unmarshal(body, want)
	if (err == nil) != (werr == nil) || err == nil && *got != *want {
		t.Errorf("%T %q: Arg %+v, %v; the codec %+v, %v", *want, body, *got, err, *want, werr)
	}
	if read == nil {
		return
	}
	fast := new(E)
	if !read(body, fast) {
		return
	}
	std := new(E)
	if err := json.Unmarshal(body, std); err != nil || *std != *fast {
		t.Errorf("%T %q: read as %+v; encoding/json %+v, %v", *fast, body, *fast, *std, err)
	}
	if werr != nil || *want != *fast {
		t.Errorf("%T %q: read as %+v; the codec %+v, %v", *fast, body, *fast, *want, werr)
	}
}

// FuzzFlatArg holds Arg's reading of flat structs to the codec's, and
// what it reads itself to encoding/json's.
func FuzzFlatArg(f *testing.F) {
	for _, s := range []string{
		`{"n":7,"text":"hi"}`, `{"userName":"bob","passWord":"x"}`, `{"S":"é","b":false,"i8":-1,"u":3,"F32":0.1,"F64":1e308,"named":""}`,
		`{"n":-0,"text":""}`, `{"F64":-0.0e+1}`, `{ }`, `{"n":01}`, `{"n":1e2}`, `{"text":"\u00e9"}`, "{\"text\":\"\xff\"}",
		`{"USERNAME":"a"}`, `{"n":1}{"n":2}`, `{"n":-}`, `{"U64":18446744073709551616}`, `{"b":true }`, `{"b":truex}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 {
			return // Arg's zero value, no decoding
		}
		checkSameAsCodec(t, body, readFlatEcho)
		checkSameAsCodec(t, body, readFlatLogin)
		checkSameAsCodec(t, body, readFlatAll)
	})
}

// BenchmarkArg: a flat argument read by Arg, and by the codec alone.
func BenchmarkArg(b *testing.B) {
	body := []byte(`{"userName":"bench-user-17","passWord":"x"}`)
	b.Run("flat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := FlatArg[*flatLogin](&core.Request{Raw: body}, readFlatLogin); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v := new(flatLogin)
			if err := core.JSON.Unmarshal(body, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
