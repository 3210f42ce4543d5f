package coregen

import (
	"errors"
	"testing"

	"github.com/mqantgen/mqantgen/core"
)

// codecStrings decodes raw as Args does without the fast path: an array
// of n raw messages, each into a string.
func codecStrings(raw []byte, n int) ([]string, bool) {
	var msgs []core.RawMessage
	if core.JSON.Unmarshal(raw, &msgs) != nil || len(msgs) != n {
		return nil, false
	}
	out := make([]string, n)
	for i, m := range msgs {
		if core.JSON.Unmarshal(m, &out[i]) != nil {
			return nil, false
		}
	}
	return out, true
}

// FuzzPlainStringArgs: what the fast path for string arguments accepts,
// the codec decodes to the same strings, for one to three string slots.
func FuzzPlainStringArgs(f *testing.F) {
	for _, in := range []string{
		`["127.0.0.1:4563-1","alice"]`, ` [ "a" , "b" ] `, `["a"]`, `["a","b","c"]`, `[]`, `["a",]`, `["a" "b"]`,
		`["a\"b","c"]`, `["\u0041","b"]`, `["é","b"]`, `["a\tb","c"]`, `["a",1]`, `["a",null]`, `{"a":"b"}`,
		`["a","b"] x`, `["a","b"`, `"a"`, ``, `[`, `["`, `[""," "]`,
	} {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for n := 1; n <= 3; n++ {
			got := make([]string, n)
			slots := make([]Slot, n)
			for i := range slots {
				slots[i] = To(&got[i])
			}
			if !plainStringArgs(data, slots) {
				continue
			}
			want, ok := codecStrings(data, n)
			if !ok {
				t.Fatalf("%q: fast path accepted %d strings the codec refuses", data, n)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%q: fast path %q, codec %q", data, got, want)
				}
			}
		}
	})
}

// TestPlainStringArgsLeavesOthers: a slot that is not a string, or a
// count that does not match, leaves the arguments to the codec, with
// nothing stored; Args then decodes or refuses them as before.
func TestPlainStringArgsLeavesOthers(t *testing.T) {
	var s string
	var n int
	if plainStringArgs([]byte(`["a","b"]`), []Slot{To(&s), To(&n)}) || s != "" {
		t.Errorf("a string and an int slot: fast path taken (s = %q)", s)
	}
	if plainStringArgs([]byte(`["a","b"]`), []Slot{To(&s)}) || s != "" {
		t.Errorf("two strings for one slot: fast path taken (s = %q)", s)
	}
	var a, b string
	if err := Args(&core.Request{Raw: []byte(`["s1","alice"]`)}, To(&a), To(&b)); err != nil || a != "s1" || b != "alice" {
		t.Errorf("Args fast: %q %q %v", a, b, err)
	}
	if err := Args(&core.Request{Raw: []byte(`["s\u003c1",7]`)}, To(&a), To(&n)); err != nil || a != "s<1" || n != 7 {
		t.Errorf("Args by the codec: %q %d %v", a, n, err)
	}
	if err := Args(&core.Request{Raw: []byte(`["s1"]`)}, To(&a), To(&b)); !errors.Is(err, core.ErrBadRequest) {
		t.Errorf("one argument for two: %v, want ErrBadRequest", err)
	}
}
