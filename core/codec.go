package core

import (
	"encoding"
	"encoding/json"
	"sync/atomic"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"
)

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
	if enc, ptr := pointeeEncoder(v); enc != nil {
		enc.Encode(ptr, s)
	} else {
		s.WriteVal(v)
	}
	out, err := s.Buffer(), s.Error
	s.SetBuffer(nil)
	s.Error = nil
	jsonAPI.ReturnStream(s)
	return out, err
}

// pointeeEncoders maps a type (its runtime type word) to the encoder of
// what it points to when a non-nil value of it may be encoded as its
// pointee, nil otherwise. Copied on write: types are few, reads many.
var pointeeEncoders atomic.Pointer[map[uintptr]jsoniter.ValEncoder]

// pointeeEncoder returns the encoder of the value v points to and the
// pointer to hand it, when v is a non-nil pointer whose encoding is that
// of its pointee; nil otherwise. json-iterator encodes a pointer held in
// an interface by taking the address of a copy of it, which escapes: one
// allocation per result (most results are pointers to structs). Encoding
// the pointee directly writes the same bytes without it. Types whose
// pointer or value has its own (text) marshaller, and pointees that are
// themselves pointer-shaped (maps, one-pointer structs), keep WriteVal.
// (reflect2, json-iterator's own type access: the runtime does not import
// reflect.)
func pointeeEncoder(v any) (jsoniter.ValEncoder, unsafe.Pointer) {
	if v == nil {
		return nil, nil
	}
	key := reflect2.RTypeOf(v)
	m := pointeeEncoders.Load()
	enc, ok := jsoniter.ValEncoder(nil), false
	if m != nil {
		enc, ok = (*m)[key]
	}
	if !ok {
		enc = pointeeEncoderOf(reflect2.TypeOf(v))
		for {
			n := make(map[uintptr]jsoniter.ValEncoder, 1+len(mapOrNil(m)))
			for k, e := range mapOrNil(m) {
				n[k] = e
			}
			n[key] = enc
			if pointeeEncoders.CompareAndSwap(m, &n) {
				break
			}
			m = pointeeEncoders.Load()
		}
	}
	ptr := reflect2.PtrOf(v)
	if enc == nil || ptr == nil {
		return nil, nil
	}
	return enc, ptr
}

func mapOrNil(m *map[uintptr]jsoniter.ValEncoder) map[uintptr]jsoniter.ValEncoder {
	if m == nil {
		return nil
	}
	return *m
}

var (
	ptrKind           = reflect2.TypeOf((*int)(nil)).Kind()
	jsonMarshalerType = reflect2.TypeOfPtr((*json.Marshaler)(nil)).Elem()
	textMarshalerType = reflect2.TypeOfPtr((*encoding.TextMarshaler)(nil)).Elem()
)

func pointeeEncoderOf(t reflect2.Type) jsoniter.ValEncoder {
	if t.Kind() != ptrKind || hasMarshaler(t) {
		return nil
	}
	elem := t.(reflect2.PtrType).Elem()
	if elem.LikePtr() || hasMarshaler(elem) {
		return nil
	}
	return jsonAPI.EncoderOf(elem)
}

func hasMarshaler(t reflect2.Type) bool {
	return t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType)
}

// RawMessage is a raw encoded JSON value, as encoding/json's.
type RawMessage = jsoniter.RawMessage
