package coregen

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Most handler arguments are flat structs: a few exported fields of
// string, bool, integer and float kinds (a login, a move, a chat line).
// For those mqantgen generates a reader of their JSON's common shape, one
// object whose keys are spelt exactly as the fields' names and whose
// values are plain, built on FlatReader:
//
//	func _Login_Login_Arg(b []byte, v *loginapi.LoginRequest) bool {
//		r := coregen.NewFlatReader(b)
//		for r.Next() {
//			switch string(r.Key()) {
//			case "userName":
//				if !coregen.FlatString(&r, &v.UserName) {
//					return false
//				}
//			...
//			default:
//				return false
//			}
//		}
//		return r.Done()
//	}
//
// Anything else it leaves to the codec (core.JSON) from the start, so the
// result, or the error, is the codec's: an unknown or differently cased
// key, an escape, null, a number that does not fit its field, malformed
// or trailing data. FuzzFlatArg holds the two to the same answers.

// FlatReader reads one JSON object, key by key; each read says false on
// anything outside the common shape.
type FlatReader struct {
	b       []byte
	i       int
	key     []byte
	started bool
	end     bool // the object's '}' was read
}

// NewFlatReader returns a reader of the object in b.
func NewFlatReader(b []byte) FlatReader { return FlatReader{b: b} }

// Next moves to the next key: false at the end of the object, or when
// what follows is not a plain key and its colon (Done tells them apart).
func (r *FlatReader) Next() bool {
	b := r.b
	i := skipSpace(b, r.i)
	if !r.started {
		r.started = true
		if i >= len(b) || b[i] != '{' {
			return r.fail() // not an object
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			r.i, r.end = i+1, true
			return false
		}
	} else {
		// After a value: a comma and the next key, or the end.
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			r.i, r.end = i+1, true
			return false
		default:
			return r.fail()
		}
	}
	if i >= len(b) || b[i] != '"' {
		return r.fail()
	}
	j := i + 1
	for j < len(b) && b[j] != '"' {
		if c := b[j]; c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return r.fail() // an escape or a non-ASCII key: the codec's rules
		}
		j++
	}
	k := skipSpace(b, j+1)
	if j >= len(b) || k >= len(b) || b[k] != ':' {
		return r.fail()
	}
	r.key = b[i+1 : j]
	r.i = skipSpace(b, k+1)
	return true
}

// Key is the key Next moved to (valid until the next Next).
func (r *FlatReader) Key() []byte { return r.key }

// Done: the object ended and nothing but white space follows it.
func (r *FlatReader) Done() bool { return r.end && skipSpace(r.b, r.i) == len(r.b) }

// fail stops the reader: Next and Done say false from now on.
func (r *FlatReader) fail() bool {
	r.i, r.end = len(r.b)+1, false
	return false
}

// FlatString reads a string without escapes or control characters, in
// valid UTF-8, into *p.
func FlatString[T ~string](r *FlatReader, p *T) bool {
	b, i := r.b, r.i
	if i >= len(b) || b[i] != '"' {
		return r.fail()
	}
	j, ascii := i+1, true
	for j < len(b) && b[j] != '"' {
		c := b[j]
		if c == '\\' || c < 0x20 {
			return r.fail()
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		j++
	}
	if j >= len(b) || !ascii && !utf8.Valid(b[i+1:j]) {
		return r.fail()
	}
	*p = T(b[i+1 : j])
	r.i = j + 1
	return true
}

// FlatBool reads true or false into *p.
func FlatBool[T ~bool](r *FlatReader, p *T) bool {
	b := r.b[min(r.i, len(r.b)):]
	switch {
	case len(b) >= 4 && string(b[:4]) == "true":
		*p, r.i = true, r.i+4
	case len(b) >= 5 && string(b[:5]) == "false":
		*p, r.i = false, r.i+5
	default:
		return r.fail()
	}
	return true
}

// FlatInt reads an integer that fits T into *p.
func FlatInt[T ~int | ~int8 | ~int16 | ~int32 | ~int64](r *FlatReader, p *T) bool {
	tok, integer := r.number()
	if !integer {
		return r.fail()
	}
	v, err := strconv.ParseInt(tok, 10, int(unsafe.Sizeof(*p))*8)
	if err != nil {
		return r.fail()
	}
	*p = T(v)
	return true
}

// FlatUint reads a non-negative integer that fits T into *p.
func FlatUint[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64](r *FlatReader, p *T) bool {
	tok, integer := r.number()
	if !integer || tok[0] == '-' {
		return r.fail()
	}
	v, err := strconv.ParseUint(tok, 10, int(unsafe.Sizeof(*p))*8)
	if err != nil {
		return r.fail()
	}
	*p = T(v)
	return true
}

// FlatFloat reads a number in T's range into *p.
func FlatFloat[T ~float32 | ~float64](r *FlatReader, p *T) bool {
	tok, _ := r.number()
	if tok == "" {
		return r.fail()
	}
	v, err := strconv.ParseFloat(tok, int(unsafe.Sizeof(*p))*8)
	if err != nil {
		return r.fail()
	}
	*p = T(v)
	return true
}

// number takes the JSON number at the reader ("" when there is none) and
// says whether it is an integer (no fraction, no exponent). The string
// aliases the body: it is parsed, never kept.
func (r *FlatReader) number() (tok string, integer bool) {
	b, i := r.b, r.i
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return "", false
	}
	integer = true
	if j < len(b) && b[j] == '.' {
		integer = false
		k := j + 1
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == j+1 {
			return "", false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		integer = false
		k := j + 1
		if k < len(b) && (b[k] == '+' || b[k] == '-') {
			k++
		}
		d := k
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == d {
			return "", false
		}
		j = k
	}
	r.i = j
	return unsafe.String(&b[i], j-i), integer
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
