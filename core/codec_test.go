package core

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

type plainResult struct {
	N    int               `json:"n"`
	Text string            `json:"text,omitempty"`
	M    map[string]string `json:"m,omitempty"`
}

type ptrMarshaler struct{ N int }

func (p *ptrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"ptr"`), nil }

type valMarshaler struct{ N int }

func (v valMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"val"`), nil }

type ptrText struct{ N int }

func (p *ptrText) MarshalText() ([]byte, error) { return []byte("text"), nil }

type onePtr struct{ P *int }

// TestAppendJSONMatchesMarshal: the pointee fast path writes exactly what
// the codec's Marshal writes, for every shape of pointer.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	n := 7
	s := "s"
	pp := &plainResult{N: 2}
	var nilPlain *plainResult
	var anyv any = &plainResult{N: 3}
	m := map[string]int{"b": 2, "a": 1}
	b := []byte("bytes")
	tm := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	vals := []any{
		&plainResult{N: 1, Text: "x<y", M: map[string]string{"z": "1", "a": "2"}},
		nilPlain, &n, &s, &pp, &m, &b, &tm, &ptrMarshaler{1}, &valMarshaler{2}, valMarshaler{3},
		&ptrText{4}, &onePtr{P: &n}, &onePtr{}, &anyv, &[]any{1, "a", nil}, &[2]int{1, 2},
		plainResult{N: 5}, m, nil, 3,
	}
	for round := 0; round < 2; round++ { // the second from the cache
		for _, v := range vals {
			want, werr := JSON.Marshal(v)
			got, gerr := AppendJSON([]byte("prefix:"), v)
			if (werr != nil) != (gerr != nil) || "prefix:"+string(want) != string(got) {
				t.Errorf("%T: AppendJSON %q (%v), Marshal %q (%v)", v, got, gerr, want, werr)
			}
			std, _ := json.Marshal(v)
			if !strings.EqualFold(string(std), string(want)) && round == 0 {
				t.Logf("%T: encoding/json %s, codec %s", v, std, want)
			}
		}
	}
}

// TestAppendJSONPointerAllocs: encoding a pointer to a struct into a
// buffer with room allocates nothing (json-iterator alone: one per call).
func TestAppendJSONPointerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop streams: allocations are counted without it (make unit)")
	}
	v := any(&struct {
		N    int    `json:"n"`
		Text string `json:"text"`
	}{N: 1, Text: "pong"})
	buf := make([]byte, 0, 256)
	if allocs := testing.AllocsPerRun(1000, func() { buf, _ = AppendJSON(buf[:0], v) }); allocs != 0 {
		t.Errorf("AppendJSON of a *struct: %.1f allocations, want 0", allocs)
	}
}

// TestSessionDataJSONMatchesCodec: the session snapshot's writer
// (SessionData.appendJSON, registered for AppendJSON) writes exactly the
// codec's bytes: omitted and empty fields, nil and empty Settings, more
// keys than its stack array holds, and strings the codec escapes (HTML,
// control characters, quotes, invalid UTF-8, U+2028), in keys too, whose
// order is the codec's.
func TestSessionDataJSONMatchesCodec(t *testing.T) {
	pieces := []string{"", "a", "B", "user-1", "<", ">", "&", `"`, `\`, "\n", "\t", "\x01", "\x7f", "é", "日本", "\u2028", "\xff", " ", "z", "~"}
	r := rand.New(rand.NewPCG(3, 4))
	str := func() string {
		var sb strings.Builder
		for n := r.IntN(4); n > 0; n-- {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		return sb.String()
	}
	cases := []*SessionData{nil, {}, {Settings: map[string]string{}}}
	for range 3000 {
		s := &SessionData{SessionID: str(), ServerID: str(), ClientID: str(), Network: str(), RemoteAddr: str(), UserID: str()}
		if n := r.IntN(14) - 1; n >= 0 {
			s.Settings = make(map[string]string, n)
			for range n {
				s.Settings[str()] = str()
			}
		}
		cases = append(cases, s)
	}
	for _, s := range cases {
		want, err := JSON.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendJSON([]byte("p:"), s)
		if err != nil || string(got) != "p:"+string(want) {
			t.Fatalf("%#v:\n AppendJSON %q (%v)\n codec      %q", s, got, err, want)
		}
	}
}

// FuzzDecodeSessionFast: what the session snapshot's fast decoder accepts,
// it decodes as the codec does; what it refuses, CallResult leaves to the
// codec. The seeds are the snapshots appendJSON writes and the shapes the
// fast path must refuse or get right: whitespace, a key twice, null
// Settings, other spellings, escapes, non-ASCII, trailing bytes.
func FuzzDecodeSessionFast(f *testing.F) {
	for _, s := range []*SessionData{
		{}, {Settings: map[string]string{}},
		{SessionID: "127.0.0.1:4563-1", ServerID: "127.0.0.1:Gate", ClientID: "c1", Network: "tcp", RemoteAddr: "127.0.0.1:5000",
			UserID: "alice", Settings: map[string]string{"room": "r1", "": "empty"}},
		{UserID: "a<b", Settings: map[string]string{"k": "é"}},
	} {
		b, _ := AppendJSON(nil, s)
		f.Add(b)
	}
	for _, in := range []string{
		` { "Userid" : "a" , "Settings" : { "x" : "1" } } `,
		`{"Settings":{"a":"1"},"Settings":{"b":"2"}}`,
		`{"Settings":{"a":"1"},"Settings":null}`,
		`{"Userid":"a","Userid":"b"}`,
		`{"userid":"a"}`, `{"USERID":"a"}`, `{"Other":"x"}`, `{"Userid":null}`, `{"Userid":1}`,
		`{"Userid":"a\"b"}`, `{"Userid":"\u0041"}`, `{"Userid":"é"}`, `{"Userid":"a"} x`, `{"Userid":"a",}`,
		`{"Settings":{"a":1}}`, `{"Settings":[]}`, `null`, `{}`, `{`, `"x"`, `{"Userid":"a\tb"}`,
	} {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := decodeSessionFast(data)
		if !ok {
			return
		}
		var want *SessionData
		if err := JSON.Unmarshal(data, &want); err != nil {
			t.Fatalf("%q: fast decoder accepted what the codec refuses (%v)", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast decoder %#v, codec %#v", data, got, want)
		}
	})
}

// TestCallResultSessionData: a session call's reply from another process
// decodes to the snapshot it encodes, by the fast path and by the codec
// (a snapshot with escapes), and a broken one is a bad request.
func TestCallResultSessionData(t *testing.T) {
	for _, s := range []*SessionData{
		{SessionID: "s1", ServerID: "g", UserID: "alice", Settings: map[string]string{"room": "r1"}},
		{SessionID: "s2", UserID: "a<b>\u2028", Settings: map[string]string{"k\n": "é"}},
		{},
	} {
		raw, err := AppendJSON(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := CallResult[*SessionData](Reply{Raw: raw}, nil)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Errorf("%s: CallResult = %#v, %v; want %#v", raw, got, err, s)
		}
	}
	if _, err := CallResult[*SessionData](Reply{Raw: []byte(`{"Userid":`)}, nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("truncated snapshot: err = %v, want ErrBadRequest", err)
	}
}
