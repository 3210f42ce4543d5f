package rabbitmq

import (
	"errors"
	"reflect"
	"strings"
	"testing"

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

// FuzzEnvelope decodes arbitrary bytes as a call and as a reply envelope:
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
	f.Fuzz(func(t *testing.T, b []byte) {
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
