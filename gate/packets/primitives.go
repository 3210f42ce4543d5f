package packets

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// maxStringLen is the largest length a two-byte prefix can carry (spec 1.5.3).
const maxStringLen = 65535

func appendU16(dst []byte, v uint16) []byte {
	return append(dst, byte(v>>8), byte(v))
}

// appendString appends s with its two-byte length prefix (spec 1.5.3). A
// string longer than 65535 bytes cannot be encoded; writing a truncated
// prefix would desynchronise the stream, so it panics.
func appendString(dst []byte, s string) []byte {
	if len(s) > maxStringLen {
		panic(fmt.Sprintf("packets: string of %d bytes is longer than %d", len(s), maxStringLen))
	}
	return append(appendU16(dst, uint16(len(s))), s...)
}

// appendBytes is appendString for binary data.
func appendBytes(dst []byte, b []byte) []byte {
	if len(b) > maxStringLen {
		panic(fmt.Sprintf("packets: field of %d bytes is longer than %d", len(b), maxStringLen))
	}
	return append(appendU16(dst, uint16(len(b))), b...)
}

// decoder walks a packet body. Each method reports what it was reading when
// the body ran out, so errors say which field was truncated. Slices it
// returns alias the body.
type decoder struct {
	b []byte
}

func (d *decoder) u8(what string) (byte, error) {
	if len(d.b) < 1 {
		return 0, fmt.Errorf("%w: missing %s", ErrMalformed, what)
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v, nil
}

func (d *decoder) u16(what string) (uint16, error) {
	if len(d.b) < 2 {
		return 0, fmt.Errorf("%w: missing %s", ErrMalformed, what)
	}
	v := uint16(d.b[0])<<8 | uint16(d.b[1])
	d.b = d.b[2:]
	return v, nil
}

// packetID reads the packet identifier of packet, which is never zero
// [MQTT-2.3.1-1].
func (d *decoder) packetID(packet string) (uint16, error) {
	if len(d.b) < 2 {
		return 0, fmt.Errorf("%w: %s without packet identifier", ErrMalformed, packet)
	}
	id := uint16(d.b[0])<<8 | uint16(d.b[1])
	if id == 0 {
		return 0, fmt.Errorf("%w: %s with packet identifier 0", ErrMalformed, packet)
	}
	d.b = d.b[2:]
	return id, nil
}

// binary reads a field with a two-byte length prefix (spec 1.5.3).
func (d *decoder) binary(what string) ([]byte, error) {
	if len(d.b) < 2 {
		return nil, fmt.Errorf("%w: missing length of %s", ErrMalformed, what)
	}
	n := int(d.b[0])<<8 | int(d.b[1])
	if len(d.b)-2 < n {
		return nil, fmt.Errorf("%w: %s of %d bytes overruns the packet", ErrMalformed, what, n)
	}
	v := d.b[2 : 2+n : 2+n]
	d.b = d.b[2+n:]
	return v, nil
}

// str reads a length-prefixed UTF-8 string and validates it. It returns the
// bytes so that callers choose when to allocate the string.
func (d *decoder) str(what string) ([]byte, error) {
	v, err := d.binary(what)
	if err != nil {
		return nil, err
	}
	if err := checkUTF8(v, what); err != nil {
		return nil, err
	}
	return v, nil
}

// empty reports trailing bytes after the last field.
func (d *decoder) empty(packet string) error {
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d unexpected bytes at the end of %s", ErrMalformed, len(d.b), packet)
	}
	return nil
}

// checkUTF8 enforces well-formed UTF-8 without surrogates [MQTT-1.5.3-1] and
// without U+0000 [MQTT-1.5.3-2]. In valid UTF-8, U+0000 can only be a zero
// byte, so a byte search finds it.
func checkUTF8(b []byte, what string) error {
	if bytes.IndexByte(b, 0) >= 0 {
		return fmt.Errorf("%w: %s contains U+0000", ErrMalformed, what)
	}
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, what)
	}
	return nil
}

// clone copies b, returning nil for an empty b so that decoded packets
// compare equal however they were produced.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
