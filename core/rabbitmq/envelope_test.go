package rabbitmq

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
)

func TestCallEnvelopeRoundTrip(t *testing.T) {
	sess := &core.SessionData{SessionID: "s1", ServerID: "g1", ClientID: "c", Network: "ws", RemoteAddr: "10.0.0.1",
		UserID: "alice", Settings: map[string]string{"b": "2", "a": "1", "": "empty key"}}
	for _, tc := range []struct {
		req     *core.Request
		timeout uint64
		arg     string
	}{
		{&core.Request{Fn: "Handler_Say", Session: sess, Trace: testTrace}, 9999, `{"roomName":"r"}`},
		{&core.Request{Fn: "Note", NoReply: true, Trace: testTrace}, 0, `["x",1]`},
		{&core.Request{Fn: "Ping"}, 1, ``},
		{&core.Request{Fn: "S", Session: &core.SessionData{}}, 5, `null`},
	} {
		b := encodeCall(tc.req, tc.timeout, []byte(tc.arg))
		c, err := decodeCall(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.req.Fn, err)
		}
		if c.fn != tc.req.Fn || c.noReply != tc.req.NoReply || c.timeoutMs != tc.timeout || string(c.arg) != tc.arg ||
			c.trace != tc.req.Trace {
			t.Errorf("%s: got %+v", tc.req.Fn, c)
		}
		want := tc.req.Session
		if want != nil && want.Settings == nil {
			want = &core.SessionData{Settings: map[string]string{}}
		}
		if !reflect.DeepEqual(c.session, want) {
			t.Errorf("%s: session %+v, want %+v", tc.req.Fn, c.session, want)
		}
		// Every truncation is an error, never a panic or a wrong call.
		for i := 0; i < len(b)-len(tc.arg); i++ {
			if _, err := decodeCall(b[:i]); err == nil {
				t.Errorf("%s: truncated to %d bytes decoded without error", tc.req.Fn, i)
			}
		}
	}
	if _, err := decodeCall([]byte{9, 0, 0, 0}); err == nil {
		t.Error("unknown version accepted")
	}
}

