package share

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzFrameDecoder feeds arbitrary bytes to the frame decoder: it returns
// a body of the length the header gave, io.EOF on nothing, or ErrFrame;
// never anything else, and never a body it did not read.
func FuzzFrameDecoder(f *testing.F) {
	for _, seed := range [][]byte{
		{}, {0, 0, 0, 0}, {0, 0, 0, 1, '{'}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 5, '{', '}'},
		append(binary.BigEndian.AppendUint32(nil, 13), `{"op":"list"}`...),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		body, err := readFrame(bytes.NewReader(in))
		switch {
		case err == nil:
			n := binary.BigEndian.Uint32(in)
			if uint32(len(body)) != n || n == 0 || n > MaxFrame || !bytes.Equal(body, in[4:4+n]) {
				t.Fatalf("body of %d bytes for a header of %d", len(body), n)
			}
		case errors.Is(err, io.EOF) && len(in) == 0:
		case errors.Is(err, ErrFrame):
		default:
			t.Fatalf("unexpected error %v for %d bytes", err, len(in))
		}
	})
}
