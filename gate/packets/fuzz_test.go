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
//     itself, gives exactly the packets and error of a one-shot decode.
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
