package core

import jsoniter "github.com/json-iterator/go"

// Codec turns values into bytes and back. One configuration is used
// everywhere: payloads from clients, calls between processes, replies.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

type jsonCodec struct{ api jsoniter.API }

func (c jsonCodec) Marshal(v any) ([]byte, error)      { return c.api.Marshal(v) }
func (c jsonCodec) Unmarshal(data []byte, v any) error { return c.api.Unmarshal(data, v) }

// jsonAPI is the one json-iterator configuration: like encoding/json (same
// tags, same escaping, sorted map keys).
var jsonAPI = jsoniter.ConfigCompatibleWithStandardLibrary

// JSON is the codec of the framework.
var JSON Codec = jsonCodec{api: jsonAPI}

// AppendJSON appends v encoded as JSON (the JSON codec's configuration) to
// dst, with a pooled encoder: no allocation beyond growing dst.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	s := jsonAPI.BorrowStream(nil)
	s.SetBuffer(dst)
	s.WriteVal(v)
	out, err := s.Buffer(), s.Error
	s.SetBuffer(nil)
	s.Error = nil
	jsonAPI.ReturnStream(s)
	return out, err
}

// RawMessage is a raw encoded JSON value, as encoding/json's.
type RawMessage = jsoniter.RawMessage

// DecodeArgs decodes a JSON array of positional arguments into ptrs, one
// element each. Used by generated code for //mqant:rpc methods with several
// arguments.
func DecodeArgs(data []byte, ptrs ...any) error {
	var raw []RawMessage
	if err := JSON.Unmarshal(data, &raw); err != nil {
		return Errorf(ErrBadRequest, "arguments must be a JSON array: %v", err)
	}
	if len(raw) != len(ptrs) {
		return Errorf(ErrBadRequest, "want %d arguments, got %d", len(ptrs), len(raw))
	}
	for i, p := range ptrs {
		if err := JSON.Unmarshal(raw[i], p); err != nil {
			return Errorf(ErrBadRequest, "argument %d: %v", i, err)
		}
	}
	return nil
}
