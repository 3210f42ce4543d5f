package rabbitmq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/mqantgen/mqantgen/runtime"
)

// The envelopes are a small binary format: decoding one costs a few
// string copies, where a JSON envelope around a JSON payload cost a sixth
// of the transport's CPU (parsing, and json-iterator re-validating the
// embedded raw payload). The payload itself (the argument, the result)
// stays JSON.
//
// call:  version u8 | flags u8 | timeout-ms uvarint | fn str | [session] | arg (rest)
// reply: version u8 | code uvarint | msg str | result (rest); on an error
// (code != 0) the rest is the handler's own error code (runtime.Error.Code),
// empty when it has none, so older decoders that ignore the rest of an
// error reply read it unchanged.
// str is a uvarint length and the bytes; session is six strs (session id,
// gate id, client id, network, remote address, user id) and a uvarint
// count of key/value strs.

// envelopeVersion is the version of both envelopes. A receiver refuses
// versions it does not know.
const envelopeVersion = 1

const (
	flagNoReply    = 1 << 0
	flagHasSession = 1 << 1
)

// call is a decoded call envelope.
type call struct {
	fn        string
	noReply   bool
	timeoutMs uint64
	session   *runtime.SessionData
	arg       []byte
}

var errShort = errors.New("truncated")

// encodeArg returns the wire form of a request's argument: the raw bytes
// when it came encoded, the JSON of the typed value otherwise (a []any of
// positional arguments becomes a JSON array).
func encodeArg(req *runtime.Request) ([]byte, error) {
	if req.Arg == nil {
		return req.Raw, nil
	}
	return runtime.JSON.Marshal(req.Arg)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeCall(req *runtime.Request, timeoutMs uint64, arg []byte) []byte {
	b := make([]byte, 0, 32+len(req.Fn)+len(arg))
	var flags byte
	if req.NoReply {
		flags |= flagNoReply
	}
	if req.Session != nil {
		flags |= flagHasSession
	}
	b = append(b, envelopeVersion, flags)
	b = binary.AppendUvarint(b, timeoutMs)
	b = appendStr(b, req.Fn)
	if s := req.Session; s != nil {
		for _, f := range [...]string{s.SessionID, s.ServerID, s.ClientID, s.Network, s.RemoteAddr, s.UserID} {
			b = appendStr(b, f)
		}
		keys := make([]string, 0, len(s.Settings))
		for k := range s.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendStr(appendStr(b, k), s.Settings[k])
		}
	}
	return append(b, arg...)
}

// reader decodes the envelopes' fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if uint64(len(r.b)) < n {
		r.err = errShort
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeCall(body []byte) (call, error) {
	r := &reader{b: body}
	var c call
	if v := r.byte(); r.err == nil && v != envelopeVersion {
		return c, fmt.Errorf("call envelope version %d, want %d", v, envelopeVersion)
	}
	flags := r.byte()
	c.noReply = flags&flagNoReply != 0
	c.timeoutMs = r.uvarint()
	c.fn = r.str()
	if flags&flagHasSession != 0 {
		s := &runtime.SessionData{}
		for _, f := range [...]*string{&s.SessionID, &s.ServerID, &s.ClientID, &s.Network, &s.RemoteAddr, &s.UserID} {
			*f = r.str()
		}
		n := r.uvarint()
		if n > uint64(len(r.b)) { // each pair takes at least two bytes
			r.err = errShort
		}
		if r.err == nil {
			s.Settings = make(map[string]string, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				k := r.str()
				s.Settings[k] = r.str()
			}
		}
		c.session = s
	}
	if r.err != nil {
		return c, fmt.Errorf("call envelope: %w", r.err)
	}
	c.arg = r.b
	return c, nil
}

func encodeReply(rep runtime.Reply) []byte {
	code, msg, result := 0, "", rep.Raw
	if rep.Err != nil {
		code, msg, result = runtime.ErrorCode(rep.Err), rep.Err.Error(), nil
		var e *runtime.Error
		if errors.As(rep.Err, &e) && e.Kind == runtime.ErrRemote {
			result = []byte(e.Code)
		}
	} else if result == nil {
		b, err := runtime.JSON.Marshal(rep.Result)
		if err != nil {
			code, msg = runtime.ErrorCode(runtime.ErrRemote), "result cannot be encoded as JSON: "+err.Error()
		}
		result = b
	}
	b := make([]byte, 0, 8+len(msg)+len(result))
	b = append(b, envelopeVersion)
	b = binary.AppendUvarint(b, uint64(code))
	b = appendStr(b, msg)
	return append(b, result...)
}

func decodeReply(body []byte) runtime.Reply {
	r := &reader{b: body}
	if v := r.byte(); r.err == nil && v != envelopeVersion {
		return runtime.Reply{Err: runtime.Errorf(runtime.ErrTransport, "rabbitmq: reply envelope version %d, want %d", v, envelopeVersion)}
	}
	code := r.uvarint()
	msg := r.str()
	if r.err != nil {
		return runtime.Reply{Err: runtime.Errorf(runtime.ErrTransport, "rabbitmq: bad reply envelope: %v", r.err)}
	}
	if code != 0 {
		err := runtime.ErrorFromCode(int(min(code, 1<<16)), msg)
		if e, ok := err.(*runtime.Error); ok && e.Kind == runtime.ErrRemote && len(r.b) > 0 {
			e.Code = string(r.b)
		}
		return runtime.Reply{Err: err}
	}
	raw := r.b
	if len(raw) == 0 {
		raw = []byte("null")
	}
	return runtime.Reply{Raw: raw}
}

// withTimeout returns a call envelope with its timeout replaced by ms: the
// version, flags and old timeout are the head, the rest stays as it is.
func withTimeout(body []byte, ms uint64) ([]byte, error) {
	r := &reader{b: body}
	if v := r.byte(); r.err == nil && v != envelopeVersion {
		return nil, fmt.Errorf("call envelope version %d, want %d", v, envelopeVersion)
	}
	flags := r.byte()
	r.uvarint()
	if r.err != nil {
		return nil, fmt.Errorf("call envelope: %w", r.err)
	}
	b := make([]byte, 0, len(body)+binary.MaxVarintLen64)
	b = append(b, envelopeVersion, flags)
	b = binary.AppendUvarint(b, ms)
	return append(b, r.b...), nil
}
