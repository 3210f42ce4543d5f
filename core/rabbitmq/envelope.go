package rabbitmq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/mqantgen/mqantgen/core"
)

// The envelopes are a small binary format: decoding one costs a few
// string copies, where a JSON envelope around a JSON payload cost a sixth
// of the transport's CPU (parsing, and json-iterator re-validating the
// embedded raw payload). The payload itself (the argument, the result)
// stays JSON.
//
// call:  version u8 | flags u8 | timeout-ms uvarint | fn str | [trace] | [session] | arg (rest)
// reply: version u8 | code uvarint | msg str | result (rest); on an error
// (code != 0) the rest is the handler's own error code (core.Error.Code),
// empty when it has none, so older decoders that ignore the rest of an
// error reply read it unchanged.
// str is a uvarint length and the bytes; trace is 25 bytes (W3C trace id
// 16, parent span id 8, flags 1); session is six strs (session id, gate
// id, client id, network, remote address, user id) and a uvarint count of
// key/value strs.

// callVersion is the version of the call envelope this process sends.
// Version 2 added the trace (flag bit 2). Version 1 calls (no flag bit 2
// possible) are still read, so a process of this version serves callers
// of the last one; a process of the last version refuses version 2 calls
// with a clear error (a bad request naming both versions) instead of
// misreading the trace as the session. Upgrade every process together.
// Version 2 refuses flag bits it does not know, so the next field cannot
// be misread either.
const callVersion = 2

// replyVersion is the version of the reply envelope. A receiver refuses
// versions it does not know.
const replyVersion = 1

const (
	flagNoReply    = 1 << 0
	flagHasSession = 1 << 1
	flagHasTrace   = 1 << 2

	knownFlags = flagNoReply | flagHasSession | flagHasTrace
	traceLen   = 16 + 8 + 1
)

// call is a decoded call envelope.
type call struct {
	fn        string
	noReply   bool
	timeoutMs uint64
	session   *core.SessionData
	trace     core.TraceContext // zero when the caller sent none
	arg       []byte
}

var errShort = errors.New("truncated")

