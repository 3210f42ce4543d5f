package gate

import (
	"encoding/json"
	"strings"
	"testing"
)

var validJSONCases = []string{
	``, ` `, `1`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `-1.25e10`, `.5`, `+1`,
	`"x"`, `"\u00e9\n"`, `"\u00g9"`, `"\u12"`, `"\x"`, "\"a\tb\"", "\"\xff\xfe\"", `"`, `"\"`,
	`true`, `tru`, `false`, `nul`, `null `, ` null x`, `nullnull`,
	`{}`, `{ }`, `[]`, `[ ]`, `{"a":1}`, `{"a" : [1, {"b":null}] }`, `{"a":1,}`, `[1,]`, `[,1]`,
	`{"a"}`, `{"a":}`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`, `[1}`, `{"a":1]`, `[[[]]]`, `[[[]]`, `]`, `}`,
	`{"n":1,"text":"hello"}`, `{"userName":"u1","passWord":"x"}`, "\t{\r\n}\n", `[1][2]`, `{},`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70),
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range validJSONCases {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.40q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

func TestValidJSONAllocs(t *testing.T) {
	b := []byte(`{"n":1,"text":"hello","list":[1,2,{"x":[true,false,null]}]}`)
	if n := testing.AllocsPerRun(100, func() { validJSON(b) }); n != 0 {
		t.Fatalf("validJSON allocates %v times, want 0", n)
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validJSONCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	p := []byte(`{"userName":"user1234","passWord":"x","n":12,"ok":true}`)
	b.Run("gate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			validJSON(p)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Valid(p)
		}
	})
}