var testTrace = core.TraceContext{
	TraceID: [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
	SpanID:  [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, Flags: 1}

// TestCallEnvelopeVersions: version 1 calls (a process of the last
// release) are still served; what version 1 cannot carry, an unknown
// version and unknown flag bits are refused with the versions named,
// never misread.
func TestCallEnvelopeVersions(t *testing.T) {
	// A version 1 call as the last release encoded it: session, no trace.
	v1 := []byte{1, flagHasSession, 0x0f, 4, 'P', 'i', 'n', 'g', 1, 's', 0, 0, 0, 0, 1, 'u', 1, 1, 'k', 1, 'v', '{', '}'}
	c, err := decodeCall(v1)
	if err != nil || c.fn != "Ping" || c.timeoutMs != 15 || c.session.SessionID != "s" || c.session.UserID != "u" ||
		c.session.Settings["k"] != "v" || string(c.arg) != "{}" || c.trace.Valid() {
		t.Fatalf("version 1 call: %+v, %v", c, err)
	}
	if b, err := withTimeout(v1, 7); err != nil || b[0] != 1 {
		t.Errorf("withTimeout changed the version of a version 1 call: %v %v", b, err)
	} else if c, err := decodeCall(b); err != nil || c.timeoutMs != 7 || c.fn != "Ping" {
		t.Errorf("version 1 call after withTimeout: %+v %v", c, err)
	}
	traced := encodeCall(&core.Request{Fn: "Ping", Trace: testTrace}, 9, nil)
	if traced[0] != callVersion {
		t.Fatalf("version %d sent, want %d", traced[0], callVersion)
	}
	if b, err := withTimeout(traced, 3); err != nil {
		t.Fatal(err)
	} else if c, err := decodeCall(b); err != nil || c.trace != testTrace || c.timeoutMs != 3 {
		t.Errorf("trace after withTimeout: %+v %v", c, err)
	}
	for name, tc := range map[string]struct {
		body []byte
		want string
	}{
		"version 1 with a trace": {append([]byte{1}, traced[1:]...), "unknown flags"},
		"unknown flag":           {[]byte{callVersion, 1 << 5, 0, 1, 'F'}, "unknown flags"},
		"version 3":              {append([]byte{3}, traced[1:]...), "version 3, want 1 to 2"},
		"version 0":              {[]byte{0, 0, 0, 1, 'F'}, "version 0"},
		"zero trace id":          {encodeCall(&core.Request{Fn: "F", Trace: core.TraceContext{SpanID: [8]byte{1}}}, 0, nil), ""},
	} {
		if name == "zero trace id" {
			// The encoder sends no invalid trace: forge one.
			b := []byte{callVersion, flagHasTrace, 0, 1, 'F'}
			tc.body, tc.want = append(b, make([]byte, traceLen)...), "all-zero"
		}
		_, err := decodeCall(tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
}

func TestReplyEnvelopeRoundTrip(t *testing.T) {
	ok := decodeReply(encodeReply(core.Reply{Result: map[string]int{"n": 1}}))
	if ok.Err != nil || string(ok.Raw) != `{"n":1}` {
		t.Errorf("result: %+v", ok)
	}
	null := decodeReply(encodeReply(core.Reply{}))
	if null.Err != nil || string(null.Raw) != "null" {
		t.Errorf("nil result: %+v", null)
	}
	str := decodeReply(encodeReply(core.Reply{Result: "login success <bob>"}))
	if str.Err != nil || string(str.Raw) != `"login success \u003cbob\u003e"` {
		t.Errorf("string result: %+v", str)
	}
	// A result the codec cannot encode: the caller gets the handler's
	// failure, saying why, and no result.
	bad := decodeReply(encodeReply(core.Reply{Result: make(chan int)}))
	if !errors.Is(bad.Err, core.ErrRemote) || !strings.Contains(bad.Err.Error(), "result cannot be encoded as JSON") || bad.Raw != nil {
		t.Errorf("result that cannot be encoded: %+v", bad)
	}
	raw := decodeReply(encodeReply(core.Reply{Raw: []byte(`"x"`)}))
	if string(raw.Raw) != `"x"` {
		t.Errorf("raw result: %+v", raw)
	}
	for _, kind := range []error{core.ErrNotFound, core.ErrTimeout, core.ErrRemote, core.ErrRemotePanic, core.ErrBadRequest, core.ErrTransport} {
		r := decodeReply(encodeReply(core.Reply{Err: &core.Error{Kind: kind, Msg: "text of " + kind.Error()}}))
		if !errors.Is(r.Err, kind) || r.Err.Error() != "text of "+kind.Error() {
			t.Errorf("%v: got %v", kind, r.Err)
		}
	}
	if r := decodeReply([]byte{1, 0x80}); !errors.Is(r.Err, core.ErrTransport) {
		t.Errorf("truncated reply: %v", r.Err)
	}
}

// FuzzEnvelope decodes arbitrary bytes as a batch, a call and a reply envelope:
// never a panic, and what decodes re-encodes to an envelope that decodes
// the same (session and settings included). `make fuzz` runs it.
func FuzzEnvelope(f *testing.F) {
	sess := &core.SessionData{SessionID: "s1", ServerID: "g1", ClientID: "c", Network: "ws", RemoteAddr: "10.0.0.1",
		UserID: "alice", Settings: map[string]string{"b": "2", "a": "1", "": "empty key"}}
	for _, seed := range []struct {
		req     *core.Request
		timeout uint64
		arg     string
	}{
		{&core.Request{Fn: "Handler_Say", Session: sess, Trace: testTrace}, 9999, `{"roomName":"r"}`},
		{&core.Request{Fn: "Note", NoReply: true}, 0, `["x",1]`},
		{&core.Request{Fn: "Ping", Trace: testTrace}, 1, ``},
		{&core.Request{Fn: "S", Session: &core.SessionData{}}, 5, `null`},
	} {
		f.Add(encodeCall(seed.req, seed.timeout, []byte(seed.arg)))
	}
	f.Add(encodeReply(core.Reply{Result: map[string]int{"n": 1}}))
	f.Add(encodeReply(core.Reply{Err: &core.Error{Kind: core.ErrRemote, Msg: "boom"}}))
	f.Add([]byte{1, 2, 0, 1, 'F', 0xff, 0xff, 0xff, 0xff, 0x0f})
	// Batches: of calls (timeouts rewritten on the way), of replies, and
	// truncated or overlong ones.
	calls := []outItem{
		{id: "a.1", body: encodeCall(&core.Request{Fn: "Handler_Say", Session: sess, Trace: testTrace}, 9999, []byte(`{"r":1}`)), ms: 9999, deadline: time.Unix(100, 0)},
		{id: "a.2", body: encodeCall(&core.Request{Fn: "Ping"}, 0, nil)},
	}
	callBatch, _ := batchBody(calls, time.Unix(99, 0))
	f.Add(callBatch)
	replies := []outItem{{id: "r", body: encodeReply(core.Reply{Raw: []byte(`"x"`)})}, {id: "", body: encodeReply(core.Reply{Err: &core.Error{Kind: core.ErrRemote, Msg: "boom"}})}}
	replyBatch, _ := batchBody(replies, time.Time{})
	f.Add(replyBatch)
	f.Add(callBatch[:len(callBatch)-3])
	f.Add(append(appendBatchHead(nil, 1), 0, 0, 0))
	f.Add([]byte{batchVersion, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if es, err := decodeBatch(b); err == nil {
			// What decodes re-encodes to the same batch.
			items := make([]outItem, len(es))
			for i, e := range es {
				items[i] = outItem{id: string(e.id), body: e.body}
			}
			again, _ := batchBody(items, time.Time{})
			if string(again) != string(b) {
				es2, err := decodeBatch(again)
				if err != nil || !reflect.DeepEqual(es, es2) {
					t.Fatalf("batch re-encode differs: %q vs %q (%v)", b, again, err)
				}
			}
			for _, e := range es {
				_, _ = decodeCall(e.body)
				_ = decodeReply(e.body)
			}
		}
		if c, err := decodeCall(b); err == nil {
			req := &core.Request{Fn: c.fn, NoReply: c.noReply, Session: c.session, Trace: c.trace}
			c2, err := decodeCall(encodeCall(req, c.timeoutMs, c.arg))
			if err != nil || c2.fn != c.fn || c2.noReply != c.noReply || c2.timeoutMs != c.timeoutMs || c2.trace != c.trace ||
				string(c2.arg) != string(c.arg) || !reflect.DeepEqual(c2.session, c.session) {
				t.Fatalf("call re-encode differs: %+v vs %+v (%v)", c, c2, err)
			}
		}
		r := decodeReply(b)
		r2 := decodeReply(encodeReply(r))
		if (r.Err == nil) != (r2.Err == nil) || string(r.Raw) != string(r2.Raw) {
			t.Fatalf("reply re-encode differs: %+v vs %+v", r, r2)
		}
		if r.Err != nil && (core.ErrorCode(r.Err) != core.ErrorCode(r2.Err) || r.Err.Error() != r2.Err.Error()) {
			t.Fatalf("reply error re-encode differs: %v vs %v", r.Err, r2.Err)
		}
	})
}

// A handler's own error code crosses processes; other kinds keep theirs,
// and a reply without one decodes as before.
func TestReplyEnvelopeCarriesErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{core.CodeErrorf("room_full", "room %s is full", "abc"), "room_full"},
		{errors.New("plain"), core.CodeError},
		{core.NewError("legacy"), core.CodeError},
		{core.Errorf(core.ErrTimeout, "late"), core.CodeTimeout},
		{core.Errorf(core.ErrRemotePanic, "internal error (id 1)"), core.CodeInternal},
	} {
		got := decodeReply(encodeReply(core.Reply{Err: core.AsRemote(tc.err)}))
		if c := core.ClientCode(got.Err); c != tc.code || got.Err.Error() != tc.err.Error() {
			t.Errorf("%v: decoded %q code %q, want code %q", tc.err, got.Err, c, tc.code)
		}
	}
}

// TestBatchEnvelope: a batch carries calls and replies with their ids;
// each call's timeout becomes the time it has left when the batch goes
// out; every truncation is an error; a single envelope is no batch, and a
// batch is no call (an older process refuses it, naming the marker).
func TestBatchEnvelope(t *testing.T) {
	now := time.Unix(1000, 0)
	items := []outItem{
		{id: "p.1", body: encodeCall(&core.Request{Fn: "Login", Trace: testTrace}, 5000, []byte(`{"u":"a"}`)), ms: 5000, deadline: now.Add(1500 * time.Millisecond)},
		{id: "p.2", body: encodeCall(&core.Request{Fn: "Bind", Session: &core.SessionData{SessionID: "s"}}, 0, []byte(`[1]`))},
		{id: "p.3", body: encodeCall(&core.Request{Fn: "Ping"}, 90, nil), ms: 90, deadline: now.Add(200 * time.Millisecond)},
	}
	b, longest := batchBody(items, now)
	if longest != 0 {
		t.Errorf("longest %d with a call without deadline in the batch, want 0 (no expiration)", longest)
	}
	es, err := decodeBatch(b)
	if err != nil || len(es) != 3 {
		t.Fatalf("decode: %d entries, %v", len(es), err)
	}
	for i, want := range []struct {
		id, fn, arg string
		ms          uint64
	}{{"p.1", "Login", `{"u":"a"}`, 1500}, {"p.2", "Bind", `[1]`, 0}, {"p.3", "Ping", ``, 200}} {
		c, err := decodeCall(es[i].body)
		if err != nil || string(es[i].id) != want.id || c.fn != want.fn || string(c.arg) != want.arg || c.timeoutMs != want.ms {
			t.Errorf("entry %d: id %q %+v %v, want %+v", i, es[i].id, c, err, want)
		}
	}
	if c, _ := decodeCall(es[0].body); c.trace != testTrace {
		t.Errorf("trace lost in a batch: %+v", c.trace)
	}
	if _, longest := batchBody([]outItem{items[0], items[2]}, now); longest != 1500 {
		t.Errorf("longest %d, want 1500 (the batch lives as long as its longest call)", longest)
	}
	for i := 0; i < len(b); i++ {
		if _, err := decodeBatch(b[:i]); err == nil {
			t.Errorf("batch truncated to %d bytes decoded without error", i)
		}
	}
	if _, err := decodeBatch(append(b, 0)); err == nil {
		t.Error("a byte after the last entry accepted")
	}
	if _, err := decodeBatch(appendBatchHead(nil, 0)); err == nil {
		t.Error("an empty batch accepted")
	}
	if _, err := decodeCall(b); err == nil || !strings.Contains(err.Error(), "version 186") {
		t.Errorf("a batch read as a call: %v", err)
	}
	single := items[0].body
	if es, err := entries("application/x-mqant-call", "id", single); err != nil || len(es) != 1 || string(es[0].id) != "id" || string(es[0].body) != string(single) {
		t.Errorf("a single message read as %+v, %v", es, err)
	}
	if es, err := entries(batchContentType, "", b); err != nil || len(es) != 3 {
		t.Errorf("a batch message read as %d entries, %v", len(es), err)
	}
}

type argStruct struct {
	N    int               `json:"n"`
	Text string            `json:"text,omitempty"`
	M    map[string]string `json:"m"`
}

// TestEncodeArgMatchesCodec: positional arguments written one by one are
// the codec's encoding of the whole slice, for the values generated
// clients pass (strings, numbers, byte and string slices, sessions,
// structs, pointers, nil) and for a nil slice; a value the codec cannot
// encode fails as it does.
func TestEncodeArgMatchesCodec(t *testing.T) {
	n := 3
	var nilSess *core.SessionData
	sess := &core.SessionData{SessionID: "s<1>", UserID: "u&", Settings: map[string]string{"b": "2", "a": "\u2028"}}
	for _, arg := range []any{
		[]any{"sess-1", "alice"},
		[]any{"s", "key", "va\"lue\n\xff"},
		[]any{[]string{"a", "b"}, "topic", []byte("body")},
		[]any{1, int64(-2), 3.5, true, nil},
		[]any{sess, nilSess, &argStruct{N: 1, Text: "<x>"}, argStruct{M: map[string]string{"z": "1", "a": "2"}}, &n},
		[]any{map[string]any{"k": []any{1, "2"}}},
		[]any{},
		[]any(nil),
		"one",
		&argStruct{N: 2},
		argStruct{Text: "va\"l<ue>"},
		(*argStruct)(nil),
		nilSess,
		sess,
		map[string]any{"k": 1},
		42,
	} {
		want, werr := core.JSON.Marshal(arg)
		got, gerr := appendArg(nil, &core.Request{Arg: arg})
		if (werr != nil) != (gerr != nil) || string(got) != string(want) {
			t.Errorf("%#v: appendArg %q (%v), codec %q (%v)", arg, got, gerr, want, werr)
		}
	}
	if _, err := appendArg(nil, &core.Request{Arg: []any{"ok", make(chan int)}}); err == nil {
		t.Error("a channel argument encoded without an error")
	}
	if _, err := core.JSON.Marshal([]any{"ok", make(chan int)}); err == nil {
		t.Error("the codec encodes a channel: the test above proves nothing")
	}
}