// appendArg appends the wire form of a request's argument to b: the raw
// bytes when it came encoded, the JSON of the typed value otherwise (a
// []any of positional arguments becomes a JSON array).
func appendArg(b []byte, req *core.Request) ([]byte, error) {
	switch a := req.Arg.(type) {
	case nil:
		return append(b, req.Raw...), nil
	case []any:
		// Positional arguments (a session call's ids and values): each
		// through AppendJSON, which writes strings and generated flat
		// types itself, where the codec encodes the slice and every
		// element reflectively. The same bytes (TestEncodeArgMatchesCodec).
		if a == nil {
			break
		}
		b = append(b, '[')
		for i, v := range a {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = core.AppendJSON(b, v); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	// AppendJSON writes into b (the codec's Marshal copies its pooled
	// stream's bytes out) and uses a generated writer when the type has
	// one. The same bytes (TestEncodeArgMatchesCodec).
	return core.AppendJSON(b, req.Arg)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeCall returns the call envelope of req with arg, its argument's
// wire form.
func encodeCall(req *core.Request, timeoutMs uint64, arg []byte) []byte {
	return append(callHeader(req, timeoutMs, len(arg)), arg...)
}

// encodeCallArg returns the call envelope of req, its argument written
// in place (appendArg): one allocation, the argument not encoded on its
// own first.
func encodeCallArg(req *core.Request, timeoutMs uint64) ([]byte, error) {
	room := len(req.Raw)
	if req.Arg != nil {
		room = 128
	}
	return appendArg(callHeader(req, timeoutMs, room), req)
}

// callHeader returns the call envelope of req up to its argument, with
// room for argLen more bytes.
func callHeader(req *core.Request, timeoutMs uint64, argLen int) []byte {
	b := make([]byte, 0, 32+traceLen+len(req.Fn)+argLen)
	var flags byte
	if req.NoReply {
		flags |= flagNoReply
	}
	if req.Session != nil {
		flags |= flagHasSession
	}
	if req.Trace.Valid() {
		flags |= flagHasTrace
	}
	b = append(b, callVersion, flags)
	b = binary.AppendUvarint(b, timeoutMs)
	b = appendStr(b, req.Fn)
	if t := &req.Trace; t.Valid() {
		b = append(append(append(b, t.TraceID[:]...), t.SpanID[:]...), t.Flags)
	}
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
	return b
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

func (r *reader) str() string { return string(r.bytes()) }

// bytes reads a length-prefixed string as a slice of the envelope.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = errShort
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// session reads a call's session snapshot. Its strings are substrings of
// one copy of the snapshot's bytes: one allocation for all of them, not
// one each (a handler that keeps one of them keeps the snapshot's bytes,
// a few hundred at most).
func (r *reader) session() *core.SessionData {
	base := r.b
	at := func(b []byte) [2]int { // b's place in base
		end := len(base) - len(r.b)
		return [2]int{end - len(b), end}
	}
	var fields [6][2]int
	for i := range fields {
		fields[i] = at(r.bytes())
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) { // each pair takes at least two bytes
		r.err = errShort
	}
	if r.err != nil {
		return nil
	}
	var small [8][2][2]int
	pairs := small[:0]
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := at(r.bytes())
		pairs = append(pairs, [2][2]int{k, at(r.bytes())})
	}
	if r.err != nil {
		return nil
	}
	all := string(base[:len(base)-len(r.b)])
	str := func(f [2]int) string { return all[f[0]:f[1]] }
	s := &core.SessionData{SessionID: str(fields[0]), ServerID: str(fields[1]), ClientID: str(fields[2]),
		Network: str(fields[3]), RemoteAddr: str(fields[4]), UserID: str(fields[5]),
		Settings: make(map[string]string, len(pairs))}
	for _, p := range pairs {
		s.Settings[str(p[0])] = str(p[1])
	}
	return s
}

// fn is str for a function name: interned (fnName).
func (r *reader) fn() string {
	if b := r.bytes(); r.err == nil {
		return fnName(b)
	}
	return ""
}

// callHead reads a call envelope's version and flags.
func (r *reader) callHead() (version, flags byte, err error) {
	version = r.byte()
	if r.err == nil && (version < 1 || version > callVersion) {
		return version, 0, fmt.Errorf("call envelope version %d, want 1 to %d", version, callVersion)
	}
	flags = r.byte()
	if r.err == nil {
		if unknown := flags &^ knownFlags; unknown != 0 || (version == 1 && flags&flagHasTrace != 0) {
			return version, flags, fmt.Errorf("call envelope version %d: unknown flags %#x", version, flags)
		}
	}
	return version, flags, nil
}

func decodeCall(body []byte) (call, error) {
	r := &reader{b: body}
	var c call
	_, flags, err := r.callHead()
	if err != nil {
		return c, err
	}
	c.noReply = flags&flagNoReply != 0
	c.timeoutMs = r.uvarint()
	c.fn = r.fn()
	if flags&flagHasTrace != 0 {
		if len(r.b) < traceLen {
			r.err = errShort
		}
		if r.err == nil {
			copy(c.trace.TraceID[:], r.b)
			copy(c.trace.SpanID[:], r.b[16:])
			c.trace.Flags = r.b[24]
			r.b = r.b[traceLen:]
			if !c.trace.Valid() {
				return c, errors.New("call envelope: trace with an all-zero id")
			}
		}
	}
	if flags&flagHasSession != 0 {
		c.session = r.session()
	}
	if r.err != nil {
		return c, fmt.Errorf("call envelope: %w", r.err)
	}
	c.arg = r.b
	return c, nil
}

func encodeReply(rep core.Reply) []byte {
	if rep.Err == nil && rep.Raw == nil {
		// The result is encoded straight after its header (code 0, no
		// message), by the generated writer when its type has one.
		b := appendReplyHeader(make([]byte, 0, 128), 0, "")
		out, err := core.AppendJSON(b, rep.Result)
		if err == nil {
			return out
		}
		return appendReplyHeader(b[:0], core.ErrorCode(core.ErrRemote), "result cannot be encoded as JSON: "+err.Error())
	}
	code, msg, result := 0, "", rep.Raw
	if rep.Err != nil {
		code, msg, result = core.ErrorCode(rep.Err), rep.Err.Error(), nil
		var e *core.Error
		if errors.As(rep.Err, &e) && e.Kind == core.ErrRemote {
			result = []byte(e.Code)
		}
	}
	b := appendReplyHeader(make([]byte, 0, 8+len(msg)+len(result)), code, msg)
	return append(b, result...)
}

// appendReplyHeader appends a reply envelope's header: its version, the
// error code (0: none) and message; the result follows it.
func appendReplyHeader(b []byte, code int, msg string) []byte {
	b = append(b, replyVersion)
	b = binary.AppendUvarint(b, uint64(code))
	return appendStr(b, msg)
}

func decodeReply(body []byte) core.Reply {
	r := &reader{b: body}
	if v := r.byte(); r.err == nil && v != replyVersion {
		return core.Reply{Err: core.Errorf(core.ErrTransport, "rabbitmq: reply envelope version %d, want %d", v, replyVersion)}
	}
	code := r.uvarint()
	msg := r.str()
	if r.err != nil {
		return core.Reply{Err: core.Errorf(core.ErrTransport, "rabbitmq: bad reply envelope: %v", r.err)}
	}
	if code != 0 {
		err := core.ErrorFromCode(int(min(code, 1<<16)), msg)
		if e, ok := err.(*core.Error); ok && e.Kind == core.ErrRemote && len(r.b) > 0 {
			e.Code = string(r.b)
		}
		return core.Reply{Err: err}
	}
	raw := r.b
	if len(raw) == 0 {
		raw = []byte("null")
	}
	return core.Reply{Raw: raw}
}

// splitCall reads a call envelope's head: version, flags, its timeout,
// and the rest after the timeout.
func splitCall(body []byte) (version, flags byte, ms uint64, rest []byte, err error) {
	r := &reader{b: body}
	version, flags, err = r.callHead()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	ms = r.uvarint()
	if r.err != nil {
		return 0, 0, 0, nil, fmt.Errorf("call envelope: %w", r.err)
	}
	return version, flags, ms, r.b, nil
}

// withTimeout returns a call envelope with its timeout replaced by ms: the
// version, flags and old timeout are the head, the rest stays as it is.
func withTimeout(body []byte, ms uint64) ([]byte, error) {
	version, flags, _, rest, err := splitCall(body)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(body)+binary.MaxVarintLen64)
	b = append(b, version, flags)
	b = binary.AppendUvarint(b, ms)
	return append(b, rest...), nil
}

// The batch form carries several calls (all bound for one queue, from one
// sender) or several replies (bound for one caller) in one AMQP message:
// the broker's cost is per message, so what queues behind a publish in
// flight travels together (batch.go).
//
// batch: marker u8 (batchVersion) | count uvarint | count x (call id str | envelope str)
//
// Each envelope is a whole call or reply envelope as above, its call id
// the one a single message carries as its AMQP correlation id. The marker
// is no call or reply version, so a process that predates batches refuses
// a batch with a clear "version 186" error instead of misreading it, and a
// single message (no marker) still decodes as before. Messages with a batch
// have their own content type (batchContentType).
const batchVersion = 0xba

// batchContentType marks an AMQP message whose body is a batch.
const batchContentType = "application/x-mqant-batch"

// batchEntry is one call or reply of a batch.
type batchEntry struct {
	id   []byte // a slice of the batch: a receiver that only looks it up makes no string
	body []byte
}

// appendBatchHead starts a batch of n entries.
func appendBatchHead(b []byte, n int) []byte {
	return binary.AppendUvarint(append(b, batchVersion), uint64(n))
}

// appendBatchEntry adds one entry to a batch.
func appendBatchEntry(b []byte, id string, body []byte) []byte {
	b = appendStr(b, id)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// appendBatchCall adds a call to a batch with its timeout replaced by ms
// (the time left when the batch goes out), without copying it twice.
func appendBatchCall(b []byte, id string, body []byte, ms uint64) ([]byte, error) {
	version, flags, _, rest, err := splitCall(body)
	if err != nil {
		return b, err
	}
	var head [2 + binary.MaxVarintLen64]byte
	h := binary.AppendUvarint(append(head[:0], version, flags), ms)
	b = appendStr(b, id)
	b = binary.AppendUvarint(b, uint64(len(h)+len(rest)))
	return append(append(b, h...), rest...), nil
}

// decodeBatch splits a batch into its entries; the envelopes are slices of
// body, decoded one by one by their receiver. A batch has at least one
// entry.
func decodeBatch(body []byte) ([]batchEntry, error) {
	r := &reader{b: body}
	if v := r.byte(); r.err == nil && v != batchVersion {
		return nil, fmt.Errorf("batch envelope version %d, want %d", v, batchVersion)
	}
	n := r.uvarint()
	if r.err == nil && (n == 0 || n > uint64(len(r.b))/2) { // each entry takes at least two bytes
		return nil, fmt.Errorf("batch envelope: %d entries in %d bytes", n, len(r.b))
	}
	entries := make([]batchEntry, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.bytes()
		size := r.uvarint()
		if r.err == nil && size > uint64(len(r.b)) {
			r.err = errShort
		}
		if r.err != nil {
			break
		}
		entries = append(entries, batchEntry{id: id, body: r.b[:size:size]})
		r.b = r.b[size:]
	}
	if r.err != nil {
		return nil, fmt.Errorf("batch envelope: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("batch envelope: %d bytes after the last entry", len(r.b))
	}
	return entries, nil
}
