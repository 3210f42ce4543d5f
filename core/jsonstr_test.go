package core

import (
	"bytes"
	"testing"
)

// FuzzAppendJSONString: a string appended by AppendJSONString is the
// codec's encoding of it, byte for byte (clients see no difference between
// a result the generated code wrote and one the codec did).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "login success bob", `a"b\c`, "<script>&amp;</script>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"héllo wörld ☃ 🎮", "\xff\xfe bad \xc3", "line\u2028sep\u2029", "\xe2\x80", "tab\there", "\U0010ffff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := JSON.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString([]byte("x"), s); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Errorf("%q: got %s, want %s", s, got[1:], want)
		}
		if got, err := AppendJSON(nil, s); err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendJSON(%q): got %s (%v), want %s", s, got, err, want)
		}
	})
}

func BenchmarkAppendJSONString(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf, _ = AppendJSON(buf[:0], any("login success player-12345"))
	}
}
