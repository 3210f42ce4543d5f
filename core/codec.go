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
// dst, with a pooled encoder: no allocation beyond growing dst. A string,
// and a value of a type generated code registered an appender for
// (RegisterAppender: the flat structs handlers return), are written
// without the codec, to the same bytes.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return AppendJSONString(dst, s), nil
	}
	enc, ptr := encoderOf(v)
	if enc.app != nil {
		return enc.app(dst, v), nil
	}
	s := jsonAPI.BorrowStream(nil)
	s.SetBuffer(dst)
	if enc.enc != nil && ptr != nil {
		enc.enc.Encode(ptr, s)
	} else {
		s.WriteVal(v)
	}
	out, err := s.Buffer(), s.Error
	s.SetBuffer(nil)
	s.Error = nil
	jsonAPI.ReturnStream(s)
	return out, err
}

// typeEncoder is how AppendJSON writes the values of one type.
type typeEncoder struct {
	// app, when set, is the appender generated code registered for the
	// type: it writes the codec's bytes itself.
	app func(dst []byte, v any) []byte
	// enc, when set, is the codec's encoder of what a (non-nil) pointer of
	// the type points to, for pointers whose encoding is their pointee's.
	enc jsoniter.ValEncoder
}

// typeEncoders maps a type (its runtime type word) to its typeEncoder.
// Copied on write: types are few, reads many.
var typeEncoders atomic.Pointer[map[uintptr]typeEncoder]

// RegisterAppender makes AppendJSON write the values of sample's type with
// app, which must append exactly the codec's encoding of v (a value of
// that type; a pointer type's app writes null for nil). For generated code
// (coregen.FlatResult), at init; a later registration of the type wins.
func RegisterAppender(sample any, app func(dst []byte, v any) []byte) {
	storeTypeEncoder(reflect2.RTypeOf(sample), typeEncoder{app: app}, true)
}

// storeTypeEncoder publishes e for the type key; without replace, an entry
// already there stays (and is returned).
func storeTypeEncoder(key uintptr, e typeEncoder, replace bool) typeEncoder {
	for {
		m := typeEncoders.Load()
		if old, ok := mapOrNil(m)[key]; ok && !replace {
			return old
		}
		n := make(map[uintptr]typeEncoder, 1+len(mapOrNil(m)))
		for k, x := range mapOrNil(m) {
			n[k] = x
		}
		n[key] = e
		if typeEncoders.CompareAndSwap(m, &n) {
			return e
		}
	}
}

// encoderOf returns how v's type is written: its registered appender,
// or the encoder of the value v points to and the pointer to hand it,
// when v is a non-nil pointer whose encoding is that of its pointee.
// json-iterator encodes a pointer held in an interface by taking the
// address of a copy of it, which escapes: one allocation per result (most
// results are pointers to structs). Encoding the pointee directly writes
// the same bytes without it. Types whose pointer or value has its own
// (text) marshaller, and pointees that are themselves pointer-shaped
// (maps, one-pointer structs), keep WriteVal. (reflect2, json-iterator's
// own type access: the runtime does not import reflect.)
func encoderOf(v any) (typeEncoder, unsafe.Pointer) {
	if v == nil {
		return typeEncoder{}, nil
	}
	key := reflect2.RTypeOf(v)
	e, ok := mapOrNil(typeEncoders.Load())[key]
	if !ok {
		e = storeTypeEncoder(key, typeEncoder{enc: pointeeEncoderOf(reflect2.TypeOf(v))}, false)
	}
	if e.app != nil {
		return e, nil
	}
	return e, reflect2.PtrOf(v)
}

func mapOrNil(m *map[uintptr]typeEncoder) map[uintptr]typeEncoder {
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
