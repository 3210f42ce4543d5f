package coregen

import (
	"strconv"

	"github.com/mqantgen/mqantgen/core"
)

// Most handler results are flat structs too. For those mqantgen generates
// a writer of their JSON, the codec's bytes without the codec:
//
//	func _write_EchoReply(b []byte, v *EchoReply) []byte {
//		b = append(b, `{"n":`...)
//		b = coregen.AppendInt(b, v.N)
//		b = append(b, `,"text":`...)
//		b = coregen.AppendString(b, v.Text)
//		return append(b, '}')
//	}
//
// and registers it with FlatResult, so core.AppendJSON (the gate's
// replies) uses it. Floats, fields or structs with their own marshallers,
// and everything else that is not flat stay with the codec.
// TestFlatResultMatchesCodec holds the two to the same bytes.

// FlatResult registers write as the JSON writer of *T's values: write gets
// a non-nil pointer, a nil one is written as null.
func FlatResult[T any](write func(b []byte, v *T) []byte) {
	core.RegisterAppender((*T)(nil), func(b []byte, v any) []byte {
		p := v.(*T)
		if p == nil {
			return append(b, "null"...)
		}
		return write(b, p)
	})
}

// AppendString appends v as a JSON string, escaped as the codec does.
func AppendString[T ~string](b []byte, v T) []byte { return core.AppendJSONString(b, string(v)) }

// AppendBool appends v as a JSON boolean.
func AppendBool[T ~bool](b []byte, v T) []byte { return strconv.AppendBool(b, bool(v)) }

// AppendInt appends v as a JSON number.
func AppendInt[T ~int | ~int8 | ~int16 | ~int32 | ~int64](b []byte, v T) []byte {
	return strconv.AppendInt(b, int64(v), 10)
}

// AppendUint appends v as a JSON number.
func AppendUint[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64](b []byte, v T) []byte {
	return strconv.AppendUint(b, uint64(v), 10)
}
