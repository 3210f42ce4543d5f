package packets

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"testing"
)

// FuzzDecode decodes arbitrary input and checks that
//   - every decoded packet encodes to bytes that decode to the same packet,
//     and encode again to the same bytes (decode→encode→decode is stable);
//   - feeding the input in two chunks, through a Reader that must buffer it
//     itself, gives exactly the packets and error of a one-shot decode;
//   - Parse, fed the input a byte, seven bytes or all of it at a time (a
//     server reading its socket itself), gives them too.
func FuzzDecode(f *testing.F) {
	for _, tc := range codecCases() {
		if tc.dir != encodeOnly {
			f.Add(tc.raw)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 16
		whole, wholeErr := readAll(bytes.NewReader(data), max)
		if wholeErr == nil {
			t.Fatal("readAll ended without an error")
		}

		split := []io.Reader{halves(data), bufio.NewReaderSize(halves(data), 16)}
		for i, r := range split {
			got, err := readAll(r, max)
			if !reflect.DeepEqual(got, whole) {
				t.Fatalf("split reader %d decoded %v, one-shot %v", i, got, whole)
			}
			if err.Error() != wholeErr.Error() {
				t.Fatalf("split reader %d failed with %v, one-shot with %v", i, err, wholeErr)
			}
		}

		for _, chunk := range []int{1, 7, len(data)} {
			got, err := parseAll(data, max, chunk)
			if !reflect.DeepEqual(got, whole) {
				t.Fatalf("Parse in chunks of %d decoded %v, ReadPacket %v", chunk, got, whole)
			}
			if err.Error() != wholeErr.Error() {
				t.Fatalf("Parse in chunks of %d failed with %v, ReadPacket with %v", chunk, err, wholeErr)
			}
		}

		for _, p := range whole {
			enc := p.AppendTo(nil)
			again, err := readAll(bytes.NewReader(enc), max)
			if err != io.EOF || len(again) != 1 {
				t.Fatalf("%#v encoded to % x, which decodes to %d packets and %v", p, enc, len(again), err)
			}
			if !reflect.DeepEqual(again[0], p) {
				t.Fatalf("decode→encode→decode changed the packet:\n first %#v\nsecond %#v", p, again[0])
			}
			if enc2 := again[0].AppendTo(nil); !bytes.Equal(enc2, enc) {
				t.Fatalf("encoding is not stable:\n% x\n% x", enc, enc2)
			}
		}
	})
}
